package meetergo

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// ok is false when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// backoff is the wait before retry number n (1 for the first retry):
// "full jitter", a uniform draw from [0, min(limit, base·2^(n-1))].
func backoff(n int, limit time.Duration) time.Duration {
	ceiling := limit
	if n <= 30 {
		ceiling = min(limit, defaultBackoffBase<<(n-1))
	}
	return rand.N(ceiling + 1)
}
