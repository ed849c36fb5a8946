package controller

import (
	"context"
	"fmt"
	"sync"
)

// inflight counts running reconciles so that a leader term can wait for
// them once it is over. Its zero value admits every reconcile.
type inflight struct {
	mu      sync.Mutex
	running int
	closed  bool
	idle    chan struct{} // closed when running drops to zero after drain
}

// enter admits a reconcile, unless the term is over.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.running++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if f.running == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// drain admits no more reconciles and waits for the running ones.
func (f *inflight) drain(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	if f.running == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		n := f.running
		f.mu.Unlock()
		return fmt.Errorf("%d reconciles still running: %w", n, ctx.Err())
	}
}

// Drain ends the reconciler's term: it admits no more reconciles (a request
// still queued returns at once) and waits, until ctx ends, for those
// running to return. A leader term calls it once its manager has stopped:
// a manager that lost its Lease stops without waiting for its workers, and
// the next term must not decide for a company while this one still does.
// The slot gauges, this leader's view, are cleared.
func (r *MeetergoWebhookReconciler) Drain(ctx context.Context) error {
	err := r.inflight.drain(ctx)
	companySlots.Reset()
	return err
}
