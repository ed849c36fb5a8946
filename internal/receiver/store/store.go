// Package store keeps the receiver's accepted events, their pending
// deliveries and dead letters, and the duplicate-detection window, in one
// bbolt file.
//
// Every write goes through a single commit loop that puts all writes
// waiting at that moment into one transaction and one fsync (group commit):
// at low load a write costs one sync, under load hundreds of requests share
// it, and nothing waits on a timer. A write returns only after its
// transaction is on disk, so a caller may acknowledge what it wrote.
//
// The store knows nothing of Kubernetes or HTTP: it keeps opaque events and
// delivery states by key. Delivered events are deleted, so the file's
// pages are reused and its size follows what is pending, not what was ever
// received.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the name of the database file in the data directory.
const FileName = "receiver.db"

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store: closed")

// Options tune a Store.
type Options struct {
	// MaxBytes bounds the database file; a write that would grow it beyond
	// answers an error (the receiver then answers 503). 0 means 1 GiB.
	MaxBytes int
	// MaxBatch bounds how many writes share one transaction. 0 means 1024.
	MaxBatch int
	// LockTimeout is how long Open waits for another process to release the
	// file. 0 means 10 s.
	LockTimeout time.Duration
	// OnCommit, if set, is told the size and duration of every commit (for
	// metrics).
	OnCommit func(writes int, took time.Duration, err error)
}

func (o *Options) defaults() {
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 30
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1024
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 10 * time.Second
	}
}

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options
	// dedup indexes the duplicate keys in memory; only the commit loop
	// touches it once the store is open.
	dedup dedupIndex

	// mu guards closed; writers hold it shared while they hand a write to
	// the loop, so Close cannot strand one.
	mu     sync.RWMutex
	closed bool
	writes chan *write
	done   chan struct{}
}

// write is one caller's part of a transaction.
type write struct {
	fn  func(tx *txn) error
	err chan error
}

// txn is a write transaction with what is to happen once it is committed
// (changes to in-memory indexes, which a rolled-back transaction must not
// leave behind).
type txn struct {
	*bolt.Tx
	// staged are duplicate keys added by this transaction, visible to its
	// later writes before they reach the index.
	staged      map[dedupDigest]int64
	afterCommit []func()
}

// run runs fns in one bolt transaction and, if it commits, the
// after-commit work they registered.
func (s *Store) run(fns ...func(*txn) error) error {
	t := &txn{staged: map[dedupDigest]int64{}}
	err := s.db.Update(func(tx *bolt.Tx) error {
		t.Tx = tx
		for _, fn := range fns {
			if err := fn(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, f := range t.afterCommit {
			f()
		}
	}
	return err
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating %s: %w", dir, err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The free list is rebuilt on open instead of written on every
		// commit: less to sync per request.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		MaxSize:        opts.MaxBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", dir, err)
	}
	if err := db.Update(createBuckets); err != nil {
		return nil, errors.Join(fmt.Errorf("store: initialising %s: %w", dir, err), db.Close())
	}
	s := &Store{db: db, opts: opts, writes: make(chan *write, opts.MaxBatch), done: make(chan struct{})}
	if err := s.loadDedup(); err != nil {
		return nil, errors.Join(fmt.Errorf("store: loading %s: %w", dir, err), db.Close())
	}
	go s.commitLoop()
	return s, nil
}

// Close finishes the writes already handed in, then closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.writes)
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}

// update runs fn in a durable transaction shared with other writers and
// waits until it is on disk. fn may run more than once (alone, if the shared
// transaction failed), so it must set its results afresh each time.
func (s *Store) update(ctx context.Context, fn func(tx *txn) error) error {
	w := &write{fn: fn, err: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.writes <- w
	s.mu.RUnlock()
	select {
	case err := <-w.err:
		return err
	case <-ctx.Done():
		// The write may still commit; callers treat it as not done.
		return ctx.Err()
	}
}

// view runs fn in a read transaction; reads never wait for writers.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return s.db.View(fn)
}

// commitLoop takes the first waiting write, adds every other write already
// waiting (up to MaxBatch), and commits them together.
func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*write, 0, s.opts.MaxBatch)
	for w := range s.writes {
		batch = append(batch[:0], w)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case w, ok := <-s.writes:
				if !ok {
					break fill
				}
				batch = append(batch, w)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch in one transaction. If it fails, each write is retried
// in a transaction of its own, so one bad write cannot fail its neighbours.
func (s *Store) commit(batch []*write) {
	start := time.Now()
	fns := make([]func(*txn) error, len(batch))
	for i, w := range batch {
		fns[i] = w.fn
	}
	err := s.run(fns...)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(len(batch), time.Since(start), err)
	}
	if err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.err <- err
		}
		return
	}
	for _, w := range batch {
		w.err <- s.run(w.fn)
	}
}

// Ping commits a small write: it fails when the store cannot take writes
// (closed, disk full, file over MaxBytes, I/O errors).
func (s *Store) Ping(ctx context.Context) error {
	return s.update(ctx, func(tx *txn) error {
		return tx.Bucket(bucketMeta).Put([]byte("ping"), encodeTime(time.Now()))
	})
}

// Size is the database file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}
