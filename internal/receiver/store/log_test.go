package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// crash closes s the way a crash leaves it: whatever the log holds beyond
// the last checkpoint stays only in the log.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.crash = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// snapshot is everything a store holds, as its readers see it.
type snapshot struct {
	deliveries map[Key]Delivery
	bodies     map[uint64]string
	meta       map[string]string
}

func snap(t *testing.T, s *Store, metaNames ...string) snapshot {
	t.Helper()
	out := snapshot{deliveries: loadAll(t, s), bodies: map[uint64]string{}, meta: map[string]string{}}
	for k := range out.deliveries {
		b, err := s.Body(k.Seq)
		if err != nil {
			t.Fatalf("delivery %s: %v", k, err)
		}
		out.bodies[k.Seq] = string(b)
	}
	for _, n := range metaNames {
		v, err := s.Meta(n)
		if err != nil {
			t.Fatal(err)
		}
		out.meta[n] = v
	}
	return out
}

func (a snapshot) equal(b snapshot) bool {
	if len(a.deliveries) != len(b.deliveries) || len(a.bodies) != len(b.bodies) || len(a.meta) != len(b.meta) {
		return false
	}
	for k, d := range a.deliveries {
		e, ok := b.deliveries[k]
		if !ok || d.Attempts != e.Attempts || !d.Due.Equal(e.Due) || d.LastError != e.LastError || !d.DeadAt.Equal(e.DeadAt) {
			return false
		}
	}
	for k, v := range a.bodies {
		if b.bodies[k] != v {
			return false
		}
	}
	for k, v := range a.meta {
		if b.meta[k] != v {
			return false
		}
	}
	return true
}

// TestCrashKeepsEverythingAcknowledged writes every kind of change, some
// checkpointed and some only in the log, "crashes" (no final checkpoint),
// reopens, and finds exactly what a store given the same writes and closed
// cleanly holds; then does it again on the recovered store.
func TestCrashKeepsEverythingAcknowledged(t *testing.T) {
	ctx := context.Background()
	// A long interval: nothing is checkpointed unless asked for.
	opts := Options{CheckpointInterval: time.Hour}
	writes := func(s *Store, round int) {
		t.Helper()
		accept := func(key string, targets ...string) Accepted {
			t.Helper()
			acc, err := s.Accept(ctx, incoming(fmt.Sprintf("%d-%s", round, key), targets...))
			if err != nil || acc.Duplicate {
				t.Fatalf("accept %s: %+v, %v", key, acc, err)
			}
			return acc
		}
		a := accept("a", "one", "two")
		b := accept("b", "one")
		// Everything so far goes into the database file.
		if err := s.sync(ctx); err != nil {
			t.Fatal(err)
		}
		c := accept("c", "one")
		accept("d")
		e := accept("e", "one")
		for _, err := range []error{
			s.Finish(ctx, Key{a.Event.Seq, "one"}),
			s.Reschedule(ctx, Delivery{Key: Key{a.Event.Seq, "two"}, Attempts: 2, Due: t0.Add(time.Minute), LastError: "HTTP 503"}),
			s.Finish(ctx, Key{b.Event.Seq, "one"}),
			s.Bury(ctx, Delivery{Key: Key{c.Event.Seq, "one"}, Attempts: 5, DeadAt: t0, LastError: "HTTP 400"}),
			s.Revive(ctx, nil, fmt.Sprintf("replay/%d", round), "v1"),
			s.Finish(ctx, Key{e.Event.Seq, "one"}),
			s.DeleteMeta(ctx, fmt.Sprintf("replay/%d", round-1)),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	dir, refDir := t.TempDir(), t.TempDir()
	names := []string{"replay/0", "replay/1", "ping"}
	for round := range 2 {
		s, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := Open(refDir, opts)
		if err != nil {
			t.Fatal(err)
		}
		writes(s, round)
		writes(ref, round)
		if s.logs[s.active].off == 0 {
			t.Fatal("nothing left only in the log: the test would prove nothing")
		}
		crash(t, s)
		if err := ref.Close(); err != nil {
			t.Fatal(err)
		}

		s, ref = open(t, dir), open(t, refDir)
		got, want := snap(t, s, names...), snap(t, ref, names...)
		if !got.equal(want) || len(want.deliveries) != 2*(round+1) {
			t.Fatalf("round %d: after the crash\n%+v\nwant\n%+v", round, got, want)
		}
		for _, key := range []string{"a", "b", "c", "d", "e"} {
			if dup, err := s.Accept(ctx, incoming(fmt.Sprintf("%d-%s", round, key), "one")); err != nil || !dup.Duplicate {
				t.Errorf("round %d: key %s not remembered after the crash: %+v, %v", round, key, dup, err)
			}
		}
		_ = s.Close()
		_ = ref.Close()
	}
}

// TestTornLogTailIsIgnored: a record cut short (a crash during its write,
// never acknowledged) and the garbage after it end the log; what came
// before is recovered.
func TestTornLogTailIsIgnored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.Accept(ctx, incoming("kept", "t"))
	if err != nil {
		t.Fatal(err)
	}
	lf := s.logs[s.active]
	end := lf.off
	if _, err := s.Accept(ctx, incoming("torn", "t")); err != nil {
		t.Fatal(err)
	}
	torn := lf.off
	crash(t, s)

	// Cut the second record in half and put garbage behind it.
	path := filepath.Join(dir, walFilePrefix+"0")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := end + (torn-end)/2
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, int(torn-half)+100), half); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	s = open(t, dir)
	got := loadAll(t, s)
	if len(got) != 1 || got[Key{acc.Event.Seq, "t"}].Key.Seq != acc.Event.Seq {
		t.Fatalf("after a torn record: %v, want only the delivery of %d", got, acc.Event.Seq)
	}
	if dup, _ := s.Accept(ctx, incoming("torn", "t")); dup.Duplicate {
		t.Error("the torn (never acknowledged) record's key was recovered")
	}
}

