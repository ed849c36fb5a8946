package fake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Messages the server answers with. The first three are documented; the
// others are the fake's wording of undocumented answers.
const (
	MsgMissingUserHeader = "Missing required header 'x-meetergo-api-user-id' for API key authentication"
	MsgInvalidKey        = "Invalid API key"
	MsgExpiredKey        = "API key has expired"
	MsgForbidden         = "Forbidden resource"
	MsgNoPermission      = "Missing permission: Account"
	MsgPlanLimit         = "Your plan does not include webhooks"
	MsgTooManyRequests   = "Too Many Requests"
	MsgInternal          = "Internal server error"
)

// apiError is an error answer in NestJS's shape. It is also the error the
// Go admin methods return, so the admin HTTP API can answer with it.
type apiError struct {
	StatusCode int          `json:"statusCode"`
	Message    any          `json:"message"` // a string, or []string for validation
	ErrorText  string       `json:"error,omitempty"`
	Errors     []fieldError `json:"errors,omitempty"`
	Code       string       `json:"code,omitempty"`
	Feature    string       `json:"feature,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements error.
func (e *apiError) Error() string {
	return fmt.Sprintf("fake meetergo: %d: %v", e.StatusCode, e.Message)
}

func newError(status int, msg string) *apiError {
	e := &apiError{StatusCode: status, Message: msg, ErrorText: http.StatusText(status)}
	if status == http.StatusInternalServerError {
		e.ErrorText = "" // NestJS's default 500 has no "error"
	}
	return e
}

// validationError is class-validator's 400: message is an array of the
// problems' messages. The fake also fills the optional "errors" array.
func validationError(problems []fieldError) *apiError {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Message
	}
	return &apiError{StatusCode: http.StatusBadRequest, Message: msgs, ErrorText: "Bad Request", Errors: problems}
}

func limitError(limit int) *apiError {
	return newError(http.StatusNotAcceptable, fmt.Sprintf("Webhook limit reached: a company can have at most %d webhooks", limit))
}

func webhookNotFound() *apiError { return newError(http.StatusNotFound, "Webhook not found") }

// planLimitError is the plan wall, answered with status (403 by default).
func planLimitError(status int) *apiError {
	e := newError(status, MsgPlanLimit)
	e.Code, e.Feature = "PLAN_LIMIT_REACHED", "webhooks"
	return e
}

// noRoute is NestJS's answer for a route it does not have.
func noRoute(r *http.Request) *apiError {
	return newError(http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with err: an *apiError as itself, anything else as 500.
func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = newError(http.StatusInternalServerError, err.Error())
	}
	writeJSON(w, e.StatusCode, e)
}
