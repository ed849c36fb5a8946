package controller

import (
	"context"
	"testing"
	"time"
)

// TestDrainWaitsForRunningReconcilesAndAdmitsNoMore: what a leader term
// relies on when its manager stopped without waiting for its workers.
func TestDrainWaitsForRunningReconcilesAndAdmitsNoMore(t *testing.T) {
	var f inflight
	if !f.enter() || !f.enter() {
		t.Fatal("a fresh reconciler refuses reconciles")
	}
	drained := make(chan error, 1)
	go func() { drained <- f.drain(context.Background()) }()
	// Once draining, nothing more is admitted.
	deadline := time.Now().Add(5 * time.Second)
	for f.enter() {
		f.leave()
		if time.Now().After(deadline) {
			t.Fatal("still admitting reconciles while draining")
		}
		time.Sleep(time.Millisecond)
	}
	f.leave()
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) with a reconcile running", err)
	case <-time.After(50 * time.Millisecond):
	}
	f.leave()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not return once the reconciles ended")
	}
	if err := f.drain(context.Background()); err != nil {
		t.Errorf("a second drain: %v", err)
	}
}

func TestDrainGivesUpWithItsContext(t *testing.T) {
	var f inflight
	f.enter()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.drain(ctx); err == nil {
		t.Fatal("drain returned nil with a reconcile still running")
	}
	f.leave()
}
