package fake

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// limiters are the per-credential token buckets, keyed by the bearer value
// as sent (so unknown tokens are limited too). s.mu guards them.
type limiters struct {
	limit   rate.Limit
	burst   int
	byToken map[string]*rate.Limiter
}

// reset installs new limits with full buckets.
func (l *limiters) reset(s Settings) {
	l.limit = rate.Limit(float64(s.RequestsPerMinute) / 60)
	l.burst = s.Burst
	l.byToken = map[string]*rate.Limiter{}
}

// take spends one token of the credential's bucket. If none is left it
// returns false and how long until one is, rounded up to whole seconds (as
// a Retry-After header carries it).
func (l *limiters) take(token string, now time.Time) (bool, time.Duration) {
	lim, ok := l.byToken[token]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byToken[token] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	secs := math.Ceil(missing / float64(l.limit))
	return false, time.Duration(max(secs, 1)) * time.Second
}
