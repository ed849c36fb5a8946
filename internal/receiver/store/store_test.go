package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func incoming(key string, targets ...string) Incoming {
	return Incoming{
		Event:      Event{UID: "uid-1", Namespace: "ns", Name: "hook", Type: "booking_created", ID: "msg_" + key, ReceivedAt: t0},
		Body:       []byte(`{"webhookType":"booking_created","id":"` + key + `"}`),
		DedupScope: "uid-1",
		DedupKey:   []byte(key),
		DedupUntil: t0.Add(time.Hour),
		Targets:    targets,
	}
}

// loadAll returns every delivery by key, with its event.
func loadAll(t *testing.T, s *Store) map[Key]Delivery {
	t.Helper()
	out := map[Key]Delivery{}
	if err := s.Load(func(_ Event, d Delivery) { out[d.Key] = d }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAcceptIsDurableAndDeduplicated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)

	acc, err := s.Accept(ctx, incoming("a", "svc:http/", "other:80/x"))
	if err != nil || acc.Duplicate || acc.Event.Seq == 0 {
		t.Fatalf("first accept: %+v, %v", acc, err)
	}
	dup, err := s.Accept(ctx, incoming("a", "svc:http/"))
	if err != nil || !dup.Duplicate {
		t.Fatalf("second accept of the same key: %+v, %v; want a duplicate", dup, err)
	}
	other := incoming("a", "svc:http/")
	other.DedupScope = "uid-2"
	if acc2, err := s.Accept(ctx, other); err != nil || acc2.Duplicate {
		t.Fatalf("the same key for another resource: %+v, %v; want a new event", acc2, err)
	}
	noTargets, err := s.Accept(ctx, incoming("b"))
	if err != nil || noTargets.Event.Seq != 0 {
		t.Fatalf("accept without targets: %+v, %v; want only the key kept", noTargets, err)
	}
	if again, _ := s.Accept(ctx, incoming("b")); !again.Duplicate {
		t.Fatal("an event without targets was not remembered as seen")
	}

	// Reopen: everything acknowledged is there.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	got := loadAll(t, s)
	if len(got) != 3 {
		t.Fatalf("after reopening: %d deliveries, want 3: %v", len(got), got)
	}
	d := got[Key{Seq: acc.Event.Seq, Target: "svc:http/"}]
	if d.Attempts != 0 || !d.Due.Equal(t0) || d.Dead() {
		t.Errorf("fresh delivery state %+v", d)
	}
	body, err := s.Body(acc.Event.Seq)
	if err != nil || !bytes.Equal(body, incoming("a").Body) {
		t.Errorf("body %q, %v", body, err)
	}
	if dup, _ := s.Accept(ctx, incoming("a")); !dup.Duplicate {
		t.Error("the duplicate key was lost on reopen")
	}
}

func TestDeliveryLifecycle(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	acc, err := s.Accept(ctx, incoming("a", "one", "two"))
	if err != nil {
		t.Fatal(err)
	}
	one, two := Key{acc.Event.Seq, "one"}, Key{acc.Event.Seq, "two"}

	if err := s.Reschedule(ctx, Delivery{Key: one, Attempts: 3, Due: t0.Add(time.Minute), LastError: "HTTP 503"}); err != nil {
		t.Fatal(err)
	}
	if d := loadAll(t, s)[one]; d.Attempts != 3 || d.LastError != "HTTP 503" {
		t.Errorf("rescheduled state %+v", d)
	}
	if err := s.Bury(ctx, Delivery{Key: two, Attempts: 1}); err == nil {
		t.Error("Bury without DeadAt succeeded")
	}
	if err := s.Bury(ctx, Delivery{Key: two, Attempts: 1, DeadAt: t0, LastError: "HTTP 400"}); err != nil {
		t.Fatal(err)
	}
	if d := loadAll(t, s)[two]; !d.Dead() || d.LastError != "HTTP 400" {
		t.Errorf("dead letter %+v", d)
	}

	// Delivering one keeps the body: the dead letter still needs it.
	if err := s.Finish(ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Body(acc.Event.Seq); err != nil {
		t.Fatalf("body gone while a dead letter refers to it: %v", err)
	}

	if err := s.Revive(ctx, []Delivery{{Key: two, Due: t0}}, "replay/uid-1", "v1"); err != nil {
		t.Fatal(err)
	}
	if d := loadAll(t, s)[two]; d.Dead() || d.Attempts != 0 {
		t.Errorf("revived delivery %+v", d)
	}
	if v, _ := s.Meta("replay/uid-1"); v != "v1" {
		t.Errorf("replay value %q", v)
	}

	if err := s.Finish(ctx, two); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, s); len(got) != 0 {
		t.Errorf("deliveries left: %v", got)
	}
	if _, err := s.Body(acc.Event.Seq); err == nil {
		t.Error("the body outlived its last delivery")
	}
}

