package forward

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// maxRetryAfter caps how long a target's Retry-After can hold a delivery.
const maxRetryAfter = time.Hour

// backoff is the wait before the attempt after attempt number n (1 for the
// first): exponential from base, capped at max, with full jitter (a random
// point between zero and the bound), so retries of many deliveries spread
// out instead of arriving together. A longer retryAfter wins.
func backoff(n int, base, maxDelay, retryAfter time.Duration, rnd func(int64) int64) time.Duration {
	bound := maxDelay
	if n < 63 && base < maxDelay>>min(n-1, 62) {
		bound = base << (n - 1)
	}
	d := time.Duration(rnd(int64(bound) + 1))
	return max(d, min(retryAfter, maxRetryAfter))
}

// jitter is the random source of backoff.
func jitter(n int64) int64 { return rand.Int64N(n) }

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 if
// absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
