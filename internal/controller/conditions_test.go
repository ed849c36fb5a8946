package controller

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		reason     string
		stalled    bool
		retryAfter time.Duration
	}{
		{"401", &meetergo.Error{Reason: meetergo.ReasonUnauthorized, StatusCode: 401}, ReasonCredentialRejected, false, 0},
		{"403", &meetergo.Error{Reason: meetergo.ReasonForbidden, StatusCode: 403}, ReasonPermissionDenied, false, 0},
		{"plan wall", &meetergo.Error{Reason: meetergo.ReasonPlanLimit, StatusCode: 403}, ReasonPlanLimitReached, false, 0},
		{"429 with wait", &meetergo.Error{Reason: meetergo.ReasonRateLimited, StatusCode: 429, RetryAfter: 7 * time.Second}, ReasonRateLimited, false, 7 * time.Second},
		{"400 refused", &meetergo.Error{Reason: meetergo.ReasonInvalid, StatusCode: 400}, ReasonInvalidRequest, true, 0},
		{"5xx", &meetergo.Error{Reason: meetergo.ReasonTransient, StatusCode: 503}, ReasonMeetergoUnavailable, false, 0},
		{"wrapped 401", fmt.Errorf("whoami: %w", &meetergo.Error{Reason: meetergo.ReasonUnauthorized}), ReasonCredentialRejected, false, 0},
		{"API server error", errors.New("etcdserver: request timed out"), ReasonReconcileError, false, 0},
		{"own failure passes through", stalledf(ReasonSecretNotFound, "x"), ReasonSecretNotFound, true, 0},
	}
	for _, c := range cases {
		f := classify(c.err)
		if f.reason != c.reason || f.stalled != c.stalled || f.retryAfter != c.retryAfter {
			t.Errorf("%s: classify = %s stalled=%v retryAfter=%s; want %s %v %s", c.name, f.reason, f.stalled, f.retryAfter, c.reason, c.stalled, c.retryAfter)
		}
	}
}
