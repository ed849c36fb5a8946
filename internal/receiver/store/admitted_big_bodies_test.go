package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// TestAdmittedBigBodiesNeverWedgeTheCheckpoint: what
// TestAdmittedWritesAlwaysFitACheckpoint checks with bodies of up to 6 KB,
// with bodies the receiver takes (MaxBodyBytes is 1 MiB): kept garbage
// from one token holder, 512 KiB each, until the store refuses. Admission
// used to pass every write, yet checkpoints failed with "database reached
// maximum size" and kept failing: the store then refused every write that
// adds data (Ping, Reschedule, Bury too), for every resource, until a
// restart. (bbolt kept up to four such bodies on one leaf and copied them
// all, in one run of pages, whenever one was added; see bodies.go.)
// 16 MiB by default; ATTACK_MAX_BYTES=1073741824 ATTACK_BODY_BYTES=1024000
// (the shipped StoreMaxBytes, bodies just under MaxBodyBytes) failed the
// same way after 864 bodies (13 s).
func TestAdmittedBigBodiesNeverWedgeTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var failures []error
	s, err := Open(t.TempDir(), Options{MaxBytes: attackMaxBytes(), OnCheckpoint: func(_ int, _ time.Duration, err error) {
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
	for i := 0; i < 5000 && refused < 5; i++ {
		body := append([]byte(fmt.Sprintf("garbage %d ", i)), bytes.Repeat([]byte("x"), attackBodyBytes())...)
		now := time.Now()
		dl := Delivery{Key: Key{Target: "(kept)"}, Due: now, DeadAt: now}
		_, err := s.Accept(ctx, Incoming{Event: Event{UID: "u", Namespace: "ns", Name: "hook", ID: fmt.Sprint(i), ReceivedAt: now},
			Body: body, DedupScope: "u", DedupKey: body[:16], DedupUntil: now.Add(time.Hour), DeadLetter: &dl})
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, berrors.ErrMaxSizeReached):
			refused++
			_ = s.sync(ctx) // let the checkpoint catch up before trying again
		default:
			t.Fatalf("after %d bodies: %v", accepted, err)
		}
	}
	syncErr := s.sync(ctx)
	mu.Lock()
	n := len(failures)
	mu.Unlock()
	t.Logf("%d bodies of %d bytes accepted, %d refused; %d failed checkpoints; sync: %v", accepted, attackBodyBytes(), refused, n, syncErr)
	if n > 0 || syncErr != nil {
		t.Errorf("a checkpoint failed although admission passed every write: %v / %v", syncErr, failures)
	}
	// Is the store wedged? A small write, a few checkpoint intervals later.
	deadline := time.Now().Add(3 * time.Second)
	var pingErr error
	for time.Now().Before(deadline) {
		if pingErr = s.Ping(ctx); pingErr == nil {
			break
		}
		_ = s.sync(ctx)
	}
	if pingErr != nil {
		t.Errorf("3 s later the store still refuses a small write (readiness fails, every resource's events get 503): %v", pingErr)
	}
}

func attackMaxBytes() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("ATTACK_MAX_BYTES"), &n); err == nil {
		return n
	}
	return 16 << 20
}

func attackBodyBytes() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("ATTACK_BODY_BYTES"), &n); err == nil {
		return n
	}
	return 512 << 10
}
