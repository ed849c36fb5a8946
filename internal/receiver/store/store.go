// Package store keeps the receiver's accepted events, their pending
// deliveries and dead letters, and the duplicate-detection window.
//
// A write is durable once it is in the log: every write goes through a
// single commit loop that puts all writes waiting at that moment into one
// log record (as many as fit in what is left of the log file; the rest go
// into the next), written with one fdatasync (group commit): at low load a
// write costs one sync, under load hundreds of requests share it, and
// nothing waits on a timer. A write returns only after its record is on
// disk, so a caller may acknowledge what it wrote. The log's files are
// filled with zeros ahead of use, so that a sync writes data blocks only.
//
// The log is applied to a bbolt file in the background (a checkpoint, with
// bbolt's own two syncs) every CheckpointInterval or every few MiB of log;
// until then reads find what was written in memory (the overlay). Keys
// written and deleted between two checkpoints, such as the body of an
// event delivered within a few milliseconds, never reach the bbolt file.
// On Open, whatever the log holds beyond the last checkpoint is applied
// again; every change in the log is a blind write (put, delete, raise the
// sequence), so applying it twice is harmless.
//
// The store knows nothing of Kubernetes or HTTP: it keeps opaque events and
// delivery states by key. Delivered events are deleted, so the file's
// pages are reused and its size follows what is pending, not what was ever
// received.
package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the database file in the data directory; the
// log is kept beside it in files starting with receiver.log.
const FileName = "receiver.db"

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store: closed")

// Options tune a Store.
type Options struct {
	// MaxBytes bounds the store's files: each of the two log files takes
	// a sixteenth of it (at most 8 MiB), the database file the rest. A
	// write that would not fit (in the database file, or in a log file:
	// a write larger than a log file can never be taken) answers an error
	// wrapping bbolt's ErrMaxSizeReached (the receiver then answers 503);
	// writes that only delete are always taken, so finished deliveries
	// make room again (one larger than a log file grows that file until
	// its checkpoint). What was acknowledged is never dropped to keep the
	// bound. 0 means 1 GiB.
	MaxBytes int
	// MaxBatch bounds how many writes share one log record. 0 means 1024.
	MaxBatch int
	// LockTimeout is how long Open waits for another process to release the
	// file. 0 means 10 s.
	LockTimeout time.Duration
	// CheckpointInterval is the longest a write stays in the log (and in
	// memory) before it is applied to the database file. 0 means 100 ms.
	CheckpointInterval time.Duration
	// OnCommit, if set, is told the size and duration of every group
	// commit (for metrics), and an error if the group failed or refused a
	// write.
	OnCommit func(writes int, took time.Duration, err error)
	// OnCheckpoint, if set, is told how many keys every checkpoint wrote
	// to the database file, and how long it took.
	OnCheckpoint func(keys int, took time.Duration, err error)
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
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 100 * time.Millisecond
	}
}

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options
	ov   *overlay

	// budget bounds the bbolt file; limit is what admission lets it use
	// (bbolt grows the file by AllocSize beyond what it needs); inUse is
	// what it uses (its size less its free pages) as of the last
	// checkpoint.
	budget, limit int64
	inUse         atomic.Int64
	// logSize is each log file's size; the log is sealed for a checkpoint
	// at half of it.
	logSize int64
	// failed holds the last checkpoint's error until one succeeds; writes
	// that add data are refused meanwhile.
	failed atomic.Pointer[error]

	// Owned by the commit loop once open.
	dedup  dedupIndex
	live   map[Key]uint8
	refs   map[uint64]int
	seq    uint64
	logs   [2]*logFile
	active int
	group  stage
	one    stage
	errs   []error

	ckptReq  chan uint64
	ckptDone chan ckptResult
	// ckptStop ends the checkpointer's retries once shutdown has had the
	// last result it waits for.
	ckptStop chan struct{}
	closing  atomic.Bool
	// crash makes Close skip the final checkpoint, as a crash would (tests).
	crash bool

	// mu guards closed; writers hold it shared while they hand a write to
	// the loop, so Close cannot strand one.
	mu     sync.RWMutex
	closed bool
	writes chan *write
	done   chan struct{}
	// closeErr is the final checkpoint's error, set before done closes.
	closeErr error
}

// write is one caller's part of a group commit, or a barrier: a request
// to wait until everything written before it is in the database file.
type write struct {
	fn      func(tx *txn) error
	barrier bool
	err     chan error
}

