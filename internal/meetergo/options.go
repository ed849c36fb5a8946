package meetergo

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options.
const (
	// DefaultBaseURL is meetergo's production API.
	DefaultBaseURL = "https://api.meetergo.com"
	// DefaultTimeout bounds one HTTP attempt.
	DefaultTimeout = 15 * time.Second
	// DefaultRequestsPerMinute matches meetergo's documented limit of 100
	// requests a minute per credential.
	DefaultRequestsPerMinute = 100
	// DefaultBurst is half of meetergo's documented burst of 200: the
	// margin absorbs the credential's other users (the dashboard, other
	// tools) and differences between the two buckets' clocks.
	DefaultBurst = 100
	// DefaultMaxRetries is how many times one call is retried at most.
	DefaultMaxRetries = 4
	// DefaultMaxRetryWait is the longest single wait between attempts. A
	// Retry-After beyond it ends the call with a RateLimited error, so a
	// reconciler requeues instead of blocking a worker.
	DefaultMaxRetryWait = 30 * time.Second
	// defaultBackoffBase is the first backoff ceiling; it doubles per retry.
	defaultBackoffBase = 500 * time.Millisecond
)

// Options configure NewHTTPClient. The zero value talks to production with
// the defaults above.
type Options struct {
	// BaseURL of the API, without a trailing path; DefaultBaseURL if empty.
	BaseURL string
	// HTTPClient sends the requests; a client with Go's default transport
	// if nil. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each HTTP attempt (sending the request and reading the
	// answer). It does not bound waiting for the rate budget or between
	// retries: only the caller's context does. DefaultTimeout if zero.
	Timeout time.Duration
	// UserAgent is sent on every request, e.g. "meetergo-operator/v0.1.0".
	UserAgent string
	// RequestsPerMinute is the steady rate allowed per credential.
	RequestsPerMinute int
	// Burst is how many requests one credential may send at once.
	Burst int
	// MaxRetries bounds the retries of one call: 0 means DefaultMaxRetries,
	// a negative value means no retries.
	MaxRetries int
	// MaxRetryWait caps a single wait between attempts; DefaultMaxRetryWait
	// if zero.
	MaxRetryWait time.Duration
	// Registerer receives the client's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger gets retries and waits at V(1). It never sees a credential,
	// only its Fingerprint.
	Logger logr.Logger
	// Sleep waits d or until ctx is done, whichever comes first, returning
	// ctx.Err() in the second case. It is used for every wait between
	// attempts and for the rate budget. Nil uses a timer; tests may record
	// the waits instead of spending them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(o.BaseURL)
	switch {
	case err != nil:
		return o, fmt.Errorf("meetergo: invalid BaseURL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return o, fmt.Errorf("meetergo: BaseURL %q must be an absolute http(s) URL", o.BaseURL)
	case u.User != nil, u.RawQuery != "", u.Fragment != "":
		return o, fmt.Errorf("meetergo: BaseURL must not carry user info, a query or a fragment")
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RequestsPerMinute <= 0 {
		o.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = DefaultMaxRetryWait
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
