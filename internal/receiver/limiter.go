package receiver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// limiter is a token bucket per resource (that is, per receiver URL).
type limiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[types.UID]*bucket
}

type bucket struct {
	*rate.Limiter
	used time.Time
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[types.UID]*bucket{}}
}

// allow takes a token from uid's bucket.
func (l *limiter) allow(uid types.UID) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[uid]
	if b == nil {
		b = &bucket{Limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[uid] = b
	}
	b.used = now
	return b.AllowN(now, 1)
}

// prune forgets buckets unused since before that are full again: a new
// one would be the same. (A bucket still refilling, under a limit slower
// than a burst a minute, is kept, or its resource would get a burst early.)
func (l *limiter) prune(before time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for uid, b := range l.buckets {
		if b.used.Before(before) && b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, uid)
		}
	}
}
