package meetergo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// These tests run the real HTTPClient against the fake, route by route and
// error by error, as the reconciler will use them.

func TestWhoAmI(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	for _, tc := range []struct {
		name string
		cred meetergo.Credential
		want meetergo.Identity
	}{
		{"personal token of an admin", adminToken, meetergo.Identity{UserID: fake.SeedAdminID, CompanyID: fake.SeedCompanyID, IsAdmin: true}},
		{"personal token of a member", memberToken, meetergo.Identity{UserID: fake.SeedMemberID, CompanyID: fake.SeedCompanyID}},
		{"platform key acting for the member", meetergo.Credential{Token: fake.SeedPlatformKey, UserID: fake.SeedMemberID},
			meetergo.Identity{UserID: fake.SeedMemberID, CompanyID: fake.SeedCompanyID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.client.WhoAmI(ctxFor(t), tc.cred)
			if err != nil || got != tc.want {
				t.Fatalf("WhoAmI = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestWebhookLifecycle(t *testing.T) {
	for _, cred := range []meetergo.Credential{adminToken, platformKey} {
		t.Run(string(cred.Kind()), func(t *testing.T) {
			e := newEnv(t, fake.Options{}, nil)
			ctx := ctxFor(t)
			in := meetergo.WebhookInput{Endpoint: "https://hooks.example.com/r/tok1", Description: "team a [owned]", EventTypes: []string{"booking_created"}}
			created, err := e.client.CreateWebhook(ctx, cred, in)
			if err != nil {
				t.Fatal(err)
			}
			if created.ID != "1001" || created.CompanyID != fake.SeedCompanyID || created.Endpoint != in.Endpoint ||
				created.Description != in.Description || !slices.Equal(created.EventTypes, in.EventTypes) || created.CreatedAt.IsZero() {
				t.Fatalf("created %+v", created)
			}

			updated, err := e.client.UpdateWebhook(ctx, cred, created.ID, meetergo.WebhookInput{EventTypes: []string{"booking_cancelled", "form_submission"}})
			if err != nil {
				t.Fatal(err)
			}
			if updated.Endpoint != in.Endpoint || !slices.Equal(updated.EventTypes, []string{"booking_cancelled", "form_submission"}) {
				t.Fatalf("updated %+v", updated)
			}

			list, err := e.client.ListWebhooks(ctx, cred)
			if err != nil || len(list) != 1 || list[0].ID != created.ID || !slices.Equal(list[0].EventTypes, updated.EventTypes) {
				t.Fatalf("list = %+v, %v", list, err)
			}

			if err := e.client.DeleteWebhook(ctx, cred, created.ID); err != nil {
				t.Fatal(err)
			}
			if list, err := e.client.ListWebhooks(ctx, cred); err != nil || len(list) != 0 {
				t.Fatalf("list after delete = %+v, %v", list, err)
			}
			err = e.client.DeleteWebhook(ctx, cred, created.ID)
			if !meetergo.IsNotFound(err) {
				t.Fatalf("second delete: want NotFound, got %v", err)
			}
			assertNoSecrets(t, err)
		})
	}
}

// TestListSeesOtherWebhooks: the list holds every webhook of the company,
// also those made in the dashboard, and none of other companies.
func TestListSeesOtherWebhooks(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	spec := fake.WebhookSpec{Endpoint: "https://zapier.example.com/x", EventTypes: []string{"new_employee"}}
	if _, err := e.srv.AddExternalWebhook(fake.SeedCompanyID, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.AddExternalWebhook(fake.SeedOtherCompanyID, spec); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.ListWebhooks(ctxFor(t), memberToken)
	if err != nil || len(list) != 1 || list[0].Endpoint != spec.Endpoint || list[0].Description != "" {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

// TestErrors covers every error the contract names, each through the
// client's classification, and checks no error carries a credential.
func TestErrors(t *testing.T) {
	hook := meetergo.WebhookInput{Endpoint: "https://hooks.example.com/x", EventTypes: []string{"booking_created"}}
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, e *env)
		call   func(ctx context.Context, e *env) error
		reason meetergo.Reason
		status int
		check  func(t *testing.T, err *meetergo.Error)
	}{{
		name: "unknown personal token",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.WhoAmI(ctx, meetergo.Credential{Token: "rgo-unknown-token-1234567890"})
			return err
		},
		reason: meetergo.ReasonUnauthorized, status: 401,
		check: wantMessage(fake.MsgInvalidKey),
	}, {
		name: "unknown platform key",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.ListWebhooks(ctx, meetergo.Credential{Token: "ak_live:00000000-0000-4000-8000-000000000000:unknownsecret123", UserID: fake.SeedAdminID})
			return err
		},
		reason: meetergo.ReasonUnauthorized, status: 401,
	}, {
		name:   "expired platform key",
		setup:  func(t *testing.T, e *env) { e.srv.ExpireCredential(fake.SeedPlatformKey) },
		call:   func(ctx context.Context, e *env) error { _, err := e.client.ListWebhooks(ctx, platformKey); return err },
		reason: meetergo.ReasonUnauthorized, status: 401,
		check: wantMessage(fake.MsgExpiredKey),
	}, {
		name: "platform key acting for a user of another company",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.ListWebhooks(ctx, meetergo.Credential{Token: fake.SeedPlatformKey, UserID: fake.SeedOtherUserID})
			return err
		},
		reason: meetergo.ReasonForbidden, status: 403,
	}, {
		name: "token without the Account permission",
		setup: func(t *testing.T, e *env) {
			mustSeed(t, e, fake.Credential{Token: "rgo-no-permission-abcdef123456", UserID: fake.SeedMemberID, NoWebhookPermission: true})
		},
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.ListWebhooks(ctx, meetergo.Credential{Token: "rgo-no-permission-abcdef123456"})
			return err
		},
		reason: meetergo.ReasonForbidden, status: 403,
	}, {
		name:  "plan wall",
		setup: func(t *testing.T, e *env) { e.srv.UpdateSettings(func(s *fake.Settings) { s.PlanWall = true }) },
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.CreateWebhook(ctx, adminToken, hook)
			return err
		},
		reason: meetergo.ReasonPlanLimit, status: 403,
		check: func(t *testing.T, err *meetergo.Error) {
			if err.Code != "PLAN_LIMIT_REACHED" || err.Feature != "webhooks" {
				t.Fatalf("code %q feature %q", err.Code, err.Feature)
			}
		},
	}, {
		name: "seventh webhook, counting those made elsewhere",
		setup: func(t *testing.T, e *env) {
			for i := range 4 {
				spec := fake.WebhookSpec{Endpoint: fmt.Sprintf("https://elsewhere.example.com/%d", i), EventTypes: []string{"booking_created"}}
				if _, err := e.srv.AddExternalWebhook(fake.SeedCompanyID, spec); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, err := e.client.CreateWebhook(ctxFor(t), adminToken, hook); err != nil {
					t.Fatal(err)
				}
			}
		},
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.CreateWebhook(ctx, memberToken, hook)
			return err
		},
		reason: meetergo.ReasonQuotaExceeded, status: 406,
	}, {
		name: "unknown event type",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: hook.Endpoint, EventTypes: []string{"booking_canceled"}})
			return err
		},
		reason: meetergo.ReasonInvalid, status: 400,
		check: func(t *testing.T, err *meetergo.Error) {
			if len(err.Messages) == 0 || len(err.FieldErrors) == 0 || err.FieldErrors[0].Field != "eventTypes" {
				t.Fatalf("messages %q, field errors %+v", err.Messages, err.FieldErrors)
			}
		},
	}, {
		name: "update of an unknown id",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.UpdateWebhook(ctx, adminToken, "999999", hook)
			return err
		},
		reason: meetergo.ReasonNotFound, status: 404,
	}, {
		name: "delete of another company's webhook",
		setup: func(t *testing.T, e *env) {
			if _, err := e.client.CreateWebhook(ctxFor(t), otherToken, hook); err != nil {
				t.Fatal(err)
			}
		},
		call:   func(ctx context.Context, e *env) error { return e.client.DeleteWebhook(ctx, adminToken, "1001") },
		reason: meetergo.ReasonNotFound, status: 404,
	}, {
		name:  "5xx on a create is not retried",
		setup: func(t *testing.T, e *env) { mustInject(t, e.srv, fake.Fault{Method: "POST", Status: 503, Times: 1}) },
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.CreateWebhook(ctx, adminToken, hook)
			return err
		},
		reason: meetergo.ReasonTransient, status: 503,
		check: wantAttempts(1),
	}, {
		name:   "5xx on a list is retried until the retries run out",
		setup:  func(t *testing.T, e *env) { mustInject(t, e.srv, fake.Fault{Method: "GET", Status: 502}) },
		call:   func(ctx context.Context, e *env) error { _, err := e.client.ListWebhooks(ctx, adminToken); return err },
		reason: meetergo.ReasonTransient, status: 502,
		check: wantAttempts(1 + meetergo.DefaultMaxRetries),
	}, {
		name:   "429 on every attempt",
		setup:  func(t *testing.T, e *env) { mustInject(t, e.srv, fake.Fault{Status: 429, RetryAfter: 3}) },
		call:   func(ctx context.Context, e *env) error { return e.client.DeleteWebhook(ctx, adminToken, "1001") },
		reason: meetergo.ReasonRateLimited, status: 429,
		check: func(t *testing.T, err *meetergo.Error) {
			wantAttempts(1+meetergo.DefaultMaxRetries)(t, err)
			if meetergo.RetryAfterOf(err) != 3e9 {
				t.Fatalf("RetryAfter = %v", err.RetryAfter)
			}
		},
	}, {
		name:   "Retry-After beyond the longest wait ends the call at once",
		setup:  func(t *testing.T, e *env) { mustInject(t, e.srv, fake.Fault{Status: 429, RetryAfter: 3600}) },
		call:   func(ctx context.Context, e *env) error { _, err := e.client.ListWebhooks(ctx, adminToken); return err },
		reason: meetergo.ReasonRateLimited, status: 429,
		check: wantAttempts(1),
	}, {
		name: "platform key without a user id is refused locally",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.ListWebhooks(ctx, meetergo.Credential{Token: fake.SeedPlatformKey})
			return err
		},
		reason: meetergo.ReasonMissingUserID, status: 0,
		check: wantAttempts(0),
	}, {
		name: "empty credential is refused locally",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.WhoAmI(ctx, meetergo.Credential{})
			return err
		},
		reason: meetergo.ReasonUnauthorized, status: 0,
		check: wantAttempts(0),
	}, {
		name: "create without event types is refused locally",
		call: func(ctx context.Context, e *env) error {
			_, err := e.client.CreateWebhook(ctx, adminToken, meetergo.WebhookInput{Endpoint: hook.Endpoint})
			return err
		},
		reason: meetergo.ReasonInvalid, status: 0,
		check: wantAttempts(0),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{}, nil)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			before := e.srv.Count("", "", "").Requests
			err := tc.call(ctxFor(t), e)
			got := mustError(t, err, tc.reason, tc.status)
			if sent := e.srv.Count("", "", "").Requests - before; sent != got.Attempts {
				t.Errorf("the fake saw %d requests, the error says %d attempts", sent, got.Attempts)
			}
			if wrapped := fmt.Errorf("reconcile: %w", err); meetergo.ReasonOf(wrapped) != tc.reason {
				t.Errorf("the reason is lost through wrapping")
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func wantMessage(msg string) func(*testing.T, *meetergo.Error) {
	return func(t *testing.T, err *meetergo.Error) {
		if !slices.Contains(err.Messages, msg) {
			t.Fatalf("messages %q, want %q", err.Messages, msg)
		}
	}
}

func wantAttempts(n int) func(*testing.T, *meetergo.Error) {
	return func(t *testing.T, err *meetergo.Error) {
		if err.Attempts != n {
			t.Fatalf("attempts = %d, want %d", err.Attempts, n)
		}
	}
}

func mustSeed(t *testing.T, e *env, creds ...fake.Credential) {
	t.Helper()
	if err := e.srv.AddSeed(fake.Seed{Credentials: creds}); err != nil {
		t.Fatal(err)
	}
}

// TestPredicates checks each Is* helper against its reason, through
// wrapping.
func TestPredicates(t *testing.T) {
	preds := map[meetergo.Reason]func(error) bool{
		meetergo.ReasonUnauthorized: meetergo.IsUnauthorized, meetergo.ReasonForbidden: meetergo.IsForbidden,
		meetergo.ReasonPlanLimit: meetergo.IsPlanLimit, meetergo.ReasonQuotaExceeded: meetergo.IsQuotaExceeded,
		meetergo.ReasonNotFound: meetergo.IsNotFound, meetergo.ReasonRateLimited: meetergo.IsRateLimited,
		meetergo.ReasonTransient: meetergo.IsTransient, meetergo.ReasonInvalid: meetergo.IsInvalid,
		meetergo.ReasonMissingUserID: meetergo.IsMissingUserID, meetergo.ReasonUnsupportedCredential: meetergo.IsUnsupportedCredential,
	}
	for reason := range preds {
		err := fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", &meetergo.Error{Op: "x", Reason: reason}))
		for other, pred := range preds {
			if pred(err) != (other == reason) {
				t.Errorf("predicate for %s on a %s error = %t", other, reason, pred(err))
			}
		}
	}
	if meetergo.IsNotFound(errors.New("plain")) || meetergo.IsNotFound(nil) {
		t.Error("a plain error or nil is no meetergo error")
	}
}

// TestPersonalTokenNeverSendsUserHeader asserts at the fake, over every
// route, that a personal token goes without x-meetergo-api-user-id and a
// platform key always with it — even when the Credential carries a UserID.
func TestPersonalTokenNeverSendsUserHeader(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	ctx := ctxFor(t)
	withUser := meetergo.Credential{Token: fake.SeedAdminToken, UserID: fake.SeedMemberID}
	for _, cred := range []meetergo.Credential{adminToken, withUser, platformKey} {
		if _, err := e.client.WhoAmI(ctx, cred); err != nil {
			t.Fatal(err)
		}
		w, err := e.client.CreateWebhook(ctx, cred, meetergo.WebhookInput{Endpoint: "https://h.example.com/1", EventTypes: []string{"booking_created"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.ListWebhooks(ctx, cred); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.UpdateWebhook(ctx, cred, w.ID, meetergo.WebhookInput{Description: "d"}); err != nil {
			t.Fatal(err)
		}
		if err := e.client.DeleteWebhook(ctx, cred, w.ID); err != nil {
			t.Fatal(err)
		}
	}
	recs := e.srv.Requests()
	if len(recs) != 15 {
		t.Fatalf("the fake saw %d requests, want 15", len(recs))
	}
	for _, r := range recs {
		personal := r.Credential == fake.SeedAdminToken
		if r.UserHeaderSent == personal || (!personal && r.UserHeader != fake.SeedAdminID) {
			t.Errorf("%s %s with %s: user header sent %t (%q)", r.Method, r.Path, r.Credential[:4], r.UserHeaderSent, r.UserHeader)
		}
		if r.UserAgent != "meetergo-operator/test" || r.Accept != "application/json" {
			t.Errorf("%s %s: User-Agent %q, Accept %q", r.Method, r.Path, r.UserAgent, r.Accept)
		}
		if hasBody := r.Method == http.MethodPost || r.Method == http.MethodPatch; hasBody != (r.ContentType == "application/json") {
			t.Errorf("%s %s: Content-Type %q", r.Method, r.Path, r.ContentType)
		}
	}
}
