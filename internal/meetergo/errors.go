package meetergo

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Reason classifies an *Error by what the caller should do about it.
type Reason string

const (
	// ReasonUnauthorized: meetergo refused the credential (401: unknown,
	// revoked or expired), or it was empty. Fix or rotate the credential.
	ReasonUnauthorized Reason = "Unauthorized"
	// ReasonForbidden: the credential lacks a permission (403), e.g. a
	// personal token without the "Account" group.
	ReasonForbidden Reason = "Forbidden"
	// ReasonPlanLimit: the company's plan does not include the feature, or
	// not this much of it: an answer with code PLAN_LIMIT_REACHED, whatever
	// its status (usually 403); Error.Feature names the feature.
	ReasonPlanLimit Reason = "PlanLimit"
	// ReasonQuotaExceeded: the company already has its six webhooks (406).
	ReasonQuotaExceeded Reason = "QuotaExceeded"
	// ReasonNotFound: no such webhook for this company (404).
	ReasonNotFound Reason = "NotFound"
	// ReasonRateLimited: meetergo answered 429 and the retries ran out, or
	// waiting for the rate budget would outlast the context. Error.RetryAfter
	// says when to try again.
	ReasonRateLimited Reason = "RateLimited"
	// ReasonTransient: a 5xx answer, a transport failure or a timeout. For a
	// POST, PATCH or DELETE the change may or may not have been applied.
	ReasonTransient Reason = "Transient"
	// ReasonInvalid: meetergo refused the request as malformed (400/422;
	// Error.FieldErrors and Error.Messages say why), or the client refused
	// to send it.
	ReasonInvalid Reason = "Invalid"
	// ReasonMissingUserID: a platform key without Credential.UserID; refused
	// locally, nothing was sent. (meetergo's own 400 for a missing user
	// header maps here too.)
	ReasonMissingUserID Reason = "MissingUserID"
	// ReasonUnsupportedCredential: the token is neither a personal token
	// ("rgo-...") nor a platform key ("ak_live:..."); refused locally,
	// nothing was sent. meetergo would take it for a short-lived login
	// token, which the operator cannot keep valid.
	ReasonUnsupportedCredential Reason = "UnsupportedCredential"
	// ReasonUnexpected: an answer outside the contract, e.g. another status
	// code or a success body the client cannot read.
	ReasonUnexpected Reason = "Unexpected"
)

// FieldError is one entry of the "errors" array of a 400 answer.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the one error type the client returns. It never contains the
// credential: messages from meetergo are scrubbed of it before they are kept.
type Error struct {
	// Op is what was attempted, e.g. "create webhook".
	Op string
	// Reason classifies the failure; see the Is* predicates.
	Reason Reason
	// StatusCode is meetergo's HTTP status, 0 if no answer was received.
	StatusCode int
	// Messages are meetergo's "message" (a string or an array upstream).
	Messages []string
	// FieldErrors are meetergo's "errors" array, if any.
	FieldErrors []FieldError
	// Code and Feature come from plan walls ("PLAN_LIMIT_REACHED", "webhooks").
	Code    string
	Feature string
	// RetryAfter is how long meetergo (or the local rate budget) asked to
	// wait; set for ReasonRateLimited.
	RetryAfter time.Duration
	// Attempts is how many HTTP requests were sent (0: refused locally).
	Attempts int
	// Err is the underlying cause (a transport error or the context's
	// error), if any.
	Err error
}

// Error renders "meetergo: <op>: <status>: <messages> (<details>)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("meetergo: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	} else {
		b.WriteString(string(e.Reason))
	}
	if len(e.Messages) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Messages, "; "))
	}
	for _, fe := range e.FieldErrors {
		fmt.Fprintf(&b, "; %s: %s", fe.Field, fe.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	var details []string
	if e.Code != "" {
		details = append(details, "code "+e.Code)
	}
	if e.Feature != "" {
		details = append(details, "feature "+e.Feature)
	}
	if e.RetryAfter > 0 {
		details = append(details, "retry after "+e.RetryAfter.String())
	}
	if e.Attempts > 1 {
		details = append(details, fmt.Sprintf("%d attempts", e.Attempts))
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, context.Canceled)
// works.
func (e *Error) Unwrap() error { return e.Err }

// localError is a refusal made before anything was sent.
func localError(op operation, reason Reason, msg string) *Error {
	return &Error{Op: op.desc, Reason: reason, Messages: []string{msg}}
}

// ReasonOf returns the Reason of the *Error in err's chain, or "" if there
// is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// RetryAfterOf returns the wait meetergo asked for, if err is a rate-limit
// error, else 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.Reason == ReasonRateLimited {
		return e.RetryAfter
	}
	return 0
}

// IsUnauthorized reports a refused, expired or empty credential.
func IsUnauthorized(err error) bool { return ReasonOf(err) == ReasonUnauthorized }

// IsForbidden reports a missing permission (not a plan wall).
func IsForbidden(err error) bool { return ReasonOf(err) == ReasonForbidden }

// IsPlanLimit reports a plan wall (code PLAN_LIMIT_REACHED, any status).
func IsPlanLimit(err error) bool { return ReasonOf(err) == ReasonPlanLimit }

// IsQuotaExceeded reports the per-company webhook limit (406).
func IsQuotaExceeded(err error) bool { return ReasonOf(err) == ReasonQuotaExceeded }

// IsNotFound reports an unknown webhook id (404).
func IsNotFound(err error) bool { return ReasonOf(err) == ReasonNotFound }

// IsRateLimited reports a 429 that outlasted the retries, or a rate budget
// the context could not wait for.
func IsRateLimited(err error) bool { return ReasonOf(err) == ReasonRateLimited }

// IsTransient reports a 5xx, transport failure or timeout.
func IsTransient(err error) bool { return ReasonOf(err) == ReasonTransient }

// IsInvalid reports a request meetergo (or the client) refused as malformed.
func IsInvalid(err error) bool { return ReasonOf(err) == ReasonInvalid }

// IsMissingUserID reports a platform key used without a user id.
func IsMissingUserID(err error) bool { return ReasonOf(err) == ReasonMissingUserID }

// IsUnsupportedCredential reports a token of neither supported kind,
// refused before anything was sent.
func IsUnsupportedCredential(err error) bool { return ReasonOf(err) == ReasonUnsupportedCredential }
