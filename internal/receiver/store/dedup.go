package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Duplicate keys are kept twice: in the dedup bucket, keyed by expiry and
// digest so that new keys are appended in time order (a commit of many
// events dirties one or two pages, not one page per event as random keys
// would), and in memory, where Accept looks them up. The memory index is
// loaded on Open and changed only by the commit loop, after a commit, so a
// transaction that rolls back leaves nothing behind.

// dedupDigest identifies a duplicate key: 128 bits of SHA-256 over scope
// and key.
type dedupDigest [16]byte

// dedupEntry is a key with its expiry.
type dedupEntry struct {
	digest dedupDigest
	until  int64 // unix nanoseconds
}

// dedupIndex maps digests to their expiry.
type dedupIndex map[dedupDigest]int64

func newDedupEntry(scope string, key []byte, until time.Time) dedupEntry {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write(key)
	return dedupEntry{digest: dedupDigest(h.Sum(nil)[:16]), until: until.UnixNano()}
}

// bucketKey is expiry then digest.
func (e dedupEntry) bucketKey() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 24), uint64(e.until))
	return append(b, e.digest[:]...)
}

func parseDedupKey(k []byte) (dedupEntry, bool) {
	if len(k) != 24 {
		return dedupEntry{}, false
	}
	return dedupEntry{digest: dedupDigest(k[8:]), until: int64(binary.BigEndian.Uint64(k))}, true
}

// loadDedup fills the memory index from the bucket.
func (s *Store) loadDedup() error {
	s.dedup = dedupIndex{}
	return s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDedup).ForEach(func(k, _ []byte) error {
			if e, ok := parseDedupKey(k); ok && e.until > s.dedup[e.digest] {
				s.dedup[e.digest] = e.until
			}
			return nil
		})
	})
}

// seen says whether e's digest is known and unexpired at now, counting the
// keys the transaction added so far.
func (s *Store) seen(tx *txn, e dedupEntry, now time.Time) bool {
	return max(tx.staged[e.digest], s.dedup[e.digest]) > now.UnixNano()
}

// remember adds e in the transaction, and to the memory index once
// committed.
func (s *Store) remember(tx *txn, e dedupEntry) error {
	if err := tx.Bucket(bucketDedup).Put(e.bucketKey(), []byte{}); err != nil {
		return err
	}
	tx.staged[e.digest] = max(tx.staged[e.digest], e.until)
	tx.afterCommit = append(tx.afterCommit, func() { s.dedup[e.digest] = max(s.dedup[e.digest], e.until) })
	return nil
}

// SweepDedup forgets duplicate keys that expired by now, at most limit of
// them per call, and says how many it removed.
func (s *Store) SweepDedup(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	err := s.update(ctx, func(tx *txn) error {
		n = 0
		var expired []dedupEntry
		c := tx.Bucket(bucketDedup).Cursor()
		for k, _ := c.First(); k != nil && n < limit; k, _ = c.First() {
			e, ok := parseDedupKey(k)
			if ok && e.until > now.UnixNano() {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			expired = append(expired, e)
			n++
		}
		tx.afterCommit = append(tx.afterCommit, func() {
			for _, e := range expired {
				if s.dedup[e.digest] == e.until {
					delete(s.dedup, e.digest)
				}
			}
		})
		return nil
	})
	return n, err
}