type ckptResult struct {
	upTo uint64
	err  error
}

// Open opens (or creates) the store in dir, applying what its log holds
// beyond the database file's last checkpoint.
func Open(dir string, opts Options) (*Store, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating %s: %w", dir, err)
	}
	// Each of the two log files takes a sixteenth of MaxBytes, 4 KiB to
	// 8 MiB; the database file may use the rest.
	logSize := LogFileSize(int64(opts.MaxBytes))
	s := &Store{
		opts: opts, ov: newOverlay(), logSize: logSize, budget: int64(opts.MaxBytes) - 2*logSize,
		live: map[Key]uint8{}, refs: map[uint64]int{},
		ckptReq: make(chan uint64, 1), ckptDone: make(chan ckptResult), ckptStop: make(chan struct{}),
		writes: make(chan *write, opts.MaxBatch), done: make(chan struct{}),
	}
	// The database opens without a size bound: what the log holds was
	// acknowledged and must find room. The bound applies from then on.
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The free list is rebuilt on open instead of written on every
		// checkpoint.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", dir, err)
	}
	s.db = db
	fail := func(what string, err error) (*Store, error) {
		for _, lf := range s.logs {
			if lf != nil {
				_ = lf.f.Close()
			}
		}
		return nil, errors.Join(fmt.Errorf("store: %s %s: %w", what, dir, err), db.Close())
	}
	if err := db.Update(createBuckets); err != nil {
		return fail("initialising", err)
	}
	for i := range s.logs {
		if s.logs[i], err = openLogFile(filepath.Join(dir, fmt.Sprintf("%s%d", walFilePrefix, i)), logSize); err != nil {
			return fail("opening the log of", err)
		}
	}
	// The file grows in steps of AllocSize (16 MiB by default): in steps
	// of a sixteenth for a small store, so that most of it can be used.
	// Recovery too: a default step would take the file beyond the bound.
	db.AllocSize = int(min(max(s.budget/16, 32<<10), 16<<20) &^ 4095)
	last, err := s.recover()
	if err != nil {
		return fail("recovering", err)
	}
	db.MaxSize = int(s.budget)
	// Admission leaves room for what a checkpoint needs beyond the data it
	// adds: bbolt grows the file in steps of AllocSize and refuses a step
	// that would pass MaxSize less one step, and a commit writes new copies
	// of every page it changes before the old ones are free (at most a
	// sealed log's worth of changes per checkpoint). Without it a store
	// could admit writes that no checkpoint can then write.
	s.limit = s.budget - 2*int64(db.AllocSize) - s.logSize
	if err := s.load(); err != nil {
		return fail("loading", err)
	}
	s.refreshUsage()
	// Everything the log holds is in the database file now.
	for _, lf := range s.logs {
		s.shrinkLog(lf)
	}
	s.logs[0].epoch, s.logs[0].off = last+1, 0
	s.active = 0
	go s.checkpointLoop()
	go s.commitLoop(last)
	return s, nil
}

