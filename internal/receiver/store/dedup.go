package store

import (
	"bytes"
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
// loaded on Open and changed only by the commit loop, once a write is
// durable, so a write that fails leaves nothing behind.

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
	var buf [128]byte // a UID and a SHA-256 fit; longer ones take the heap
	sum := sha256.Sum256(append(append(append(buf[:0], scope...), 0), key...))
	return dedupEntry{digest: dedupDigest(sum[:16]), until: until.UnixNano()}
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

// SweepDedup forgets duplicate keys that expired by now, at most limit of
// them per call, and says how many it removed. It reads the keys from the
// database file once everything written before is there.
func (s *Store) SweepDedup(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := s.sync(ctx); err != nil {
		return 0, err
	}
	var keys [][]byte
	var expired []dedupEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDedup).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			e, ok := parseDedupKey(k)
			if ok && e.until > now.UnixNano() {
				break
			}
			keys = append(keys, bytes.Clone(k))
			if ok {
				expired = append(expired, e)
			}
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	err = s.update(ctx, func(tx *txn) error {
		for _, k := range keys {
			tx.del(bDedup, k)
		}
		tx.w.swept = append(tx.w.swept, expired...)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(keys), nil
}
