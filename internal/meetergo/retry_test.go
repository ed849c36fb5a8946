package meetergo_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

const marker = "[meetergo-operator:ns/name]"

var ownedHook = meetergo.WebhookInput{Endpoint: "https://hooks.example.com/r/tok", Description: "orders " + marker, EventTypes: []string{"booking_created"}}

// resolveByListing is what the reconciler does after a failed create: list
// and look for its marker.
func resolveByListing(t *testing.T, e *env) meetergo.Webhook {
	t.Helper()
	list, err := e.client.ListWebhooks(ctxFor(t), adminToken)
	if err != nil {
		t.Fatal(err)
	}
	var mine []meetergo.Webhook
	for _, w := range list {
		if strings.Contains(w.Description, marker) {
			mine = append(mine, w)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("want exactly one registration after the ambiguous create, got %+v", list)
	}
	return mine[0]
}

// TestAmbiguousCreate: a create that meetergo applied but answered with a
// failure, or never answered, is Transient, is not retried, and listing
// shows exactly one registration.
func TestAmbiguousCreate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault fake.Fault
	}{
		{"applied but answered 500", fake.Fault{Method: "POST", Path: "/webhooks", Times: 1, Apply: true, Status: 500}},
		{"applied but connection dropped", fake.Fault{Method: "POST", Path: "/webhooks", Times: 1, Apply: true, Drop: true}},
		{"applied but hanging until the client gives up", fake.Fault{Method: "POST", Path: "/webhooks", Times: 1, Apply: true, Hang: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{}, func(o *meetergo.Options) { o.Timeout = 300 * time.Millisecond })
			mustInject(t, e.srv, tc.fault)
			_, err := e.client.CreateWebhook(ctxFor(t), adminToken, ownedHook)
			if !meetergo.IsTransient(err) {
				t.Fatalf("want Transient, got %v", err)
			}
			assertNoSecrets(t, err)
			if n := e.srv.Count("POST", "/webhooks", "").Requests; n != 1 {
				t.Fatalf("the create was sent %d times, want once", n)
			}
			if tc.fault.Hang && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a timed-out attempt should wrap context.DeadlineExceeded: %v", err)
			}
			if w := resolveByListing(t, e); w.Endpoint != ownedHook.Endpoint {
				t.Fatalf("found %+v", w)
			}
		})
	}
}

// TestAmbiguousUpdateAndDelete: the same holds for PATCH and DELETE.
func TestAmbiguousUpdateAndDelete(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	ctx := ctxFor(t)
	w, err := e.client.CreateWebhook(ctx, adminToken, ownedHook)
	if err != nil {
		t.Fatal(err)
	}
	mustInject(t, e.srv, fake.Fault{Method: "PATCH", Times: 1, Apply: true, Status: 502})
	_, err = e.client.UpdateWebhook(ctx, adminToken, w.ID, meetergo.WebhookInput{EventTypes: []string{"booking_cancelled"}})
	mustError(t, err, meetergo.ReasonTransient, 502)
	if got := resolveByListing(t, e); got.EventTypes[0] != "booking_cancelled" {
		t.Fatalf("the update was not applied: %+v", got)
	}
	mustInject(t, e.srv, fake.Fault{Method: "DELETE", Times: 1, Apply: true, Drop: true})
	err = e.client.DeleteWebhook(ctx, adminToken, w.ID)
	mustError(t, err, meetergo.ReasonTransient, 0)
	if n := e.srv.Count("DELETE", "", "").Requests; n != 1 {
		t.Fatalf("the delete was sent %d times", n)
	}
	if list, _ := e.client.ListWebhooks(ctx, adminToken); len(list) != 0 {
		t.Fatalf("the delete was not applied: %+v", list)
	}
}

// TestGetRetries: a GET survives 5xx answers and dropped connections.
func TestGetRetries(t *testing.T) {
	for _, f := range []fake.Fault{
		{Method: "GET", Path: "/webhooks", Times: 2, Status: 503},
		{Method: "GET", Path: "/v4/user/me", Times: 2, Drop: true},
		{Method: "GET", Times: 1, Status: 500},
	} {
		t.Run(f.String(), func(t *testing.T) {
			e := newEnv(t, fake.Options{}, nil)
			mustInject(t, e.srv, f)
			if _, err := e.client.WhoAmI(ctxFor(t), adminToken); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.ListWebhooks(ctxFor(t), adminToken); err != nil {
				t.Fatal(err)
			}
			if got := e.waits.nonZero(); len(got) > f.Times {
				t.Fatalf("waited %v for %d faults", got, f.Times)
			}
		})
	}
}