// TestLogFilesTakeTurns writes far more than the log files hold, so they
// are sealed, checkpointed and reused many times, with readers and
// deliveries under way, then crashes and recovers.
func TestLogFilesTakeTurns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	checkpoints := 0
	opts := Options{MaxBytes: 4 << 20, CheckpointInterval: 5 * time.Millisecond,
		OnCheckpoint: func(_ int, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			checkpoints++
		}}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("b"), 3000)
	var wg sync.WaitGroup
	kept := map[uint64]bool{}
	var keptMu sync.Mutex
	for w := range 8 {
		wg.Go(func() {
			for i := range 150 {
				in := incoming(fmt.Sprintf("%d-%d", w, i), "t")
				in.Body = append(bytes.Clone(body), fmt.Sprint(w, i)...)
				acc, err := s.Accept(ctx, in)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Body(acc.Event.Seq)
				if err != nil || !bytes.Equal(got, in.Body) {
					t.Errorf("reading back %d: %v", acc.Event.Seq, err)
					return
				}
				if i%3 == 0 {
					keptMu.Lock()
					kept[acc.Event.Seq] = true
					keptMu.Unlock()
					continue
				}
				if err := s.Finish(ctx, Key{acc.Event.Seq, "t"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	if checkpoints < 4 {
		t.Errorf("%d checkpoints; the test means to reuse the log files", checkpoints)
	}
	mu.Unlock()
	crash(t, s)
	s = open(t, dir)
	got := loadAll(t, s)
	if len(got) != len(kept) {
		t.Fatalf("%d deliveries after recovery, want %d", len(got), len(kept))
	}
	for k := range got {
		if !kept[k.Seq] {
			t.Errorf("delivery %s came back", k)
		}
	}
}

// TestFullStoreRefusesUntilDeliveriesFreeSpace fills a small store: new
// events are refused with bbolt's ErrMaxSizeReached (the receiver's logs
// and readiness depend on the error, and on OnCommit hearing of it), what
// was acknowledged stays; once the deliveries are finished, the store
// takes events again, and its files keep within MaxBytes throughout.
func TestFullStoreRefusesUntilDeliveriesFreeSpace(t *testing.T) {
	ctx := context.Background()
	var refused error
	var mu sync.Mutex
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 1 << 20, OnCommit: func(_ int, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			refused = err
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	checkFiles := func(when string) {
		t.Helper()
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			bound := s.budget
			if e.Name() != FileName {
				// A group never passes the end of a log file.
				bound = s.logSize
			}
			if info.Size() > bound {
				t.Errorf("%s: %s takes %d bytes, beyond its part of MaxBytes (%d)", when, e.Name(), info.Size(), bound)
			}
		}
	}
	fill := func(round int) []Key {
		t.Helper()
		var keys []Key
		for n := 0; n < 1000; n++ {
			in := incoming(fmt.Sprintf("%d-%d", round, n), "t")
			in.Body = bytes.Repeat([]byte("x"), 10<<10)
			acc, err := s.Accept(ctx, in)
			if err != nil {
				if !errors.Is(err, berrors.ErrMaxSizeReached) || n == 0 {
					t.Fatalf("round %d, after %d events of 10 KB: %v, want ErrMaxSizeReached after some", round, n, err)
				}
				return keys
			}
			keys = append(keys, Key{acc.Event.Seq, "t"})
		}
		t.Fatalf("round %d: 1000 events of 10 KB fitted in 1 MiB", round)
		return nil
	}
	keys := fill(0)
	mu.Lock()
	if !errors.Is(refused, berrors.ErrMaxSizeReached) {
		t.Errorf("OnCommit heard %v", refused)
	}
	mu.Unlock()
	checkFiles("full")
	for _, k := range keys {
		if _, err := s.Body(k.Seq); err != nil {
			t.Fatalf("an acknowledged event's body: %v", err)
		}
	}
	// The target comes back: everything is delivered, and there is room
	// again for about as many.
	if err := s.Finish(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	// Room comes back as checkpoints apply the deletions and bbolt frees
	// their pages (a freed page is reusable after the next transaction),
	// so a refusal on the way is retried, as meetergo retries a 503.
	again, refusedAgain := 0, 0
	for deadline := time.Now().Add(10 * time.Second); again < len(keys)/2 && time.Now().Before(deadline); {
		in := incoming(fmt.Sprintf("after-%d", again), "t")
		in.Body = bytes.Repeat([]byte("x"), 10<<10)
		switch _, err := s.Accept(ctx, in); {
		case err == nil:
			again++
		case errors.Is(err, berrors.ErrMaxSizeReached):
			refusedAgain++
			time.Sleep(10 * time.Millisecond) // the next checkpoint frees more
		default:
			t.Fatal(err)
		}
	}
	t.Logf("after delivering %d events, %d fitted again within 10 s (%d refusals on the way)", len(keys), again, refusedAgain)
	if again < len(keys)/2 {
		t.Errorf("after delivering %d events, only %d fitted again within 10 s", len(keys), again)
	}
	fill(1) // and the bound holds once full again
	if err := s.sync(ctx); err != nil && !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatal(err)
	}
	checkFiles("full again")
}

// TestAdmittedWritesAlwaysFitACheckpoint fills a small store with events
// of mixed sizes (none delivered): admission must refuse before the
// database file is too full for a checkpoint, so that every checkpoint
// succeeds and "full" means only "refuse what adds data". (Admission used
// to count data but not bbolt's page copies and growth steps: checkpoints
// then failed for good, with Ping, Reschedule and Bury refused too.)
func TestAdmittedWritesAlwaysFitACheckpoint(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var failures []error
	s, err := Open(t.TempDir(), Options{MaxBytes: 512 << 10, CheckpointInterval: 2 * time.Millisecond,
		OnCheckpoint: func(_ int, _ time.Duration, err error) {
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	accepted, refused := 0, 0
	for i := 0; i < 2000 && refused < 20; i++ {
		in := incoming(fmt.Sprint(i), "t")
		in.Body = bytes.Repeat([]byte("x"), 100+(i*7919)%6000)
		switch _, err := s.Accept(ctx, in); {
		case err == nil:
			accepted++
		case errors.Is(err, berrors.ErrMaxSizeReached):
			refused++
		default:
			t.Fatalf("after %d events: %v", accepted, err)
		}
	}
	if refused == 0 {
		t.Fatalf("%d events fitted in 512 KiB", accepted)
	}
	if err := s.sync(ctx); err != nil {
		t.Errorf("checkpoint of the full store: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d events accepted, then %d refused; %d failed checkpoints", accepted, refused, len(failures))
	if len(failures) > 0 {
		t.Errorf("a checkpoint failed although admission passed every write: %v", failures[0])
	}
}

// TestAcceptGivenUpOnLeavesNoRace: a caller whose context ends while its
// write waits for the commit loop must not read what the loop writes for
// it later (run with -race). The loop is held by another write until the
// caller's context is done, and released from a goroutine that has no
// ordering with the caller, as a real slow commit would be.
func TestAcceptGivenUpOnLeavesNoRace(t *testing.T) {
	s := open(t, t.TempDir())
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.update(context.Background(), func(*txn) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	context.AfterFunc(ctx, func() { close(hold) })
	acc, err := s.Accept(ctx, incoming("late", "t"))
	if !errors.Is(err, context.DeadlineExceeded) || acc != (Accepted{}) {
		t.Fatalf("Accept = %+v, %v; want nothing and the deadline", acc, err)
	}
	// The loop runs the abandoned write now; wait until it has.
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
