package forward

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"

	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// TestLoadRemovesAnOrphanDeliveryAndCountsIt: a store holding a delivery
// whose event is gone (what a replay racing a deletion once left behind)
// opens and loads; the record is removed, logged and counted in
// meetergo_operator_receiver_store_repaired_records_total, and the other
// deliveries are loaded.
func TestLoadRemovesAnOrphanDeliveryAndCountsIt(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var seqs []uint64
	for _, id := range []string{"a", "b"} {
		acc, err := st.Accept(context.Background(), store.Incoming{
			Event: store.Event{UID: "uid-1", Namespace: ns, Name: "hook", Type: "booking_created", ID: "msg_" + id, ReceivedAt: now},
			Body:  []byte(`{}`), DedupScope: "uid-1", DedupKey: []byte(id), DedupUntil: now.Add(time.Hour),
			Targets: []string{"crm:http/in"},
		})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, acc.Event.Seq)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Event a's record goes missing.
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("events")).Delete(binary.BigEndian.AppendUint64(nil, seqs[0]))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	before := testutil.ToFloat64(storeRepairs)
	for round := range 2 {
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f := New(Config{Store: st, Reporter: &reporter{}})
		if err := f.Load(); err != nil {
			t.Fatalf("round %d: Load: %v", round, err)
		}
		if got := testutil.ToFloat64(storeRepairs) - before; got != 1 {
			t.Errorf("round %d: repaired records counted %v; want 1", round, got)
		}
		if n := len(f.q.items); n != 1 || f.q.items[store.Key{Seq: seqs[1], Target: "crm:http/in"}] == nil {
			t.Errorf("round %d: %d deliveries loaded; want b's only", round, n)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
