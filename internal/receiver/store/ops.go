package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// (and without DeadLetter) only the duplicate key is kept.
	Targets []string
	// DeadLetter, if set, is stored as the event's one delivery, already a
	// dead letter (its Seq is assigned here; DeadAt must be set), and
	// Targets are ignored: an event kept for a replay rather than
	// delivered (the receiver keeps a body it cannot read this way).
	DeadLetter *Delivery
}

// Accepted is what Accept did.
type Accepted struct {
	// Event is the stored event, with its Seq (zero if nothing was stored).
	Event Event
	// Duplicate is true when the key was already known: nothing was stored.
	Duplicate bool
}

// Accept stores an event with a pending delivery per target, unless its
// duplicate key is already known, and returns once that is durable. If
// ctx ends first it returns ctx's error, and the write may still commit;
// a caller that must carry out its outcome uses StartAccept.
func (s *Store) Accept(ctx context.Context, in Incoming) (Accepted, error) {
	a, err := s.StartAccept(in)
	if err != nil {
		return Accepted{}, err
	}
	return a.Wait(ctx)
}

// Accepting is an Accept handed to the commit loop: it is carried out
// whatever its caller does from then on, and Wait tells its outcome.
type Accepting struct {
	w *write
	r *Accepted
	// res and err hold the outcome once Wait has taken it.
	res  Accepted
	err  error
	done bool
}

// StartAccept hands an Accept (see Accept) to the commit loop and returns
// without waiting for it. Writes handed in later are decided after it: a
// later Accept with the same duplicate key is a duplicate of this one.
func (s *Store) StartAccept(in Incoming) (*Accepting, error) {
	meta, err := json.Marshal(in.Event)
	if err != nil {
		return nil, err
	}
	if in.DeadLetter != nil && !in.DeadLetter.Dead() {
		return nil, fmt.Errorf("store: keeping an event as a dead letter without DeadAt")
	}
	dk := newDedupEntry(in.DedupScope, in.DedupKey, in.DedupUntil)
	// The commit loop fills r; it is read only after the write's result
	// came back (a write given up on by ctx may still be running).
	r := &Accepted{}
	w, err := s.handIn(func(tx *txn) error {
		*r = Accepted{Event: in.Event}
		if tx.seen(dk, in.Event.ReceivedAt) {
			r.Duplicate = true
			return nil
		}
		tx.remember(dk)
		if len(in.Targets) == 0 && in.DeadLetter == nil {
			return nil
		}
		seq := tx.nextSeq()
		r.Event.Seq = seq
		r.Event.BodySize = len(in.Body)
		key := seqBytes(seq)
		tx.put(bEvents, key, meta)
		tx.put(bBodies, key, in.Body)
		if in.DeadLetter != nil {
			d := *in.DeadLetter
			d.Seq = seq
			return tx.putDelivery(bDead, d)
		}
		for _, t := range in.Targets {
			if err := tx.putDelivery(bPending, Delivery{Key: Key{Seq: seq, Target: t}, Due: in.Event.ReceivedAt}); err != nil {
				return err
			}
		}
		return nil
	}, false)
	if err != nil {
		return nil, err
	}
	return &Accepting{w: w, r: r}, nil
}

// Wait returns the outcome of the Accept once it is durable (or failed),
// or ctx's error if ctx ends first (at once if it already has); the write
// then goes on, and Wait may be called again. Wait is not safe for
// concurrent use.
func (a *Accepting) Wait(ctx context.Context) (Accepted, error) {
	if !a.done {
		err := a.w.wait(ctx)
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return Accepted{}, err
		}
		a.done, a.err = true, err
		if err == nil {
			a.res = *a.r
		}
	}
	return a.res, a.err
}

// Body returns a copy of the event's body.
func (s *Store) Body(seq uint64) ([]byte, error) {
	body, ok, err := s.read(bBodies, seqBytes(seq))
	if err == nil && !ok {
		err = fmt.Errorf("store: no body for event %d", seq)
	}
	return body, err
}

// Load calls fn for every pending delivery and dead letter with its event,
// in event order. It is meant for start-up; fn must not call the store.
// Inconsistent records are removed (see LoadRepairing).
func (s *Store) Load(fn func(Event, Delivery)) error {
	return s.LoadRepairing(fn, nil)
}

// Repair is an inconsistent record that LoadRepairing removed. It names
// the record by bucket and key, never by content.
type Repair struct {
	// Record is the bucket and key, e.g. "pending 12/crm:http/in".
	Record string
	// Problem says what was wrong with it.
	Problem string
}

