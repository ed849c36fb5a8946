package meetergo

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// idleBudgetTTL is how long an unused credential's bucket is kept beyond
// the time it takes to refill. A dropped bucket is full anyway, so dropping
// it only frees memory (credentials get rotated; old ones must not pile up).
const idleBudgetTTL = 10 * time.Minute

// budgets holds one rate budget per credential fingerprint, shared by every
// call of one HTTPClient.
type budgets struct {
	limit rate.Limit
	burst int
	ttl   time.Duration

	mu        sync.Mutex
	byKey     map[string]*budget
	lastSweep time.Time
}

// budget is one credential's token bucket plus the pause meetergo asked for
// in its last 429, which every caller of the credential honours.
type budget struct {
	limiter *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time
	lastUsed    time.Time
}

func newBudgets(requestsPerMinute, burst int) *budgets {
	limit := rate.Limit(float64(requestsPerMinute) / 60)
	refill := time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	return &budgets{limit: limit, burst: burst, ttl: refill + idleBudgetTTL, byKey: map[string]*budget{}}
}

// get returns the budget of the credential with fingerprint key, creating
// it on first use and dropping buckets idle for longer than the TTL.
func (bs *budgets) get(key string, now time.Time) *budget {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if now.Sub(bs.lastSweep) > bs.ttl {
		for k, b := range bs.byKey {
			if now.Sub(b.used()) > bs.ttl {
				delete(bs.byKey, k)
			}
		}
		bs.lastSweep = now
	}
	b, ok := bs.byKey[key]
	if !ok {
		b = &budget{limiter: rate.NewLimiter(bs.limit, bs.burst)}
		bs.byKey[key] = b
	}
	b.touch(now)
	return b
}

func (b *budget) touch(now time.Time) {
	b.mu.Lock()
	b.lastUsed = now
	b.mu.Unlock()
}

func (b *budget) used() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastUsed
}

// pause makes every caller of this credential wait until now+d.
func (b *budget) pause(now time.Time, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := now.Add(d); until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
}

// pauseLeft is how much of the pause remains at now.
func (b *budget) pauseLeft(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pausedUntil.Sub(now)
}
