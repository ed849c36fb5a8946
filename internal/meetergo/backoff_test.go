package meetergo

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999", 24 * time.Hour, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %t; want %v, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffStaysUnderItsCeiling(t *testing.T) {
	for n := 1; n <= 40; n++ {
		ceiling := min(30*time.Second, defaultBackoffBase<<min(n-1, 30))
		for range 50 {
			if d := backoff(n, 30*time.Second); d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, ceiling %v", n, d, ceiling)
			}
		}
	}
}

func TestOptionsRefuseUnsafeBaseURLs(t *testing.T) {
	for _, u := range []string{"api.meetergo.com", "ftp://x", "https://user:pw@api.example.com", "https://api.example.com/?token=x", "http://%zz"} {
		if _, err := NewHTTPClient(Options{BaseURL: u}); err == nil {
			t.Errorf("BaseURL %q accepted", u)
		}
	}
	c, err := NewHTTPClient(Options{})
	if err != nil || c.opts.BaseURL != DefaultBaseURL || c.opts.Burst != DefaultBurst || c.opts.RequestsPerMinute != DefaultRequestsPerMinute ||
		c.opts.Timeout != DefaultTimeout || c.opts.MaxRetries != DefaultMaxRetries {
		t.Fatalf("defaults: %+v, %v", c.opts, err)
	}
	if c, _ := NewHTTPClient(Options{MaxRetries: -1}); c.opts.MaxRetries != 0 {
		t.Fatal("a negative MaxRetries means no retries")
	}
}

func TestBudgetsForgetIdleCredentials(t *testing.T) {
	bs := newBudgets(60, 10)
	start := time.Now()
	old := bs.get("a", start)
	bs.get("b", start.Add(bs.ttl/2))
	if bs.get("a", start.Add(bs.ttl/2)) != old {
		t.Fatal("a used budget was replaced")
	}
	bs.get("c", start.Add(2*bs.ttl+time.Second))
	if len(bs.byKey) != 1 {
		t.Fatalf("idle budgets kept: %d", len(bs.byKey))
	}
}