// LoadRepairing is Load that never fails over a record it cannot use: a
// delivery whose key or state cannot be read, whose event is missing or
// cannot be read, or whose body is missing. No code path writes one (a
// delivery, its event and its body are written and deleted together), but
// a receiver that could not start over one would crash-loop until its
// volume is wiped, losing every other delivery. Each such delivery is
// deleted, with its event and body once nothing else refers to them, and
// told to repaired (if set) after fn has seen every good one.
func (s *Store) LoadRepairing(fn func(Event, Delivery), repaired func(Repair)) error {
	if err := s.sync(context.Background()); err != nil {
		return err
	}
	type bad struct {
		bucket bucketID
		raw    []byte
		key    Key
		parsed bool
		repair Repair
	}
	var bads []bad
	err := s.view(func(tx *bolt.Tx) error {
		events, bodies := tx.Bucket(bucketEvents), tx.Bucket(bucketBodies)
		for _, b := range []bucketID{bPending, bDead} {
			name := bucketNames[b]
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				d, err := decodeDelivery(k, v)
				if err != nil {
					x := bad{bucket: b, raw: slices.Clone(k), repair: Repair{Record: fmt.Sprintf("%s %x", name, k), Problem: err.Error()}}
					if key, kerr := parseKey(k); kerr == nil {
						x.key, x.parsed = key, true
						x.repair.Record = fmt.Sprintf("%s %s", name, key)
					}
					bads = append(bads, x)
					return nil
				}
				problem := ""
				ev := Event{Seq: d.Seq}
				raw := events.Get(seqBytes(d.Seq))
				bodySize, hasBody := bodyLen(bodies, seqBytes(d.Seq))
				switch {
				case raw == nil:
					problem = "its event is missing"
				case json.Unmarshal(raw, &ev) != nil:
					problem = "its event cannot be read"
				case !hasBody:
					problem = "its event's body is missing"
				}
				if problem != "" {
					bads = append(bads, bad{bucket: b, key: d.Key, parsed: true, repair: Repair{Record: fmt.Sprintf("%s %s", name, d.Key), Problem: problem}})
					return nil
				}
				ev.Seq, ev.BodySize = d.Seq, bodySize
				fn(ev, d)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(bads) == 0 {
		return err
	}
	err = s.update(context.Background(), func(tx *txn) error {
		for _, x := range bads {
			if !x.parsed {
				tx.del(x.bucket, x.raw)
				continue
			}
			tx.deleteFrom(x.bucket, x.key)
			if tx.refs(x.key.Seq) == 0 {
				key := seqBytes(x.key.Seq)
				tx.del(bEvents, key)
				tx.del(bBodies, key)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: removing %d inconsistent record(s): %w", len(bads), err)
	}
	if repaired != nil {
		for _, x := range bads {
			repaired(x.repair)
		}
	}
	return nil
}

// Reschedule records a pending delivery's new state (after a failed attempt).
func (s *Store) Reschedule(ctx context.Context, d Delivery) error {
	return s.update(ctx, func(tx *txn) error { return tx.putDelivery(bPending, d) })
}

// Finish deletes a delivered (or abandoned) delivery, pending or dead, and
// its event once no delivery refers to it.
func (s *Store) Finish(ctx context.Context, keys ...Key) error {
	return s.update(ctx, func(tx *txn) error {
		for _, k := range keys {
			tx.deleteFrom(bPending, k)
			tx.deleteFrom(bDead, k)
			if tx.refs(k.Seq) == 0 {
				key := seqBytes(k.Seq)
				tx.del(bEvents, key)
				tx.del(bBodies, key)
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
		tx.deleteFrom(bPending, d.Key)
		return tx.putDelivery(bDead, d)
	})
}

// Revive turns dead letters back into pending deliveries (their new state in
// ds, DeadAt cleared) and sets the meta value name to value in the same
// transaction, so a replay is recorded exactly when it takes effect. Only
// what is still a dead letter then is revived (see Replay).
func (s *Store) Revive(ctx context.Context, ds []Delivery, name, value string) error {
	return s.Replay(ctx, ds, nil, name, value)
}

// Reroute replaces a dead letter with new pending deliveries of its event:
// a kept event that a replay could read at last.
type Reroute struct {
	// Dead is the dead letter; it is deleted.
	Dead Key
	// Event is the event's record from now on; its Seq is Dead.Seq.
	Event Event
	// To are the event's new pending deliveries, of event Dead.Seq. With
	// none, the event and its body are deleted once no delivery refers to
	// them.
	To []Delivery
}

// Replay does what a replay decided in one transaction: it revives dead
// letters (as Revive), reroutes others, and sets the meta value name to
// value. It acts only on what is still a dead letter when the transaction
// runs: one that was deleted meanwhile (its resource deleted, its
// retention over) is left alone, and so is its event, whose record and
// body may be gone.
func (s *Store) Replay(ctx context.Context, revive []Delivery, reroute []Reroute, name, value string) error {
	metas := make([][]byte, len(reroute))
	for i, r := range reroute {
		m, err := json.Marshal(r.Event)
		if err != nil {
			return err
		}
		metas[i] = m
	}
	return s.update(ctx, func(tx *txn) error {
		for _, d := range revive {
			if tx.liveBits(d.Key)&liveDead == 0 {
				continue
			}
			d.DeadAt = time.Time{}
			tx.deleteFrom(bDead, d.Key)
			if err := tx.putDelivery(bPending, d); err != nil {
				return err
			}
		}
		for i, r := range reroute {
			seq := r.Dead.Seq
			if tx.liveBits(r.Dead)&liveDead == 0 {
				continue
			}
			tx.deleteFrom(bDead, r.Dead)
			for _, d := range r.To {
				if d.Seq != seq {
					return fmt.Errorf("store: rerouting event %d to a delivery of event %d", seq, d.Seq)
				}
				d.DeadAt = time.Time{}
				if err := tx.putDelivery(bPending, d); err != nil {
					return err
				}
			}
			key := seqBytes(seq)
			if tx.refs(seq) == 0 {
				tx.del(bEvents, key)
				tx.del(bBodies, key)
			} else {
				tx.put(bEvents, key, metas[i])
			}
		}
		tx.put(bMeta, []byte(name), []byte(value))
		return nil
	})
}

// Meta returns a meta value set by Revive or SetMeta ("" if none).
func (s *Store) Meta(name string) (string, error) {
	v, _, err := s.read(bMeta, []byte(name))
	return string(v), err
}

// DeleteMeta removes meta values, e.g. those of a deleted resource.
func (s *Store) DeleteMeta(ctx context.Context, names ...string) error {
	return s.update(ctx, func(tx *txn) error {
		for _, n := range names {
			tx.del(bMeta, []byte(n))
		}
		return nil
	})
}
