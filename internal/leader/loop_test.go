package leader

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// script is a fake Term: the n-th call runs steps[n-1].
type script struct {
	t      *testing.T
	steps  []func(ctx context.Context, elected func()) error
	calls  int
	sleeps []time.Duration
}

func (s *script) term(ctx context.Context, elected func()) error {
	s.calls++
	if s.calls > len(s.steps) {
		s.t.Fatalf("term %d was not expected", s.calls)
	}
	return s.steps[s.calls-1](ctx, elected)
}

func (s *script) sleep(ctx context.Context, d time.Duration) error {
	s.sleeps = append(s.sleeps, d)
	return ctx.Err()
}

func (s *script) loop(elect bool) *Loop {
	return &Loop{Term: s.term, Elect: elect, MinBackoff: time.Second, MaxBackoff: 5 * time.Second, Log: logr.Discard(), sleep: s.sleep}
}

func leads(err error) func(context.Context, func()) error {
	return func(_ context.Context, elected func()) error {
		elected()
		if isLeader := testutil.ToFloat64(isLeader); isLeader != 1 {
			return fmt.Errorf("meetergo_operator_is_leader is %v while leading", isLeader)
		}
		return err
	}
}

func fails(err error) func(context.Context, func()) error {
	return func(context.Context, func()) error { return err }
}

// counts reads the terms counter by outcome.
func counts() (lost, failed float64) {
	registerMetrics()
	return testutil.ToFloat64(termsEnded.WithLabelValues(OutcomeLost)), testutil.ToFloat64(termsEnded.WithLabelValues(OutcomeFailed))
}

// TestLoopCampaignsAgainAfterLossAndFailure: a lost Lease and failed terms
// are each followed by a new campaign after a wait that starts short after
// a term that led and doubles over terms that did not; each end is counted
// by outcome; the gauge follows leading; the context's end ends the loop
// without an error.
func TestLoopCampaignsAgainAfterLossAndFailure(t *testing.T) {
	lost0, failed0 := counts()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &script{t: t}
	s.steps = []func(context.Context, func()) error{
		leads(lostError(errors.New("leader election lost"))),
		fails(errors.New("failed to wait for caches to sync")),
		fails(errors.New("failed to wait for caches to sync")),
		fails(errors.New("failed to wait for caches to sync")),
		leads(lostError(errors.New("leader election lost"))),
		func(ctx context.Context, elected func()) error {
			elected()
			elected() // at most once counts
			cancel()  // the process stops while this term leads
			<-ctx.Done()
			return nil
		},
	}
	if err := s.loop(true).Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if s.calls != 6 {
		t.Errorf("%d terms, want 6", s.calls)
	}
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, time.Second}
	if fmt.Sprint(s.sleeps) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", s.sleeps, want)
	}
	lost, failed := counts()
	if lost-lost0 != 2 || failed-failed0 != 3 {
		t.Errorf("terms ended: lost +%v, failed +%v; want +2, +3", lost-lost0, failed-failed0)
	}
	if v := testutil.ToFloat64(isLeader); v != 0 {
		t.Errorf("meetergo_operator_is_leader %v after the loop ended", v)
	}
}

// TestLoopWaitsAtMostMaxBackoff: terms that keep failing wait 1, 2, 4, 5,
// 5 s (the maximum); a term that led resets the wait.
func TestLoopWaitsAtMostMaxBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &script{t: t}
	boom := errors.New("boom")
	for range 5 {
		s.steps = append(s.steps, fails(boom))
	}
	s.steps = append(s.steps, leads(boom), fails(boom), func(context.Context, func()) error { cancel(); return nil })
	if err := s.loop(true).Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	want := []time.Duration{1, 2, 4, 5, 5, 1, 1}
	for i := range want {
		want[i] *= time.Second
	}
	if fmt.Sprint(s.sleeps) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", s.sleeps, want)
	}
}

// TestLoopEndsWhenTheContextEndsDuringTheWait: no further term is started.
func TestLoopEndsWhenTheContextEndsDuringTheWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &script{t: t}
	s.steps = []func(context.Context, func()) error{leads(lostError(errors.New("leader election lost")))}
	l := s.loop(true)
	l.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepCtx(ctx, time.Hour)
	}
	if err := l.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if s.calls != 1 {
		t.Errorf("%d terms, want 1", s.calls)
	}
}

// TestLoopWithoutElection: one term; its failure is the loop's (the process
// exits, as before); a term that stops on its own is a failure too; the
// context's end is not; a shutdown error is passed on.
func TestLoopWithoutElection(t *testing.T) {
	lost0, failed0 := counts()
	boom := errors.New("boom")
	s := &script{t: t, steps: []func(context.Context, func()) error{leads(boom)}}
	if err := s.loop(false).Start(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Start: %v, want %v", err, boom)
	}
	s = &script{t: t, steps: []func(context.Context, func()) error{leads(nil)}}
	if err := s.loop(false).Start(context.Background()); err == nil {
		t.Error("Start: nil after the only term stopped on its own")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s = &script{t: t, steps: []func(context.Context, func()) error{func(ctx context.Context, elected func()) error {
		elected()
		cancel()
		return ctx.Err()
	}}}
	if err := s.loop(false).Start(ctx); err != nil {
		t.Errorf("Start: %v after the context ended", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	shutdown := errors.New("failed waiting for all runnables to end within grace period")
	s = &script{t: t, steps: []func(context.Context, func()) error{func(ctx context.Context, _ func()) error { cancel(); return shutdown }}}
	if err := s.loop(false).Start(ctx); !errors.Is(err, shutdown) {
		t.Errorf("Start: %v, want the shutdown error", err)
	}
	if lost, failed := counts(); lost != lost0 || failed != failed0 {
		t.Errorf("terms counted without leader election: lost +%v, failed +%v", lost-lost0, failed-failed0)
	}
	if len(s.sleeps) != 0 {
		t.Errorf("waited %v without leader election", s.sleeps)
	}
}

func TestElectionValidate(t *testing.T) {
	ok := Election{Enabled: true, Namespace: "ns", Name: "lease", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (Election{}).Validate(); err != nil {
		t.Errorf("disabled: %v", err)
	}
	for name, mutate := range map[string]func(*Election){
		"no namespace":            func(e *Election) { e.Namespace = "" },
		"no name":                 func(e *Election) { e.Name = "" },
		"lease not above renew":   func(e *Election) { e.LeaseDuration = e.RenewDeadline },
		"renew not above retry":   func(e *Election) { e.RenewDeadline = e.RetryPeriod * 12 / 10 },
		"retry zero":              func(e *Election) { e.RetryPeriod = 0 },
		"renew below 1.2 × retry": func(e *Election) { e.RetryPeriod = 9 * time.Second },
	} {
		e := ok
		mutate(&e)
		if err := e.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, e)
		}
	}
}
