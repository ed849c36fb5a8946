package store

import (
	"context"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestRecoveredBodiesTakeWhatACheckpointWouldGive: the same 30
// bodies of 100 KB, once checkpointed by Close and once replayed from the
// log at Open after a crash. Admission counts a body as pages of four
// parts (estimate, bodies.go: "what admission counts is what the file
// needs"), which holds only when the bodies bucket is written with
// FillPercent 0.95: writeCheckpoint sets it, recover does not, so bbolt's
// default of 0.5 splits every leaf after two parts and the replayed
// bodies take about twice the pages admission counted for them.
func TestRecoveredBodiesTakeWhatACheckpointWouldGive(t *testing.T) {
	ctx := context.Background()
	used := map[string]int64{}
	fill := map[string]float64{}
	for _, mode := range []string{"clean", "crash"} {
		dir := t.TempDir()
		s, err := Open(dir, Options{MaxBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			in := incoming(fmt.Sprintf("b%d", i), "t")
			in.Body = recoveryBody(i, 100_000)
			if _, err := s.Accept(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		if mode == "crash" {
			crash(t, s)
		} else if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(dir, Options{MaxBytes: 64 << 20}); err != nil {
			t.Fatal(err)
		}
		var st bolt.BucketStats
		_ = s.db.View(func(tx *bolt.Tx) error { st = tx.Bucket(bucketBodies).Stats(); return nil })
		used[mode], fill[mode] = s.inUse.Load(), float64(st.LeafInuse)/float64(st.LeafAlloc)
		t.Logf("%s: %d bytes of the database file in use; bodies' leaf pages %d, %.0f%% full", mode, used[mode], st.LeafPageN, 100*fill[mode])
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if used["crash"] > used["clean"]*11/10 {
		t.Errorf("the same bodies take %d bytes after a crash and %d after a checkpoint (leaves %.0f%% vs %.0f%% full): recovery writes them at bbolt's default FillPercent",
			used["crash"], used["clean"], 100*fill["crash"], 100*fill["clean"])
	}
}

// recoveryBody is n bytes that differ from body to body.
func recoveryBody(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i*7+seed)%26)
	}
	return b
}