func TestSweepDedup(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	for i := range 5 {
		in := incoming(fmt.Sprint(i))
		in.DedupUntil = t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.Accept(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.SweepDedup(ctx, t0.Add(2*time.Minute), 100)
	if err != nil || n != 3 {
		t.Fatalf("swept %d (%v), want 3 (keys 0, 1, 2)", n, err)
	}
	for i, wantDup := range []bool{false, false, false, true, true} {
		if acc, _ := s.Accept(ctx, incoming(fmt.Sprint(i))); acc.Duplicate != wantDup {
			t.Errorf("key %d: duplicate=%v, want %v", i, acc.Duplicate, wantDup)
		}
	}
}

func TestConcurrentWritersShareCommits(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	commits, writes := 0, 0
	s, err := Open(t.TempDir(), Options{OnCommit: func(n int, _ time.Duration, _ error) {
		mu.Lock()
		commits++
		writes += n
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := s.Accept(ctx, incoming(fmt.Sprint(i), "t")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(loadAll(t, s)); got != n {
		t.Fatalf("%d deliveries stored, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if writes != n || commits >= n {
		t.Errorf("%d writes in %d commits: want %d writes sharing fewer commits", writes, commits, n)
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(context.Background(), incoming("a", "t")); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
}

func TestSecondOpenWaitsForTheLock(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	if _, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("a second Open of a locked store succeeded")
	}
}

func TestMaxBytesRefusesGrowthAndRollsBack(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	in := incoming("big", "t")
	in.Body = bytes.Repeat([]byte("x"), 512<<10)
	if _, err := s.Accept(context.Background(), in); err == nil {
		t.Fatal("a write beyond MaxBytes succeeded")
	}
	// The refused event left no duplicate key behind: sent again, it is new.
	in.Body = []byte("{}")
	if acc, err := s.Accept(context.Background(), in); err != nil || acc.Duplicate {
		t.Errorf("the refused event sent again: %+v, %v; want it accepted", acc, err)
	}
}

// loadEvents returns every delivery by key with the event it refers to.
func loadEvents(t *testing.T, s *Store) map[Key]Event {
	t.Helper()
	out := map[Key]Event{}
	if err := s.Load(func(ev Event, d Delivery) { out[d.Key] = ev }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAnEventCanBeKeptAsADeadLetterAndReroutedLater: an event stored with
// a dead letter instead of deliveries (a body the receiver could not read)
// is durable and deduplicated like any; a replay replaces that dead letter
// with pending deliveries under a new record of the event, or, with none,
// deletes the event, in the transaction that records the replay value.
func TestAnEventCanBeKeptAsADeadLetterAndReroutedLater(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	kept := func(key string) Incoming {
		in := incoming(key, "ignored:80/")
		in.Event.Type = ""
		in.DeadLetter = &Delivery{Key: Key{Target: "(kept)"}, Due: t0, DeadAt: t0, LastError: "not read"}
		return in
	}
	if _, err := s.Accept(ctx, Incoming{Event: Event{ReceivedAt: t0}, DedupKey: []byte("x"), DeadLetter: &Delivery{Key: Key{Target: "(kept)"}}}); err == nil {
		t.Error("a dead letter without DeadAt was taken")
	}
	a, err := s.Accept(ctx, kept("a"))
	if err != nil || a.Duplicate || a.Event.Seq == 0 {
		t.Fatalf("keeping an event: %+v, %v", a, err)
	}
	if dup, err := s.Accept(ctx, kept("a")); err != nil || !dup.Duplicate {
		t.Fatalf("the same body kept again: %+v, %v; want a duplicate", dup, err)
	}
	b, err := s.Accept(ctx, kept("b"))
	if err != nil {
		t.Fatal(err)
	}
	deadA, deadB := Key{a.Event.Seq, "(kept)"}, Key{b.Event.Seq, "(kept)"}

	// Reopen: the dead letters are there, and only they.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	got := loadAll(t, s)
	if len(got) != 2 || !got[deadA].Dead() || got[deadA].LastError != "not read" || !got[deadB].Dead() {
		t.Fatalf("after reopening: %+v; want the two dead letters only", got)
	}

	// a is read as booking_created with two targets; b as nothing to
	// deliver.
	evA := a.Event
	evA.Type = "booking_created"
	err = s.Replay(ctx, nil, []Reroute{
		{Dead: deadA, Event: evA, To: []Delivery{{Key: Key{a.Event.Seq, "one"}, Due: t0}, {Key: Key{a.Event.Seq, "two"}, Due: t0}}},
		{Dead: deadB, Event: b.Event},
	}, "replay/uid-1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Meta("replay/uid-1"); v != "v1" {
		t.Errorf("replay value %q", v)
	}
	for range 2 { // before and after a reopen
		events := loadEvents(t, s)
		if len(events) != 2 || events[Key{a.Event.Seq, "one"}].Type != "booking_created" || events[Key{a.Event.Seq, "two"}].ID != a.Event.ID {
			t.Fatalf("after the replay: %+v; want a's two deliveries under its new record", events)
		}
		if d := loadAll(t, s)[Key{a.Event.Seq, "one"}]; d.Dead() {
			t.Errorf("rerouted delivery %+v is dead", d)
		}
		if _, err := s.Body(b.Event.Seq); err == nil {
			t.Error("the body of an event rerouted to nothing was kept")
		}
		if body, err := s.Body(a.Event.Seq); err != nil || !bytes.Equal(body, kept("a").Body) {
			t.Errorf("body of the rerouted event: %q, %v", body, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
	}
	if err := s.Finish(ctx, Key{a.Event.Seq, "one"}, Key{a.Event.Seq, "two"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Body(a.Event.Seq); err == nil {
		t.Error("the body outlived its last delivery")
	}
}
