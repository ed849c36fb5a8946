package meetergo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

const (
	// userIDHeader names the user a platform key acts for.
	userIDHeader = "x-meetergo-api-user-id"
	// maxAnswerBytes bounds what is read of an answer (a company has six
	// webhooks; anything near this is not meetergo talking).
	maxAnswerBytes = 1 << 20
)

// request is one API call to make.
type request struct {
	op   operation
	cred Credential
	path string
	body any // nil: no body
}

// response is a 2xx answer.
type response struct {
	status   int
	body     []byte
	attempts int
}

// do makes the call: it waits for the credential's rate budget, sends,
// classifies the answer and retries what is safe to retry (429 always; 5xx
// and transport failures for GET only), within MaxRetries and ctx. When a
// wait before a retry fails, the previous attempt's error is returned,
// wrapping the context's error.
func (h *HTTPClient) do(ctx context.Context, req request) (response, error) {
	if err := req.cred.check(req.op); err != nil {
		return response{}, err
	}
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return response{}, localError(req.op, ReasonInvalid, "the body could not be encoded: "+err.Error())
		}
	}
	fingerprint := req.cred.Fingerprint()
	b := h.budgets.get(fingerprint, time.Now())
	log := h.log.WithValues("operation", req.op.label, "credential", fingerprint)
	var failure *Error // of the previous attempt
	for attempt := 1; ; attempt++ {
		if err := h.awaitBudget(ctx, req.op, b, log); err != nil {
			if failure == nil {
				return response{}, err
			}
			failure.Err = errors.Join(failure.Err, err.Err)
			return response{}, failure
		}
		resp, f := h.send(ctx, req, body)
		if f == nil {
			resp.attempts = attempt
			return resp, nil
		}
		failure = f
		failure.Attempts = attempt
		wait, retry := h.retryWait(ctx, req.op, attempt, failure)
		if failure.Reason == ReasonRateLimited {
			// Every caller of the credential pauses; this one waits in
			// awaitBudget like the others.
			h.metrics.rateLimited.WithLabelValues(req.op.label).Inc()
			failure.RetryAfter = wait
			b.pause(time.Now(), wait)
		}
		if !retry {
			return response{}, failure
		}
		log.V(1).Info("retrying meetergo call", "attempt", attempt, "status", failure.StatusCode, "reason", failure.Reason, "wait", wait)
		h.metrics.retries.WithLabelValues(req.op.label).Inc()
		if failure.Reason == ReasonRateLimited {
			continue
		}
		if err := h.opts.Sleep(ctx, wait); err != nil {
			failure.Err = errors.Join(failure.Err, err)
			return response{}, failure
		}
	}
}

// retryWait decides whether failure is retried and after how long. A 429
// waits for Retry-After if meetergo sent a positive one, else for a
// jittered backoff; the wait is reported even when there is no retry, as
// the RetryAfter hint.
func (h *HTTPClient) retryWait(ctx context.Context, op operation, attempt int, failure *Error) (time.Duration, bool) {
	var wait time.Duration
	switch {
	case failure.Reason == ReasonRateLimited:
		wait = failure.RetryAfter
		if wait == 0 {
			wait = backoff(attempt, h.opts.MaxRetryWait)
		}
	case failure.Reason == ReasonTransient && op.method == http.MethodGet && ctx.Err() == nil:
		wait = backoff(attempt, h.opts.MaxRetryWait)
	default:
		return 0, false
	}
	retry := attempt <= h.opts.MaxRetries && wait <= h.opts.MaxRetryWait && fitsDeadline(ctx, wait)
	return wait, retry
}

// fitsDeadline reports whether ctx leaves time for a wait of d.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// awaitBudget waits out any pause after a 429 and then takes a token from
// the credential's bucket. When the context cannot wait that long it
// returns at once with a RateLimited error carrying the wait.
func (h *HTTPClient) awaitBudget(ctx context.Context, op operation, b *budget, log logr.Logger) *Error {
	wait := max(b.pauseLeft(time.Now()), 0)
	r := b.limiter.Reserve()
	wait = max(wait, r.Delay())
	if !fitsDeadline(ctx, wait) {
		r.Cancel()
		return &Error{Op: op.desc, Reason: ReasonRateLimited, RetryAfter: wait,
			Messages: []string{"the credential's rate budget allows no request before the context ends"}}
	}
	h.metrics.budgetWait.WithLabelValues(op.label).Observe(wait.Seconds())
	if wait >= time.Second {
		log.V(1).Info("waiting for the credential's rate budget", "wait", wait)
	}
	if err := h.opts.Sleep(ctx, wait); err != nil {
		r.Cancel()
		return &Error{Op: op.desc, Reason: ReasonTransient, Err: err,
			Messages: []string{"gave up waiting for the credential's rate budget"}}
	}
	return nil
}

// send makes one HTTP attempt, bounded by Options.Timeout. It returns the
// answer if it is a 2xx, else the classified failure.
func (h *HTTPClient) send(ctx context.Context, req request, body []byte) (response, *Error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	var payload io.Reader
	if body != nil {
		payload = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.op.method, h.opts.BaseURL+req.path, payload)
	if err != nil {
		return response{}, localError(req.op, ReasonInvalid, "the request could not be built")
	}
	hreq.Header.Set("Authorization", "Bearer "+req.cred.Token)
	hreq.Header.Set("Accept", "application/json")
	if h.opts.UserAgent != "" {
		hreq.Header.Set("User-Agent", h.opts.UserAgent)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.cred.Kind() == PlatformKey {
		hreq.Header.Set(userIDHeader, req.cred.UserID)
	}

	start := time.Now()
	status, header, answer, err := h.exchange(hreq)
	h.metrics.latency.WithLabelValues(req.op.label).Observe(time.Since(start).Seconds())
	h.metrics.requests.WithLabelValues(req.op.label, codeClass(status)).Inc()
	if err != nil {
		return response{}, transportError(ctx, req, err)
	}
	if status >= 200 && status < 300 {
		return response{status: status, body: answer}, nil
	}
	failure := statusError(req, status, answer)
	if status == http.StatusTooManyRequests {
		failure.RetryAfter, _ = parseRetryAfter(header.Get("Retry-After"), time.Now())
	}
	return response{}, failure
}

// exchange sends hreq and reads the whole answer. status is 0 unless a
// complete answer arrived.
func (h *HTTPClient) exchange(hreq *http.Request) (status int, header http.Header, body []byte, err error) {
	resp, err := h.opts.HTTPClient.Do(hreq)
	if err != nil {
		return 0, nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	switch {
	case err != nil:
		return 0, nil, nil, fmt.Errorf("reading the %d answer: %w", resp.StatusCode, err)
	case len(body) > maxAnswerBytes:
		return 0, nil, nil, fmt.Errorf("the %d answer is larger than %d bytes", resp.StatusCode, maxAnswerBytes)
	}
	return resp.StatusCode, resp.Header, body, nil
}