// Test429IsRetried: injected 429s are retried for every method, waiting
// what Retry-After says, or a jittered backoff without it.
func Test429IsRetried(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter int
		check      func(t *testing.T, d time.Duration)
	}{
		{"with Retry-After", 2, func(t *testing.T, d time.Duration) {
			if d <= 1900*time.Millisecond || d > 2*time.Second {
				t.Fatalf("waited %v, want Retry-After's 2s", d)
			}
		}},
		{"without Retry-After", 0, func(t *testing.T, d time.Duration) {
			if d > 500*time.Millisecond {
				t.Fatalf("first backoff %v exceeds its ceiling", d)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{}, nil)
			mustInject(t, e.srv, fake.Fault{Method: "POST", Times: 1, Status: 429, RetryAfter: tc.retryAfter})
			if _, err := e.client.CreateWebhook(ctxFor(t), adminToken, ownedHook); err != nil {
				t.Fatal(err)
			}
			if n := e.srv.Count("POST", "", "").Requests; n != 2 {
				t.Fatalf("sent %d creates, want 2 (a 429 was not applied)", n)
			}
			waited := e.waits.nonZero()
			if tc.retryAfter > 0 && len(waited) == 0 {
				t.Fatal("no wait recorded")
			}
			for _, d := range waited {
				tc.check(t, d)
			}
		})
	}
}

// TestRealRateLimitIsRetried runs against the fake's own rate limit with
// a client configured to overrun it: the fake answers 429 and the client
// gets through with real waits, with Retry-After and without.
func TestRealRateLimitIsRetried(t *testing.T) {
	for _, retryAfter := range []bool{true, false} {
		t.Run(map[bool]string{true: "Retry-After on", false: "Retry-After off"}[retryAfter], func(t *testing.T) {
			t.Parallel()
			opts := fake.Options{Settings: fake.Settings{RequestsPerMinute: 600, Burst: 3, RetryAfter: retryAfter}}
			e := newEnv(t, opts, func(o *meetergo.Options) {
				realTime(o)
				o.RequestsPerMinute, o.Burst, o.MaxRetries = 60000, 100, 12
			})
			for range 6 {
				if _, err := e.client.ListWebhooks(ctxFor(t), adminToken); err != nil {
					t.Fatal(err)
				}
			}
			if c := e.srv.Count("", "", fake.SeedAdminToken); c.RateLimited == 0 || c.Requests-c.RateLimited != 6 {
				t.Fatalf("counts %+v: want some 429s and 6 answered calls", c)
			}
		})
	}
}

// TestSharedRateBudget: 50 goroutines on one credential, more calls than
// the fake's burst, with the client's budget scaled like production's
// (a bit under the fake's limit): the fake never answers 429.
func TestSharedRateBudget(t *testing.T) {
	opts := fake.Options{Settings: fake.Settings{RequestsPerMinute: 6000, Burst: 20}}
	e := newEnv(t, opts, func(o *meetergo.Options) {
		realTime(o)
		o.RequestsPerMinute, o.Burst = 5400, 15
	})
	const goroutines, calls = 50, 3
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*calls)
	for range goroutines {
		wg.Go(func() {
			for range calls {
				_, err := e.client.ListWebhooks(ctxFor(t), platformKey)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c := e.srv.Count("", "", fake.SeedPlatformKey)
	if c.Requests != goroutines*calls || c.RateLimited != 0 {
		t.Fatalf("counts %+v: want %d requests and no 429", c, goroutines*calls)
	}
}

// TestBudgetIsPerCredential: one credential's spent budget makes its own
// calls wait, not another credential's.
func TestBudgetIsPerCredential(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(o *meetergo.Options) { o.RequestsPerMinute, o.Burst = 60, 2 })
	ctx := ctxFor(t)
	for range 3 {
		if _, err := e.client.WhoAmI(ctx, adminToken); err != nil {
			t.Fatal(err)
		}
	}
	if w := e.waits.nonZero(); len(w) != 1 || w[0] < 900*time.Millisecond {
		t.Fatalf("the third call should wait about a second for its token, waits %v", w)
	}
	if _, err := e.client.WhoAmI(ctx, memberToken); err != nil {
		t.Fatal(err)
	}
	if w := e.waits.nonZero(); len(w) != 1 {
		t.Fatalf("another credential waited: %v", w)
	}
}

// TestContextEndsWaits: a call whose context cannot wait for the budget
// returns RateLimited at once; a cancelled context ends a retry wait.
func TestContextEndsWaits(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(o *meetergo.Options) {
		realTime(o)
		o.RequestsPerMinute, o.Burst = 1, 1
	})
	if _, err := e.client.WhoAmI(ctxFor(t), adminToken); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.client.WhoAmI(ctx, adminToken)
	if got := mustError(t, err, meetergo.ReasonRateLimited, 0); got.RetryAfter < 50*time.Second || got.Attempts != 0 {
		t.Fatalf("RetryAfter %v, attempts %d", got.RetryAfter, got.Attempts)
	}

	waiting := make(chan struct{})
	e2 := newEnv(t, fake.Options{}, func(o *meetergo.Options) {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			if d > 0 {
				close(waiting)
				<-ctx.Done()
			}
			return ctx.Err()
		}
	})
	mustInject(t, e2.srv, fake.Fault{Status: 429, RetryAfter: 10})
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-waiting
		cancel()
	}()
	_, err = e2.client.ListWebhooks(ctx, adminToken)
	if !errors.Is(err, context.Canceled) || !meetergo.IsRateLimited(err) {
		t.Fatalf("want a RateLimited error wrapping context.Canceled, got %v", err)
	}
}
