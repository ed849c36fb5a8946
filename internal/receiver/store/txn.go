package store

import (
	"encoding/binary"
	"math/bits"
	"time"
)

// A write describes its changes through a txn: blind writes (ops) for the
// log, and their effect on the in-memory indexes the store decides by
// (duplicate keys, which deliveries exist, the event sequence). Nothing
// reaches the store's state before the group holding the write is
// durable; a write that fails leaves nothing behind, not even in its group.

// stage is what a write, or a group of writes, changed.
type stage struct {
	ops   []op
	bytes int64  // estimated bytes its puts add to the bbolt file
	seq   uint64 // highest event sequence assigned
	dedup map[dedupDigest]int64
	// live is, per delivery key changed, the buckets that hold it after
	// the change (livePending | liveDead); refs the change in the number
	// of (key, bucket) memberships per event.
	live  map[Key]uint8
	refs  map[uint64]int
	swept []dedupEntry // duplicate keys removed from the bucket
}

const (
	livePending uint8 = 1 << iota
	liveDead
)

func (st *stage) reset() {
	clear(st.ops)
	st.ops = st.ops[:0]
	if cap(st.ops) > 1<<12 {
		st.ops = nil
	}
	st.bytes, st.seq = 0, 0
	st.dedup = resetMap(st.dedup)
	st.live = resetMap(st.live)
	st.refs = resetMap(st.refs)
	st.swept = st.swept[:0]
}

// resetMap empties a map for reuse, or drops it if it grew large: a
// cleared map keeps its buckets, and ranging over it costs as much as
// when it was full (one write of 60,000 deliveries would slow every later
// group commit).
func resetMap[K comparable, V any](m map[K]V) map[K]V {
	if len(m) > 64 {
		return nil
	}
	clear(m)
	return m
}

func (st *stage) empty() bool { return len(st.ops) == 0 && len(st.swept) == 0 }

// merge adds src (a later change) to st.
func (st *stage) merge(src *stage) {
	st.ops = append(st.ops, src.ops...)
	st.bytes += src.bytes
	st.seq = max(st.seq, src.seq)
	if len(src.dedup) == 0 && len(src.live) == 0 && len(src.refs) == 0 {
		st.swept = append(st.swept, src.swept...)
		return
	}
	for d, until := range src.dedup {
		if st.dedup == nil {
			st.dedup = map[dedupDigest]int64{}
		}
		st.dedup[d] = max(st.dedup[d], until)
	}
	for k, b := range src.live {
		if st.live == nil {
			st.live = map[Key]uint8{}
		}
		st.live[k] = b
	}
	for seq, n := range src.refs {
		if st.refs == nil {
			st.refs = map[uint64]int{}
		}
		st.refs[seq] += n
	}
	st.swept = append(st.swept, src.swept...)
}

// txn is one write's view: its own stage over its group's over the
// store's state. Only the commit loop uses it.
type txn struct {
	s    *Store
	g, w *stage
}

func (t *txn) put(b bucketID, key, value []byte) {
	t.w.ops = append(t.w.ops, op{kind: opPut, bucket: b, key: key, value: value})
	t.w.bytes += estimate(b, key, value)
}

func (t *txn) del(b bucketID, key []byte) {
	t.w.ops = append(t.w.ops, op{kind: opDelete, bucket: b, key: key})
}

// nextSeq assigns the next event sequence number.
func (t *txn) nextSeq() uint64 {
	n := max(t.s.seq, t.g.seq, t.w.seq) + 1
	t.w.seq = n
	t.w.ops = append(t.w.ops, op{kind: opSeq, bucket: bEvents, n: n})
	return n
}

// liveBits says which buckets hold a delivery key.
func (t *txn) liveBits(k Key) uint8 {
	if b, ok := t.w.live[k]; ok {
		return b
	}
	if b, ok := t.g.live[k]; ok {
		return b
	}
	return t.s.live[k]
}

func (t *txn) setLive(k Key, to uint8) {
	from := t.liveBits(k)
	if from == to {
		return
	}
	if t.w.live == nil {
		t.w.live, t.w.refs = map[Key]uint8{}, map[uint64]int{}
	}
	t.w.live[k] = to
	t.w.refs[k.Seq] += bits.OnesCount8(to) - bits.OnesCount8(from)
}

// refs counts the deliveries (pending or dead) of an event.
func (t *txn) refs(seq uint64) int {
	return t.s.refs[seq] + t.g.refs[seq] + t.w.refs[seq]
}

func (t *txn) putDelivery(bucket bucketID, d Delivery) error {
	v, err := encodeDelivery(d)
	if err != nil {
		return err
	}
	t.put(bucket, d.bytes(), v)
	bit := livePending
	if bucket == bDead {
		bit = liveDead
	}
	t.setLive(d.Key, t.liveBits(d.Key)|bit)
	return nil
}

func (t *txn) deleteFrom(bucket bucketID, k Key) {
	t.del(bucket, k.bytes())
	bit := livePending
	if bucket == bDead {
		bit = liveDead
	}
	t.setLive(k, t.liveBits(k)&^bit)
}

// seen says whether e's digest is known and unexpired at now.
func (t *txn) seen(e dedupEntry, now time.Time) bool {
	return max(t.w.dedup[e.digest], t.g.dedup[e.digest], t.s.dedup[e.digest]) > now.UnixNano()
}

// remember adds a duplicate key.
func (t *txn) remember(e dedupEntry) {
	t.put(bDedup, e.bucketKey(), []byte{})
	if t.w.dedup == nil {
		t.w.dedup = map[dedupDigest]int64{}
	}
	t.w.dedup[e.digest] = max(t.w.dedup[e.digest], e.until)
}

func encodeUint(n uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n) }

func decodeUint(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
