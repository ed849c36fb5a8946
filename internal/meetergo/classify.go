package meetergo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// maxMessages and maxMessageLen bound what is kept of an error body.
const maxMessages, maxMessageLen = 20, 300

// transportError classifies a failure without an answer. It is Transient
// whether the attempt timed out, the connection failed or the caller's
// context ended; errors.Is finds the context's error in the last case.
func transportError(attemptCtx context.Context, req request, err error) *Error {
	msg := "no answer"
	if errors.Is(attemptCtx.Err(), context.DeadlineExceeded) {
		msg = "no answer within the timeout"
	}
	return &Error{Op: req.op.desc, Reason: ReasonTransient, Messages: []string{msg},
		Err: redactedError{err: err, text: req.cred.redact(err.Error())}}
}

// redactedError keeps the chain of an error (for errors.Is) but prints a
// text with the credential removed.
type redactedError struct {
	err  error
	text string
}

// Error implements error.
func (e redactedError) Error() string { return e.text }

// Unwrap returns the original error.
func (e redactedError) Unwrap() error { return e.err }

// statusError turns a non-2xx answer into an *Error, keeping meetergo's
// messages (scrubbed of the credential and bounded in size).
func statusError(req request, status int, body []byte) *Error {
	var parsed errorJSON
	_ = json.Unmarshal(body, &parsed)
	e := &Error{
		Op:         req.op.desc,
		Reason:     reasonFor(status, parsed),
		StatusCode: status,
		Code:       clip(req.cred.redact(parsed.Code)),
		Feature:    clip(req.cred.redact(parsed.Feature)),
	}
	for _, m := range parsed.messages() {
		if len(e.Messages) < maxMessages {
			e.Messages = append(e.Messages, clip(req.cred.redact(m)))
		}
	}
	for _, fe := range parsed.Errors {
		if len(e.FieldErrors) < maxMessages {
			e.FieldErrors = append(e.FieldErrors, FieldError{
				Field: clip(req.cred.redact(fe.Field)), Message: clip(req.cred.redact(fe.Message))})
		}
	}
	return e
}

// planLimitCode marks a plan wall in an error body.
const planLimitCode = "PLAN_LIMIT_REACHED"

// reasonFor maps a status (and, for 400, the body) to a Reason. The plan
// wall's code is read before the status: meetergo's own clients take any
// non-2xx answer carrying it for a plan wall, not only a 403.
func reasonFor(status int, body errorJSON) Reason {
	switch {
	case strings.EqualFold(strings.TrimSpace(body.Code), planLimitCode):
		return ReasonPlanLimit
	case status == http.StatusBadRequest && mentionsUserHeader(body):
		return ReasonMissingUserID
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return ReasonInvalid
	case status == http.StatusUnauthorized:
		return ReasonUnauthorized
	case status == http.StatusForbidden:
		return ReasonForbidden
	case status == http.StatusNotFound:
		return ReasonNotFound
	case status == http.StatusNotAcceptable:
		return ReasonQuotaExceeded
	case status == http.StatusTooManyRequests:
		return ReasonRateLimited
	case status >= 500:
		return ReasonTransient
	}
	return ReasonUnexpected
}

func mentionsUserHeader(body errorJSON) bool {
	for _, m := range body.messages() {
		if strings.Contains(strings.ToLower(m), userIDHeader) {
			return true
		}
	}
	return false
}

// clip bounds one message from meetergo.
func clip(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	return s[:maxMessageLen] + "…"
}
