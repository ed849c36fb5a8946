package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// Headers sent with every forwarded event besides the Standard Webhooks
// ones (webhook-id, webhook-timestamp, webhook-signature).
const (
	// HeaderEvent carries the meetergo event type.
	HeaderEvent = "X-Meetergo-Event"
	// HeaderWebhook carries the MeetergoWebhook as namespace/name.
	HeaderWebhook = "X-Meetergo-Webhook"
)

// verdict classifies the outcome of an attempt.
type verdict int

const (
	success   verdict = iota // 2xx
	retryable                // no answer, 408, 429, 5xx, no endpoint: try again later
	permanent                // any other answer: the target refuses this event
)

func (v verdict) String() string { return [...]string{"success", "retryable", "permanent"}[v] }

// classify decides what an answer (or its absence) means.
func classify(status int, err error) verdict {
	switch {
	case err != nil:
		return retryable
	case status >= 200 && status < 300:
		return success
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return retryable
	default:
		return permanent
	}
}

// outcome is what one attempt found.
type outcome struct {
	verdict verdict
	// problem describes a failure: status or error class, never payload.
	problem string
	// retryAfter is the target's Retry-After, if any.
	retryAfter time.Duration
}

// request is one delivery attempt to make.
type request struct {
	addresses []string // ready endpoints, host:port
	path      string
	header    http.Header
	body      []byte
	timeout   time.Duration
}

// post offers the event to one endpoint after another, starting at a random
// one, moving on only when a connection cannot be opened (nothing was sent,
// so nothing can be delivered twice).
func (f *Forwarder) post(ctx context.Context, r request) outcome {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := rand.IntN(len(r.addresses))
	var status int
	var h http.Header
	var err error
	for i := range r.addresses {
		addr := r.addresses[(start+i)%len(r.addresses)]
		began := time.Now()
		status, h, err = f.send(ctx, addr, r)
		attemptDuration.Observe(time.Since(began).Seconds())
		if err == nil || !isDialError(err) || ctx.Err() != nil {
			break
		}
	}
	o := outcome{verdict: classify(status, err)}
	switch {
	case err != nil:
		o.problem = describeError(err, r.timeout)
	case o.verdict != success:
		o.problem = "HTTP " + strconv.Itoa(status)
		o.retryAfter = retryAfter(h, f.now())
	}
	return o
}

// send makes one POST and reads (a bounded part of) the answer, so the
// connection can be reused.
func (f *Forwarder) send(ctx context.Context, addr string, r request) (int, http.Header, error) {
	u, err := url.Parse("http://" + addr + r.path)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, err
	}
	// The Host header stays the endpoint's address: a proxy routes by it
	// (Go puts the Host into the request line it sends to a proxy).
	req.Header = r.header.Clone()
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, nil
}

// headers are the headers of an attempt (webhook-signature added if key).
func headers(ev *store.Event, userAgent string, key []byte, timestamp int64, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set("webhook-id", ev.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(timestamp, 10))
	if key != nil {
		h.Set("webhook-signature", Sign(key, ev.ID, timestamp, body))
	}
	h.Set(HeaderEvent, ev.Type)
	h.Set(HeaderWebhook, ev.Namespace+"/"+ev.Name)
	return h
}

// isDialError says whether err happened before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// describeError names the class of a transport error for lastError and
// logs, without URLs or bodies.
func describeError(err error, timeout time.Duration) string {
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	case isDialError(err):
		return "cannot connect"
	default:
		return "request failed"
	}
}
