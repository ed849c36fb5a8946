package store

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The overlay holds what is durable in the log but not yet in the bbolt
// file: for every key written since the last checkpoint, its latest value
// (or its deletion) and the epoch that wrote it. Reads look here first.
// A checkpoint of epoch e writes every entry of epoch e or older into the
// bbolt file in one transaction, with e as the file's checkpointed epoch,
// and then forgets those entries (unless a later epoch changed them
// meanwhile). An event delivered before its checkpoint is therefore never
// written to the bbolt file at all: its body, event and delivery are put
// and deleted in the overlay only.

type ovKey struct {
	bucket bucketID
	key    string
}

type ovEntry struct {
	value []byte // nil with del
	del   bool
	epoch uint64
	est   int64 // estimated bytes of the value in the bbolt file
}

type overlay struct {
	mu      sync.RWMutex
	entries map[ovKey]ovEntry
	// peak is the most entries the map has held since it was made: a map
	// keeps its buckets, and collect ranges over them all.
	peak int
	// seq is the highest event sequence assigned, and the epoch that did.
	seq, seqEpoch uint64
	// bytes estimates what the entries' values will take in the file.
	bytes atomic.Int64
}

func newOverlay() *overlay { return &overlay{entries: map[ovKey]ovEntry{}} }

// apply records a committed group of ops of epoch.
func (ov *overlay) apply(ops []op, epoch uint64) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	var delta int64
	for i := range ops {
		o := &ops[i]
		if o.kind == opSeq {
			if o.n > ov.seq {
				ov.seq, ov.seqEpoch = o.n, epoch
			}
			continue
		}
		k := ovKey{o.bucket, string(o.key)}
		old := ov.entries[k]
		e := ovEntry{epoch: epoch}
		if o.kind == opDelete {
			e.del = true
		} else {
			e.value, e.est = o.value, estimate(o.bucket, o.key, o.value)
			if e.value == nil {
				e.value = []byte{}
			}
		}
		delta += e.est - old.est
		ov.entries[k] = e
	}
	ov.peak = max(ov.peak, len(ov.entries))
	ov.bytes.Add(delta)
}

// get returns the overlay's value of a key: found says whether the overlay
// knows the key; a deleted key is found with a nil value.
func (ov *overlay) get(b bucketID, key []byte) (value []byte, found bool) {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	e, ok := ov.entries[ovKey{b, string(key)}]
	return e.value, ok
}

// ckptEntry is an entry taken for a checkpoint.
type ckptEntry struct {
	ovKey
	ovEntry
}

// collect returns the entries of epoch upTo or older, sorted by bucket
// and key (bbolt inserts in order with less work), and the sequence.
func (ov *overlay) collect(upTo uint64) ([]ckptEntry, uint64) {
	ov.mu.RLock()
	out := make([]ckptEntry, 0, len(ov.entries))
	for k, e := range ov.entries {
		if e.epoch <= upTo {
			out = append(out, ckptEntry{k, e})
		}
	}
	var seq uint64
	if ov.seqEpoch <= upTo {
		seq = ov.seq
	}
	ov.mu.RUnlock()
	slices.SortFunc(out, func(a, b ckptEntry) int {
		if a.bucket != b.bucket {
			return int(a.bucket) - int(b.bucket)
		}
		return bytes.Compare([]byte(a.key), []byte(b.key))
	})
	return out, seq
}

// forget drops the entries a checkpoint of upTo wrote, unless a later
// epoch changed them since.
func (ov *overlay) forget(done []ckptEntry, upTo uint64) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	var delta int64
	for _, c := range done {
		if e, ok := ov.entries[c.ovKey]; ok && e.epoch <= upTo {
			delta -= e.est
			delete(ov.entries, c.ovKey)
		}
	}
	ov.bytes.Add(delta)
	if ov.peak > 4096 && len(ov.entries) < ov.peak/8 {
		// After a burst (a resource with 100,000 deliveries deleted),
		// start a map of today's size.
		m := make(map[ovKey]ovEntry, len(ov.entries))
		for k, e := range ov.entries {
			m[k] = e
		}
		ov.entries, ov.peak = m, len(m)
	}
}

