package store

import (
	"context"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestAReplayActsOnlyOnWhatIsStillDead: a replay decided on dead letters
// that were deleted before it was written (the resource was deleted, the
// retention ran out) revives and reroutes nothing, and writes no event
// record for a body that is gone; the store then loads as before.
func TestAReplayActsOnlyOnWhatIsStillDead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	var keys []Key
	var evs []Event
	for i, target := range []string{"svc:http/", "(kept)"} {
		in := incoming(string(rune('a' + i)))
		in.DeadLetter = &Delivery{Key: Key{Target: target}, Due: t0, DeadAt: t0, LastError: "x"}
		acc, err := s.Accept(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, Key{acc.Event.Seq, target})
		evs = append(evs, acc.Event)
	}
	// The deletion wins the race.
	if err := s.Finish(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	// The replay decided before it.
	err := s.Replay(ctx, []Delivery{{Key: keys[0], Due: t0}}, []Reroute{
		{Dead: keys[1], Event: evs[1], To: []Delivery{{Key: Key{keys[1].Seq, "svc:http/"}, Due: t0}}},
	}, "replay/uid-1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revive(ctx, []Delivery{{Key: keys[0], Due: t0}}, "replay/uid-1", "v2"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // before and after a reopen
		if got := loadAll(t, s); len(got) != 0 {
			t.Fatalf("deliveries after a replay of deleted dead letters: %+v", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(dir+"/"+FileName, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	_ = db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketBodies, bucketPending, bucketDead} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("bucket %s holds %d keys", b, n)
			}
		}
		return nil
	})
}

// TestLoadRemovesRecordsItCannotUse: a delivery whose event is missing, one
// whose body is missing and one whose state cannot be read do not stop
// Load: they are removed (with their event and body once nothing refers to
// them), reported, and the good ones are loaded.
func TestLoadRemovesRecordsItCannotUse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	var seqs []uint64
	for _, k := range []string{"good", "noEvent", "noBody", "badState"} {
		acc, err := s.Accept(ctx, incoming(k, "svc:http/"))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, acc.Event.Seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(dir+"/"+FileName, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return errors.Join(
			tx.Bucket(bucketEvents).Delete(seqBytes(seqs[1])),
			tx.Bucket(bucketBodies).Delete(seqBytes(seqs[2])),
			tx.Bucket(bucketPending).Put(Key{seqs[3], "svc:http/"}.bytes(), []byte("{not json")),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	var repairs []Repair
	got := map[Key]Event{}
	if err := s.LoadRepairing(func(ev Event, d Delivery) { got[d.Key] = ev }, func(r Repair) { repairs = append(repairs, r) }); err != nil {
		t.Fatalf("Load refused to start over inconsistent records: %v", err)
	}
	if len(got) != 1 || got[Key{seqs[0], "svc:http/"}].BodySize == 0 {
		t.Errorf("loaded %+v; want the good delivery only, with its body size", got)
	}
	if len(repairs) != 3 {
		t.Errorf("repairs %+v; want 3", repairs)
	}
	for range 2 { // removed for good, also after a reopen
		if err := s.LoadRepairing(func(Event, Delivery) {}, func(r Repair) { t.Errorf("repaired again: %+v", r) }); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
	}
	for _, seq := range seqs[1:] {
		if _, err := s.Body(seq); err == nil {
			t.Errorf("the body of event %d outlived its removed delivery", seq)
		}
	}
}
