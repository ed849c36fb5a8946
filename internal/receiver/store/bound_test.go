package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// dirSize is the total size of the files in dir.
func dirSize(t testing.TB, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Error(err)
		return 0
	}
	var n int64
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Error(err)
			return 0
		}
		n += info.Size()
	}
	return n
}

// logSizes are the sizes of the log's files in dir.
func logSizes(t testing.TB, dir string) []int64 {
	t.Helper()
	var out []int64
	for i := range 2 {
		info, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s%d", walFilePrefix, i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, info.Size())
	}
	return out
}

// TestDataDirStaysWithinMaxBytesUnderConcurrentLargeBodies: 32 clients
// send bodies of up to 1000 KiB at once to a 16 MiB store, two thirds of
// them delivered (deleted) at once and the rest kept, so that groups of many large
// bodies meet a database file whose free space is in pieces. The files in
// the data directory must stay within MaxBytes at every moment: after
// every commit and every checkpoint, and in between as a sampler sees
// them. (A group of large bodies used to be one log record, written past
// the end of its log file, which then kept that size: 6 MB on disk with a
// 4 MiB bound.) No checkpoint may fail, and what was acknowledged and not
// deleted is all there after a restart.
func TestDataDirStaysWithinMaxBytesUnderConcurrentLargeBodies(t *testing.T) {
	const maxBytes = 16 << 20
	ctx := context.Background()
	dir := t.TempDir()
	var peak atomic.Int64
	var mu sync.Mutex
	var failures []error
	measure := func() {
		n := dirSize(t, dir)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				return
			}
		}
	}
	opts := Options{MaxBytes: maxBytes,
		OnCommit: func(int, time.Duration, error) { measure() },
		OnCheckpoint: func(_ int, _ time.Duration, err error) {
			measure()
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		}}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop, sampled := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				sampled <- n
				return
			default:
			}
			measure()
			n++
		}
	}()
	kept := map[uint64][]byte{}
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 24 {
				in := incoming(fmt.Sprintf("%d-%d", w, i), "t")
				size := 256<<10 + (w*7919+i*104729)%(744<<10)
				in.Body = append([]byte(fmt.Sprintf("%d-%d ", w, i)), bytes.Repeat([]byte{byte('a' + w%26)}, size)...)
				acc, err := s.Accept(ctx, in)
				switch {
				case errors.Is(err, berrors.ErrMaxSizeReached):
					// As meetergo retries a 503: after the next
					// checkpoint, which frees what was delivered.
					refused.Add(1)
					_ = s.sync(ctx)
					continue
				case err != nil:
					t.Errorf("client %d, body %d: %v", w, i, err)
					return
				}
				accepted.Add(1)
				if (w+i)%3 == 0 {
					mu.Lock()
					kept[acc.Event.Seq] = in.Body
					mu.Unlock()
					continue
				}
				if err := s.Finish(ctx, Key{acc.Event.Seq, "t"}); err != nil {
					t.Errorf("client %d, body %d: finishing: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.sync(ctx); err != nil {
		t.Errorf("checkpoint: %v", err)
	}
	close(stop)
	samples := <-sampled
	measure()
	t.Logf("%d bodies accepted, %d refused; %d kept; at most %d bytes in the data directory (bound %d; %d samples)",
		accepted.Load(), refused.Load(), len(kept), peak.Load(), maxBytes, samples)
	if p := peak.Load(); p > maxBytes {
		t.Errorf("the data directory took %d bytes, beyond MaxBytes (%d)", p, maxBytes)
	}
	mu.Lock()
	if len(failures) > 0 {
		t.Errorf("%d checkpoints failed: %v", len(failures), failures[0])
	}
	mu.Unlock()
	if refused.Load() == 0 {
		t.Errorf("nothing was refused: the test means to fill the store")
	}
	crash(t, s)
	s, err = Open(dir, Options{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	got := loadAll(t, s)
	if len(got) != len(kept) {
		t.Errorf("%d deliveries after a restart, want %d", len(got), len(kept))
	}
	for seq, want := range kept {
		body, err := s.Body(seq)
		if err != nil || !bytes.Equal(body, want) {
			t.Errorf("event %d after a restart: %d bytes, %v; want %d bytes", seq, len(body), err, len(want))
		}
	}
	if n := dirSize(t, dir); n > maxBytes {
		t.Errorf("after a restart the data directory takes %d bytes, beyond MaxBytes (%d)", n, maxBytes)
	}
}

// TestLogFilesReturnToTheirSizeAfterACheckpoint: concurrent writes of
// bodies larger than a log file's free part, and one write that deletes
// more than a log file holds (a resource's every delivery finished at
// once). The log files keep their size through the first; the second is
// taken whole (deleting is how a full store makes room), and the file it
// grew is cut back to its size by its checkpoint. What was written is
// there after a crash.
func TestLogFilesReturnToTheirSizeAfterACheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var grown atomic.Int64
	opts := Options{MaxBytes: 1 << 20, OnCommit: func(int, time.Duration, error) {
		for i := range 2 {
			if info, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s%d", walFilePrefix, i))); err == nil {
				grown.Store(max(grown.Load(), info.Size()))
			}
		}
	}}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	logSize := s.logSize
	check := func(when string) {
		t.Helper()
		if err := s.sync(ctx); err != nil {
			t.Fatalf("%s: checkpoint: %v", when, err)
		}
		for i, n := range logSizes(t, dir) {
			if n != logSize {
				t.Errorf("%s, checkpointed: log file %d takes %d bytes, want its size %d", when, i, n, logSize)
			}
		}
	}

	var wg sync.WaitGroup
	var keys []Key
	var mu sync.Mutex
	for w := range 16 {
		wg.Go(func() {
			for i := range 4 {
				in := incoming(fmt.Sprintf("big-%d-%d", w, i), "t")
				in.Body = bytes.Repeat([]byte("b"), 20<<10)
				acc, err := s.Accept(ctx, in)
				if errors.Is(err, berrors.ErrMaxSizeReached) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				keys = append(keys, Key{acc.Event.Seq, "t"})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if g := grown.Load(); g > logSize {
		t.Errorf("writes that add data grew a log file to %d bytes, beyond its size %d", g, logSize)
	}
	check("after concurrent bodies of 20 KiB")
	if err := s.Finish(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	check("after the large bodies were delivered")

	keys = keys[:0]
	for i := 0; i < 900; i++ {
		acc, err := s.Accept(ctx, incoming(fmt.Sprintf("small-%d", i), strings.Repeat("t", 40)))
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, Key{acc.Event.Seq, strings.Repeat("t", 40)})
	}
	check(fmt.Sprintf("after %d small events", len(keys)))
	grown.Store(0)
	if err := s.Finish(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	if g := grown.Load(); g <= logSize {
		t.Fatalf("finishing %d deliveries at once grew no log file beyond %d bytes; the test means to", len(keys), logSize)
	}
	check(fmt.Sprintf("after finishing %d deliveries at once", len(keys)))
	crash(t, s)
	s, err = Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if got := loadAll(t, s); len(got) != 0 {
		t.Errorf("%d deliveries came back after a crash", len(got))
	}
}