// walEpochKey is the meta value holding the last checkpointed epoch.
var walEpochKey = []byte("\x00store/log-epoch")

// fillPercent of the buckets whose keys mostly grow (sequence numbers,
// expiry times): full pages instead of half-full ones.
const fillPercent = 0.95

// writeCheckpoint applies entries and the sequence to the bbolt file in
// one transaction that also records upTo as checkpointed. If the file
// would grow beyond its bound, the deletions are applied alone first, so
// that the pages they free can take the rest in a second transaction (a
// partial checkpoint is harmless: the log still holds everything of its
// epochs, and applying it again gives the same result). If it still does
// not fit, the checkpoint fails and is tried again: what it holds stays
// in the log and in memory, and the store refuses new data meanwhile
// (see loop.group); every delivery finished since shrinks it.
func writeCheckpoint(db *bolt.DB, entries []ckptEntry, seq, upTo uint64) error {
	apply := func(tx *bolt.Tx, puts, dels bool) error {
		var bs [len(bucketNames)]*bolt.Bucket
		for i, name := range bucketNames {
			bs[i] = tx.Bucket(name)
			if bucketID(i) != bMeta {
				bs[i].FillPercent = fillPercent
			}
		}
		for i := range entries {
			e := &entries[i]
			var err error
			switch {
			case e.del && dels && e.bucket == bBodies:
				err = deleteBody(bs[e.bucket], []byte(e.key))
			case e.del && dels:
				err = bs[e.bucket].Delete([]byte(e.key))
			case !e.del && puts && e.bucket == bBodies:
				err = putBody(bs[e.bucket], []byte(e.key), e.value)
			case !e.del && puts:
				err = bs[e.bucket].Put([]byte(e.key), e.value)
			}
			if err != nil {
				return err
			}
		}
		if !puts {
			return nil
		}
		if seq > bs[bEvents].Sequence() {
			if err := bs[bEvents].SetSequence(seq); err != nil {
				return err
			}
		}
		return bs[bMeta].Put(walEpochKey, encodeUint(upTo))
	}
	err := db.Update(func(tx *bolt.Tx) error { return apply(tx, true, true) })
	if !errors.Is(err, berrors.ErrMaxSizeReached) {
		return err
	}
	if err := db.Update(func(tx *bolt.Tx) error { return apply(tx, false, true) }); err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error { return apply(tx, true, false) })
}

// fullCheckpoint is the checkpoint of upTo for a full file: it writes every
// entry the overlay holds, later epochs' too, so that deliveries finished
// since upTo free their pages in this checkpoint (writing a later epoch's
// durable changes early is harmless: the log replays them over the same
// result). It is what lets a full store recover as its targets catch up.
func (s *Store) fullCheckpoint(upTo uint64) ([]ckptEntry, error) {
	entries, seq := s.ov.collect(^uint64(0))
	return entries, writeCheckpoint(s.db, entries, seq, upTo)
}

// estimate is what a value is expected to take in the bbolt file: large
// values a page run of their own, small ones their size twice over (half
// full pages, branch entries). A body larger than bodyChunk is kept in
// parts (see bodies.go): up to four parts count as small values, more as
// pages of four parts and a page for the partial pages at its ends.
func estimate(b bucketID, key, value []byte) int64 {
	const page = 4096
	if b == bBodies && len(value) > bodyChunk {
		parts := (int64(len(value)) + bodyChunk - 1) / bodyChunk
		if parts <= 4 {
			return 2 * (int64(len(value)) + parts*(int64(len(key))+4+16))
		}
		return ((parts+3)/4 + 1) * page
	}
	n := int64(len(key) + len(value) + 16)
	if n > page/4 {
		return (n + 16 + page - 1) / page * page
	}
	return 2 * n
}
