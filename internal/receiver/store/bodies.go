package store

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Bodies in the bbolt file. A body of up to bodyChunk bytes is one value
// under its event's key (seq), as it always was. A larger body is cut into
// values of bodyChunk bytes under seq|index (index a big-endian uint32),
// which sort right after seq and before seq+1.
//
// Why: bbolt keeps at least two keys on a leaf and does not split a leaf
// of four keys or fewer, so large values share leaves (up to four 1 MiB
// bodies in one run of pages), and a checkpoint that adds or deletes one
// body writes a new copy of all of them, in one contiguous run of pages,
// before the old copy is free. Freed runs of one size do not fit the next
// body of another, so the file grew beyond what its data used, and a store
// that admission took as having room could not write a checkpoint
// ("database reached maximum size") and then refused every write that adds
// data until a restart. With values this small, every leaf fits in one
// page: a checkpoint copies only the pages it changes, and every free page
// can take any of them, so what admission counts is what the file needs.
//
// In the log and in the overlay a body is still one put (or one delete)
// of seq: only the checkpoint and recovery cut it up (putBody) or delete
// every part of it (deleteBody), both blind writes as the log needs them.

// bodyChunk is the largest body kept as one value, and the size of the
// parts of a larger one: four of them and their keys fill a 4 KiB page to
// fillPercent (16 bytes of page header; 16 bytes of element header and a
// 12-byte key each), so no leaf ever needs more than one page. Part i of the body keyed seq
// is keyed seq|i.
const bodyChunk = (4096*95/100-16)/4 - 16 - 12 - 1

// putBody writes a body to the bodies bucket, replacing whatever was kept
// under its key.
func putBody(b *bolt.Bucket, key, value []byte) error {
	if err := deleteBody(b, key); err != nil {
		return err
	}
	if len(value) <= bodyChunk {
		return b.Put(key, value)
	}
	// bbolt keeps a key until its transaction ends: one buffer for all.
	parts := (len(value) + bodyChunk - 1) / bodyChunk
	keys := make([]byte, 0, parts*(len(key)+4))
	for i := range parts {
		at := len(keys)
		keys = binary.BigEndian.AppendUint32(append(keys, key...), uint32(i))
		part := value[i*bodyChunk : min((i+1)*bodyChunk, len(value))]
		if err := b.Put(keys[at:len(keys):len(keys)], part); err != nil {
			return err
		}
	}
	return nil
}

// deleteBody deletes a body, whole or in parts.
func deleteBody(b *bolt.Bucket, key []byte) error {
	if err := b.Delete(key); err != nil {
		return err
	}
	var parts [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(key); k != nil && bytes.HasPrefix(k, key); k, _ = c.Next() {
		if len(k) != len(key) {
			parts = append(parts, bytes.Clone(k))
		}
	}
	for _, k := range parts {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// forBody calls fn with each part of a body in order (the whole body if it
// is one value); it says whether the body exists. The parts are valid only
// within the transaction.
func forBody(b *bolt.Bucket, key []byte, fn func(part []byte)) bool {
	if v := b.Get(key); v != nil {
		fn(v)
		return true
	}
	found := false
	c := b.Cursor()
	for k, v := c.Seek(key); k != nil && bytes.HasPrefix(k, key); k, v = c.Next() {
		if len(k) == len(key)+4 {
			found = true
			fn(v)
		}
	}
	return found
}

// getBody returns a copy of a body, or nil if there is none.
func getBody(b *bolt.Bucket, key []byte) []byte {
	var out []byte
	if !forBody(b, key, func(p []byte) { out = append(out, p...) }) {
		return nil
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

// bodyLen returns a body's length and whether it exists.
func bodyLen(b *bolt.Bucket, key []byte) (int, bool) {
	n := 0
	ok := forBody(b, key, func(p []byte) { n += len(p) })
	return n, ok
}