// recover applies the log's records of epochs beyond the database's
// checkpoint, in epoch order, and returns the last epoch the database
// then holds.
func (s *Store) recover() (uint64, error) {
	var checkpointed uint64
	if err := s.view(func(tx *bolt.Tx) error {
		checkpointed = decodeUint(tx.Bucket(bucketMeta).Get(walEpochKey))
		return nil
	}); err != nil {
		return 0, err
	}
	type segment struct {
		epoch uint64
		ops   []op
	}
	var segs []segment
	for _, lf := range s.logs {
		epoch, ops, err := lf.read()
		if err != nil {
			return 0, err
		}
		if epoch > checkpointed {
			segs = append(segs, segment{epoch, ops})
		}
	}
	if len(segs) == 0 {
		return checkpointed, nil
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.epoch, b.epoch) })
	last := segs[len(segs)-1].epoch
	err := s.db.Update(func(tx *bolt.Tx) error {
		// Filled as a checkpoint fills them, so that what recovery writes
		// takes the pages admission counted (bbolt's default of 0.5 would
		// split a leaf of body parts after two of its four).
		var bs [len(bucketNames)]*bolt.Bucket
		for i, name := range bucketNames {
			bs[i] = tx.Bucket(name)
			if bucketID(i) != bMeta {
				bs[i].FillPercent = fillPercent
			}
		}
		for _, seg := range segs {
			for _, o := range seg.ops {
				b := bs[o.bucket]
				var err error
				switch {
				case o.kind == opPut && o.bucket == bBodies:
					err = putBody(b, o.key, o.value)
				case o.kind == opPut:
					err = b.Put(o.key, o.value)
				case o.kind == opDelete && o.bucket == bBodies:
					err = deleteBody(b, o.key)
				case o.kind == opDelete:
					err = b.Delete(o.key)
				case o.kind == opSeq:
					if o.n > b.Sequence() {
						err = b.SetSequence(o.n)
					}
				}
				if err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(walEpochKey, encodeUint(last))
	})
	return last, err
}

// load fills the in-memory indexes from the database.
func (s *Store) load() error {
	if err := s.loadDedup(); err != nil {
		return err
	}
	return s.view(func(tx *bolt.Tx) error {
		s.seq = tx.Bucket(bucketEvents).Sequence()
		for bit, name := range map[uint8][]byte{livePending: bucketPending, liveDead: bucketDead} {
			err := tx.Bucket(name).ForEach(func(k, _ []byte) error {
				key, err := parseKey(k)
				if err != nil {
					return nil // LoadRepairing removes it
				}
				if s.live[key]&bit == 0 {
					s.live[key] |= bit
					s.refs[key.Seq]++
				}
				s.seq = max(s.seq, key.Seq)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// refreshUsage reads how much of the database file is in use.
func (s *Store) refreshUsage() {
	var size int64
	_ = s.view(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	st := s.db.Stats()
	s.inUse.Store(size - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize))
}

// Close finishes the writes already handed in and the checkpoint of
// everything written, then closes the files. If that checkpoint fails,
// the log keeps what it would have written for the next Open.
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
	errs := []error{s.closeErr}
	for _, lf := range s.logs {
		errs = append(errs, lf.f.Close())
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// update runs fn in the next group commit and waits until that is on
// disk. fn runs once, in the commit loop; it must only describe its
// changes through the txn and set its results.
func (s *Store) update(ctx context.Context, fn func(tx *txn) error) error {
	return s.submit(ctx, fn, false)
}

// sync waits until everything written before it is in the database file.
func (s *Store) sync(ctx context.Context) error {
	return s.submit(ctx, nil, true)
}

// writePool recycles writes whose answer was taken.
var writePool = sync.Pool{New: func() any { return &write{err: make(chan error, 1)} }}

func (s *Store) submit(ctx context.Context, fn func(tx *txn) error, barrier bool) error {
	w, err := s.handIn(fn, barrier)
	if err != nil {
		return err
	}
	return w.wait(ctx)
}

// handIn gives a write to the commit loop, which will carry it out and
// answer it whatever its caller does from then on.
func (s *Store) handIn(fn func(tx *txn) error, barrier bool) (*write, error) {
	w := writePool.Get().(*write)
	w.fn, w.barrier = fn, barrier
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		w.fn = nil
		writePool.Put(w)
		return nil, ErrClosed
	}
	s.writes <- w
	s.mu.RUnlock()
	return w, nil
}

// wait returns the write's result, or ctx's error if ctx ends first (at
// once if it already has). The write may then still commit: the loop
// still holds it, so it is not recycled.
func (w *write) wait(ctx context.Context) error {
	if ctx.Err() == nil {
		select {
		case err := <-w.err:
			w.fn = nil
			writePool.Put(w)
			return err
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}

// view runs fn in a read transaction of the database file; reads never
// wait for writers.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return s.db.View(fn)
}

// read returns a copy of a key's value: from the overlay if the key was
// written since the last checkpoint, else from the database file.
func (s *Store) read(b bucketID, key []byte) ([]byte, bool, error) {
	if v, ok := s.ov.get(b, key); ok {
		return slices.Clone(v), v != nil, nil
	}
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b == bBodies {
			out = getBody(tx.Bucket(bucketBodies), key)
		} else if v := tx.Bucket(bucketNames[b]).Get(key); v != nil {
			out = slices.Clone(v)
		}
		return nil
	})
	return out, out != nil, err
}

// commitLoop takes the first waiting write, adds every other write already
// waiting (up to MaxBatch), and commits them together; between groups it
// seals the log for checkpoints.
func (s *Store) commitLoop(checkpointed uint64) {
	defer close(s.done)
	l := loop{s: s, lastCkpt: checkpointed, timer: time.NewTimer(time.Hour)}
	l.timer.Stop()
	batch := make([]*write, 0, s.opts.MaxBatch)
	for {
		select {
		case w, ok := <-s.writes:
			if !ok {
				l.shutdown()
				return
			}
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
			l.group(batch)
		case r := <-s.ckptDone:
			l.done(r)
		case <-l.timer.C:
			l.timerSet = false
			if s.logs[s.active].off > 0 {
				if l.inflight {
					l.arm(s.opts.CheckpointInterval / 4)
				} else {
					l.seal()
				}
			}
		}
	}
}

// loop is the commit loop's state besides the Store's.
type loop struct {
	s          *Store
	lastCkpt   uint64 // the last epoch in the database file
	inflight   bool   // a checkpoint runs (the other log file is taken)
	sealWanted bool   // seal once it is done
	waiters    []waiter
	timer      *time.Timer
	timerSet   bool
	crashing   bool // shutdown in crash mode (tests): start no checkpoint
}

type waiter struct {
	epoch uint64
	err   chan error
}

func (l *loop) arm(d time.Duration) {
	if !l.timerSet {
		l.timer.Reset(d)
		l.timerSet = true
	}
}

// group commits a batch: each write describes its changes, a write that
// fails (or would overfill the store) is answered alone, the rest go into
// log records and their syncs: one record as long as it fits in what is
// left of the active log file, else the writes so far are committed and
// the log moves to its other file (see makeRoom) for the rest. A log file
// therefore never grows beyond its size, but for a write that only
// deletes and is larger than a log file on its own: it is taken all the
// same (deleting is how a full store makes room), and the file is cut back
// to its size once its epoch is checkpointed.
func (l *loop) group(batch []*write) {
	s := l.s
	start := time.Now()
	g := &s.group
	g.reset()
	t := txn{s: s, g: g, w: &s.one}
	s.errs = slices.Grow(s.errs[:0], len(batch))[:len(batch)]
	clear(s.errs)
	var barriers []*write
	// The writes batch[first:i] are in g; gSize bounds g's record.
	first, gSize := 0, int64(walHeaderSize)
	for i, w := range batch {
		if w.barrier {
			barriers = append(barriers, w)
			continue
		}
		t.w.reset()
		err := w.fn(&t)
		if err == nil && t.w.bytes > 0 {
			err = s.admit(g, t.w)
		}
		size := opsSize(t.w.ops)
		if err == nil && size > 0 && gSize+size > s.logSize-s.logs[s.active].off {
			// g's record, with this write, would pass the end of the
			// log file: commit g, then make room for this write.
			if !g.empty() || i > first {
				l.commit(batch[first:i], s.errs[first:i], start)
				start = time.Now()
				g.reset()
			}
			first, gSize = i, walHeaderSize
			err = l.makeRoom(walHeaderSize+size, t.w.bytes > 0)
			if err == nil && t.w.bytes > 0 {
				// The checkpoint waited for may have changed what the
				// database file holds.
				err = s.admit(g, t.w)
			}
		}
		if err != nil {
			s.errs[i] = err
			continue
		}
		g.merge(t.w)
		gSize += size
	}
	l.commit(batch[first:], s.errs[first:], start)
	for _, b := range barriers {
		l.barrier(b)
	}
}

// admit refuses a write that adds data (w, after group g) when the store
// cannot take it: the database file cannot take a checkpoint, or it would
// pass what admission lets it use.
func (s *Store) admit(g, w *stage) error {
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("store: the database file cannot take writes: %w", *f)
	}
	if s.inUse.Load()+s.ov.bytes.Load()+g.bytes+w.bytes > s.limit {
		return fmt.Errorf("store: %w", berrors.ErrMaxSizeReached)
	}
	return nil
}

// makeRoom makes the active log file able to take a record of size bytes
// once the group before it is committed: the log moves to its other file,
// after waiting for that file's checkpoint if one runs. A record that
// adds data and is larger than a log file, or that needs the other file
// while its checkpoint fails, is refused; one that only deletes is taken
// anyway (the file then grows beyond its size until it is checkpointed).
func (l *loop) makeRoom(size int64, adds bool) error {
	s := l.s
	if s.logs[s.active].off+size <= s.logSize {
		return nil
	}
	if size > s.logSize {
		if adds {
			return fmt.Errorf("store: a write of %d bytes is larger than the log (%d bytes): %w", size, s.logSize, berrors.ErrMaxSizeReached)
		}
		if s.logs[s.active].off == 0 {
			return nil
		}
	}
	if l.inflight && s.failed.Load() == nil {
		l.done(<-s.ckptDone)
	}
	switch {
	case s.logs[s.active].off == 0:
		// done sealed the file that was active
	case !l.inflight:
		l.seal()
	case adds:
		err := fmt.Errorf("store: the log is full until a checkpoint succeeds: %w", berrors.ErrMaxSizeReached)
		if f := s.failed.Load(); f != nil {
			err = fmt.Errorf("store: the log is full until a checkpoint succeeds: %w", *f)
		}
		return err
	}
	return nil
}

// commit writes g (the changes of the writes ws that did not fail) as one
// log record and answers ws: with their own error, else the record's.
func (l *loop) commit(ws []*write, errs []error, start time.Time) {
	s := l.s
	g := &s.group
	var ioErr error
	if !g.empty() {
		lf := s.logs[s.active]
		epoch := lf.epoch
		rec := encodeRecord(epoch, lf.off, g.ops)
		if ioErr = lf.append(rec); ioErr == nil {
			s.apply(g, epoch)
			l.arm(s.opts.CheckpointInterval)
		}
	}
	writes := 0
	var refused error
	for i, w := range ws {
		if w.barrier {
			continue
		}
		writes++
		if refused == nil && errs[i] != nil {
			refused = errs[i]
		}
	}
	if s.opts.OnCommit != nil && writes > 0 {
		err := ioErr
		if err == nil {
			err = refused
		}
		s.opts.OnCommit(writes, time.Since(start), err)
	}
	for i, w := range ws {
		if w.barrier {
			continue
		}
		err := errs[i]
		if err == nil {
			err = ioErr
		}
		w.err <- err
	}
	l.afterGroup()
}

// opsSize bounds what ops add to a log record (see encodeRecord).
func opsSize(ops []op) int64 {
	var n int64
	for i := range ops {
		n += 2 + binary.MaxVarintLen64
		if ops[i].kind != opSeq {
			n += binary.MaxVarintLen64 + int64(len(ops[i].key)+len(ops[i].value))
		}
	}
	return n
}

// apply makes a durable group's changes the store's state.
func (s *Store) apply(g *stage, epoch uint64) {
	s.seq = max(s.seq, g.seq)
	for d, until := range g.dedup {
		s.dedup[d] = max(s.dedup[d], until)
	}
	for _, e := range g.swept {
		if s.dedup[e.digest] == e.until {
			delete(s.dedup, e.digest)
		}
	}
	for k, b := range g.live {
		if b == 0 {
			delete(s.live, k)
		} else {
			s.live[k] = b
		}
	}
	for seq, n := range g.refs {
		if v := s.refs[seq] + n; v == 0 {
			delete(s.refs, seq)
		} else {
			s.refs[seq] = v
		}
	}
	s.ov.apply(g.ops, epoch)
}

// afterGroup seals the log when it has grown enough: at once if no
// checkpoint runs, else when it is done; a full log waits for it.
func (l *loop) afterGroup() {
	s := l.s
	lf := s.logs[s.active]
	switch {
	case lf.off < s.logSize/2:
	case !l.inflight:
		l.seal()
	case lf.off >= s.logSize && s.failed.Load() == nil:
		// The other file is still being checkpointed: wait for it
		// rather than grow this one beyond what was prepared.
		l.done(<-s.ckptDone)
		if !l.inflight && s.logs[s.active].off > 0 {
			l.seal()
		}
	default:
		l.sealWanted = true
	}
}

// seal hands the active log file's epoch to the checkpointer and goes on
// with the other file. The other file must be free.
func (l *loop) seal() {
	s := l.s
	old := s.logs[s.active]
	s.active = 1 - s.active
	next := s.logs[s.active]
	next.epoch, next.off = old.epoch+1, 0
	l.inflight, l.sealWanted = true, false
	if l.timerSet {
		l.timer.Stop()
		l.timerSet = false
	}
	s.ckptReq <- old.epoch
}

// done takes a checkpoint's result.
func (l *loop) done(r ckptResult) {
	if r.err != nil {
		// The checkpointer tries again; those waiting learn why it failed.
		for _, w := range l.waiters {
			w.err <- r.err
		}
		l.waiters = l.waiters[:0]
		return
	}
	l.inflight = false
	l.lastCkpt = r.upTo
	for _, lf := range l.s.logs {
		if lf.epoch == r.upTo {
			l.s.shrinkLog(lf)
		}
	}
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		if w.epoch <= r.upTo {
			w.err <- nil
		} else {
			keep = append(keep, w)
		}
	}
	l.waiters = keep
	off := l.s.logs[l.s.active].off
	// A crash (tests) stops at once: no further checkpoint may start.
	if off > 0 && !l.crashing && (l.sealWanted || len(l.waiters) > 0 || off >= l.s.logSize/2) {
		l.seal()
	}
}

// barrier answers b once everything written so far is in the database.
func (l *loop) barrier(b *write) {
	s := l.s
	lf := s.logs[s.active]
	target := lf.epoch - 1
	if lf.off > 0 {
		target = lf.epoch
	}
	if target <= l.lastCkpt {
		b.err <- nil
		return
	}
	l.waiters = append(l.waiters, waiter{epoch: target, err: b.err})
	if target == lf.epoch && !l.inflight {
		l.seal()
	}
}

// shutdown checkpoints what the log holds, then stops the checkpointer.
// If a checkpoint fails, the log keeps what it would have written.
func (l *loop) shutdown() {
	s := l.s
	s.closing.Store(true)
	for {
		if s.crash && l.inflight {
			l.crashing = true
			l.done(<-s.ckptDone)
			break
		}
		if s.crash {
			break
		}
		if l.inflight {
			r := <-s.ckptDone
			l.done(r)
			if r.err != nil {
				s.closeErr = fmt.Errorf("store: final checkpoint: %w", r.err)
				break
			}
			continue
		}
		if s.logs[s.active].off > 0 {
			l.seal()
			continue
		}
		break
	}
	for _, w := range l.waiters {
		w.err <- ErrClosed
	}
	close(s.ckptStop)
	close(s.ckptReq)
	l.timer.Stop()
}

// checkpointLoop writes sealed epochs into the database file, retrying
// one that fails until it succeeds (or the store has closed).
func (s *Store) checkpointLoop() {
	for upTo := range s.ckptReq {
		for {
			start := time.Now()
			entries, seq := s.ov.collect(upTo)
			err := writeCheckpoint(s.db, entries, seq, upTo)
			if errors.Is(err, berrors.ErrMaxSizeReached) {
				entries, err = s.fullCheckpoint(upTo)
			}
			if s.opts.OnCheckpoint != nil {
				s.opts.OnCheckpoint(len(entries), time.Since(start), err)
			}
			if err == nil {
				// Usage first: between the two, admission counts the
				// checkpointed data twice rather than not at all.
				s.refreshUsage()
				s.ov.forget(entries, upTo)
				s.failed.Store(nil)
			} else {
				err = fmt.Errorf("store: checkpoint: %w", err)
				s.failed.Store(&err)
			}
			// A failed checkpoint is retried until it succeeds or the
			// store has closed: shutdown waits for a result while one is
			// in flight, so the checkpointer must not give up on its own
			// (it once did on seeing the store closing, after the commit
			// loop had taken the failure: Close then waited for ever).
			select {
			case s.ckptDone <- ckptResult{upTo: upTo, err: err}:
			case <-s.ckptStop:
				return
			}
			if err == nil {
				break
			}
			select {
			case <-time.After(s.opts.CheckpointInterval):
			case <-s.ckptStop:
				return
			}
		}
	}
}

// shrinkLog cuts a log file whose epoch is checkpointed back to the log's
// size, if a write that only deletes (or an earlier version, or a larger
// MaxBytes) made it larger. The cut need not be durable: what lies beyond
// it is of a checkpointed epoch, and the next Open cuts it again.
func (s *Store) shrinkLog(lf *logFile) {
	if lf.size > s.logSize && lf.f.Truncate(s.logSize) == nil {
		lf.size = s.logSize
	}
}

// Ping commits a small write: it fails when the store cannot take writes
// (closed, disk full, over MaxBytes, I/O errors).
func (s *Store) Ping(ctx context.Context) error {
	return s.update(ctx, func(tx *txn) error {
		tx.put(bMeta, []byte("ping"), encodeTime(time.Now()))
		return nil
	})
}

// Size is the database file's size in bytes (the log adds a fixed size).
func (s *Store) Size() int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// LogFileSize is the size of each of the two log files of a store bounded
// at maxBytes: a sixteenth of it, from 4 KiB to 8 MiB. No single write
// larger than a log file can be stored.
func LogFileSize(maxBytes int64) int64 {
	return min(max(maxBytes/16, 4<<10), 8<<20) &^ 4095
}
