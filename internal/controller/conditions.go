package controller

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// Reasons on a MeetergoWebhook's conditions. Each names one thing a person
// can act on; the condition's message says what to do.
const (
	ReasonRegistered          = "Registered"
	ReasonSuspended           = "Suspended"
	ReasonProgressing         = "Progressing"
	ReasonQuotaExceeded       = "QuotaExceeded"
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonSecretKeyMissing    = "SecretKeyMissing"
	ReasonCredentialRejected  = "CredentialRejected"
	ReasonPermissionDenied    = "PermissionDenied"
	ReasonPlanLimitReached    = "PlanLimitReached"
	ReasonRateLimited         = "RateLimited"
	ReasonMeetergoUnavailable = "MeetergoUnavailable"
	ReasonInvalidRequest      = "InvalidRequest"
	ReasonInvalidEndpoint     = "InvalidEndpoint"
	ReasonDeletionBlocked     = "DeletionBlocked"
	ReasonNotImplemented      = "NotImplemented"
	// ReasonDisabled: meetergo lists the registration as switched off.
	ReasonDisabled = "Disabled"
	// ReasonUnsupportedCredential: the Secret's token is neither a
	// personal access token nor a platform API key.
	ReasonUnsupportedCredential = "UnsupportedCredential"
	// ReasonReconcileError is a failure outside meetergo, e.g. the API
	// server timing out.
	ReasonReconcileError = "ReconcileError"
)

// unsupportedCredentialMessage says which credentials work.
const unsupportedCredentialMessage = "the Secret's key token holds neither a personal access token (rgo-…) nor a platform API key (ak_live:…, with the key userId); only these two kinds work: meetergo would take any other shape for a short-lived login token"

// waitsForAPerson reports reasons that no retry mends: a person must fix the
// credential, the permission, the plan or the spec.
func waitsForAPerson(reason string) bool {
	switch reason {
	case ReasonCredentialRejected, ReasonPermissionDenied, ReasonPlanLimitReached, ReasonUnsupportedCredential,
		ReasonSecretNotFound, ReasonSecretKeyMissing, ReasonInvalidRequest, ReasonInvalidEndpoint:
		return true
	}
	return false
}

// failure is a reconcile step that could not complete: what the conditions
// say and how the reconciler goes on.
type failure struct {
	reason  string
	message string
	// stalled: nothing helps until the spec or the Secret changes (both are
	// watched), so there is no requeue.
	stalled bool
	// retryAfter, when set, is the wait meetergo asked for.
	retryAfter time.Duration
	err        error
}

func (f *failure) Error() string { return f.reason + ": " + f.message }
func (f *failure) Unwrap() error { return f.err }

// stalledf is a failure that waits for a spec or Secret change.
func stalledf(reason, format string, args ...any) *failure {
	return &failure{reason: reason, message: fmt.Sprintf(format, args...), stalled: true}
}

// classify turns an error of the meetergo client into a failure. The
// client's errors never carry the credential, so their text may be shown.
func classify(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	switch meetergo.ReasonOf(err) {
	case meetergo.ReasonUnauthorized:
		return &failure{reason: ReasonCredentialRejected, message: "meetergo refused the credential (invalid or expired): put a valid token in the Secret; " + err.Error(), err: err}
	case meetergo.ReasonPlanLimit:
		return &failure{reason: ReasonPlanLimitReached, message: "the meetergo plan does not include webhooks: " + err.Error(), err: err}
	case meetergo.ReasonForbidden:
		return &failure{reason: ReasonPermissionDenied, message: "the credential lacks permission to manage webhooks (a personal token needs the Account permission group): " + err.Error(), err: err}
	case meetergo.ReasonUnsupportedCredential:
		return &failure{reason: ReasonUnsupportedCredential, message: unsupportedCredentialMessage, stalled: true, err: err}
	case meetergo.ReasonMissingUserID:
		return &failure{reason: ReasonSecretKeyMissing, message: "a platform API key needs the key userId in the Secret", stalled: true, err: err}
	case meetergo.ReasonRateLimited:
		return &failure{reason: ReasonRateLimited, message: "meetergo rate limit reached; retrying after the wait it asked for", retryAfter: meetergo.RetryAfterOf(err), err: err}
	case meetergo.ReasonInvalid:
		return &failure{reason: ReasonInvalidRequest, message: "meetergo refused the registration: " + err.Error(), stalled: true, err: err}
	case "":
		return &failure{reason: ReasonReconcileError, message: "retrying with backoff: " + err.Error(), err: err}
	default:
		return &failure{reason: ReasonMeetergoUnavailable, message: "meetergo could not be reached or failed; retrying with backoff: " + err.Error(), err: err}
	}
}

func condition(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
}
