// Package leader runs the operator's reconcilers in leader terms, apart from
// the rest of the process.
//
// controller-runtime ends a manager for good when it loses its leader
// Lease, and such a process is meant to exit. The receiver must not go
// with it: it serves on every replica, leader or not, and keeps taking
// meetergo's events while the API server is away. So the process runs an
// always-on manager without leader election (receiver, probes, metrics)
// and this package's Loop inside it: each term builds a fresh manager with
// leader election and a fresh reconciler (ManagerTerm), campaigns, runs
// the reconciler while it leads, and when the Lease is lost the term ends
// and, after a short wait, the next one campaigns. Without leader election
// there is one term, which runs until the process stops.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// ErrLost is wrapped by the error of a term that ended because its Lease
// could not be renewed in time.
var ErrLost = errors.New("leadership lost")

// Term runs one leader term. It calls elected once when it starts to lead
// (without leader election: when the reconcilers start), and returns when
// the term is over: once ctx is done (nil, or an error of the shutdown),
// with an error wrapping ErrLost when the Lease was lost, or with any other
// error when the term failed. Everything it started has stopped when it
// returns.
type Term func(ctx context.Context, elected func()) error

// Default waits between terms.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
)

// Loop runs terms one after the other until its context ends. It is a
// controller-runtime Runnable that needs no leader election, to be added to
// the always-on manager.
type Loop struct {
	// Term runs one term.
	Term Term
	// Elect is true with leader election: a term that ends is followed by
	// another. Without it the only term's end (other than the context's)
	// ends Start with its error, as a manager's failure ends the process.
	Elect bool
	// MinBackoff is the wait before campaigning again after a term that
	// led (DefaultMinBackoff when zero); after terms that never led it
	// doubles with each, up to MaxBackoff (DefaultMaxBackoff when zero).
	MinBackoff, MaxBackoff time.Duration
	Log                    logr.Logger

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// NeedLeaderElection is false: the loop runs on every replica and does the
// campaigning itself.
func (l *Loop) NeedLeaderElection() bool { return false }

// Start runs terms until ctx is done.
func (l *Loop) Start(ctx context.Context) error {
	registerMetrics()
	minWait, maxWait := l.MinBackoff, l.MaxBackoff
	if minWait <= 0 {
		minWait = DefaultMinBackoff
	}
	if maxWait < minWait {
		maxWait = max(DefaultMaxBackoff, minWait)
	}
	sleep := l.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	failedInARow := 0 // terms that ended without leading
	for n := 1; ; n++ {
		log := l.Log.WithValues("term", n)
		if l.Elect {
			log.Info("campaigning for leadership")
		}
		st := &termState{began: time.Now()}
		err := l.Term(ctx, func() {
			if st.elect() {
				isLeader.Set(1)
				if l.Elect {
					log.Info("leading: the MeetergoWebhook reconciler runs", "campaigned", time.Since(st.began).Round(time.Millisecond).String())
				}
			}
		})
		isLeader.Set(0)
		led, ledFor := st.result()
		if ctx.Err() != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err // a failed shutdown
		}
		if !l.Elect {
			if err == nil {
				err = errors.New("the reconciler's manager stopped")
			}
			return err
		}

		wait := minWait
		if led {
			failedInARow = 0
		} else {
			failedInARow++
			for i := 1; i < failedInARow && wait < maxWait; i++ {
				wait *= 2
			}
			wait = min(wait, maxWait)
		}
		switch {
		case errors.Is(err, ErrLost):
			termsEnded.WithLabelValues(OutcomeLost).Inc()
			log.Info("leadership lost: the reconciler stopped, the receiver keeps serving; campaigning again",
				"led", ledFor.Round(time.Millisecond).String(), "retryIn", wait.String(), "reason", err.Error())
		default:
			if err == nil {
				err = errors.New("the term's manager stopped")
			}
			termsEnded.WithLabelValues(OutcomeFailed).Inc()
			log.Error(err, "leader term failed; campaigning again", "led", led, "retryIn", wait.String())
		}
		if sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// termState is what a term's elected callback saw.
type termState struct {
	mu      sync.Mutex
	began   time.Time
	elected time.Time
}

// elect notes the start of leading; true the first time.
func (s *termState) elect() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.elected.IsZero() {
		return false
	}
	s.elected = time.Now()
	return true
}

// result tells whether the term led, and for how long.
func (s *termState) result() (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.elected.IsZero() {
		return false, 0
	}
	return true, time.Since(s.elected)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lostError wraps ErrLost with the manager's own error.
func lostError(err error) error {
	return fmt.Errorf("%w: %w", ErrLost, err)
}
