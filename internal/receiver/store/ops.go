package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Incoming is an event to accept.
type Incoming struct {
	// Event describes it; Seq is assigned by Accept.
	Event Event
	// Body is kept byte for byte.
	Body []byte
	// DedupScope and DedupKey identify the event for duplicate detection
	// (scope: the resource; key: derived from the body).
	DedupScope string
	DedupKey   []byte
	// DedupUntil is when the key is forgotten.
	DedupUntil time.Time
	// Targets get one pending delivery each, due at once. Without targets
	// only the duplicate key is kept.
	Targets []string
}

// Accepted is what Accept did.
type Accepted struct {
	// Event is the stored event, with its Seq (zero if nothing was stored).
	Event Event
	// Duplicate is true when the key was already known: nothing was stored.
	Duplicate bool
}

// Accept stores an event with a pending delivery per target, unless its
// duplicate key is already known, and returns once that is durable.
func (s *Store) Accept(ctx context.Context, in Incoming) (Accepted, error) {
	var out Accepted
	meta, err := json.Marshal(in.Event)
	if err != nil {
		return out, err
	}
	dk := newDedupEntry(in.DedupScope, in.DedupKey, in.DedupUntil)
	err = s.update(ctx, func(tx *txn) error {
		out = Accepted{Event: in.Event}
		if s.seen(tx, dk, in.Event.ReceivedAt) {
			out.Duplicate = true
			return nil
		}
		if err := s.remember(tx, dk); err != nil {
			return err
		}
		if len(in.Targets) == 0 {
			return nil
		}
		events := tx.Bucket(bucketEvents)
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		out.Event.Seq = seq
		if err := events.Put(seqBytes(seq), meta); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBodies).Put(seqBytes(seq), in.Body); err != nil {
			return err
		}
		for _, t := range in.Targets {
			if err := putDelivery(tx, bucketPending, Delivery{Key: Key{Seq: seq, Target: t}, Due: in.Event.ReceivedAt}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Body returns a copy of the event's body.
func (s *Store) Body(seq uint64) ([]byte, error) {
	var body []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBodies).Get(seqBytes(seq))
		if v == nil {
			return fmt.Errorf("store: no body for event %d", seq)
		}
		body = bytes.Clone(v)
		return nil
	})
	return body, err
}

// Load calls fn for every pending delivery and dead letter with its event,
// in event order. It is meant for start-up; fn must not call the store.
func (s *Store) Load(fn func(Event, Delivery)) error {
	return s.view(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		for _, bucket := range [][]byte{bucketPending, bucketDead} {
			err := tx.Bucket(bucket).ForEach(func(k, v []byte) error {
				d, err := decodeDelivery(k, v)
				if err != nil {
					return err
				}
				raw := events.Get(seqBytes(d.Seq))
				if raw == nil {
					return fmt.Errorf("store: delivery %s has no event", d.Key)
				}
				ev := Event{Seq: d.Seq}
				if err := json.Unmarshal(raw, &ev); err != nil {
					return fmt.Errorf("store: event %d: %w", d.Seq, err)
				}
				fn(ev, d)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Reschedule records a pending delivery's new state (after a failed attempt).
func (s *Store) Reschedule(ctx context.Context, d Delivery) error {
	return s.update(ctx, func(tx *txn) error { return putDelivery(tx, bucketPending, d) })
}

// Finish deletes a delivered (or abandoned) delivery, pending or dead, and
// its event once no delivery refers to it.
func (s *Store) Finish(ctx context.Context, keys ...Key) error {
	return s.update(ctx, func(tx *txn) error {
		for _, k := range keys {
			if err := deleteDelivery(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Bury turns a pending delivery into a dead letter; d.DeadAt must be set.
func (s *Store) Bury(ctx context.Context, d Delivery) error {
	if !d.Dead() {
		return fmt.Errorf("store: burying %s without DeadAt", d.Key)
	}
	return s.update(ctx, func(tx *txn) error {
		if err := tx.Bucket(bucketPending).Delete(d.bytes()); err != nil {
			return err
		}
		return putDelivery(tx, bucketDead, d)
	})
}

// Revive turns dead letters back into pending deliveries (their new state in
// ds, DeadAt cleared) and sets the meta value name to value in the same
// transaction, so a replay is recorded exactly when it takes effect.
func (s *Store) Revive(ctx context.Context, ds []Delivery, name, value string) error {
	return s.update(ctx, func(tx *txn) error {
		for _, d := range ds {
			d.DeadAt = time.Time{}
			if err := tx.Bucket(bucketDead).Delete(d.bytes()); err != nil {
				return err
			}
			if err := putDelivery(tx, bucketPending, d); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put([]byte(name), []byte(value))
	})
}

// Meta returns a meta value set by Revive or SetMeta ("" if none).
func (s *Store) Meta(name string) (string, error) {
	var v string
	err := s.view(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get([]byte(name)))
		return nil
	})
	return v, err
}

// DeleteMeta removes meta values, e.g. those of a deleted resource.
func (s *Store) DeleteMeta(ctx context.Context, names ...string) error {
	return s.update(ctx, func(tx *txn) error {
		for _, n := range names {
			if err := tx.Bucket(bucketMeta).Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

func putDelivery(tx *txn, bucket []byte, d Delivery) error {
	v, err := encodeDelivery(d)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(d.bytes(), v)
}

// deleteDelivery removes a delivery from both buckets and the event when it
// was the last one.
func deleteDelivery(tx *txn, k Key) error {
	kb := k.bytes()
	for _, b := range [][]byte{bucketPending, bucketDead} {
		if err := tx.Bucket(b).Delete(kb); err != nil {
			return err
		}
	}
	prefix := seqBytes(k.Seq)
	for _, b := range [][]byte{bucketPending, bucketDead} {
		if next, _ := tx.Bucket(b).Cursor().Seek(prefix); next != nil && bytes.HasPrefix(next, prefix) {
			return nil
		}
	}
	if err := tx.Bucket(bucketEvents).Delete(prefix); err != nil {
		return err
	}
	return tx.Bucket(bucketBodies).Delete(prefix)
}
