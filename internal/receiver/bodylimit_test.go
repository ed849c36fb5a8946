package receiver

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// A store takes no write larger than one of its log files (a sixteenth of
// its bound). A body that passed the body limit but that no store of this
// size can take would be answered 503 for ever, and meetergo would retry it
// for ever: the body limit is lowered to what the store takes (413 beyond).
// Found by review: a 16 MiB store refused every 1 MiB body.
func TestTheLargestBodyAcceptedFitsTheStore(t *testing.T) {
	tokens, err := token.NewDeriver(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, maxBytes := range []int{MinStoreMaxBytes, 4 << 20, 16 << 20, 32 << 20} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			o := Options{Tokens: tokens, DataDir: t.TempDir(), StoreMaxBytes: maxBytes}
			if err := o.complete(); err != nil {
				t.Fatal(err)
			}
			if o.MaxBodyBytes > DefaultMaxBodyBytes || o.MaxBodyBytes < 32<<10 {
				t.Fatalf("MaxBodyBytes = %d", o.MaxBodyBytes)
			}
			s, err := store.Open(o.DataDir, store.Options{MaxBytes: o.StoreMaxBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			targets := make([]string, 16)
			for i := range targets {
				targets[i] = fmt.Sprintf("ns/target-%02d-with-a-long-service-name:http/a/long/path/for/the/target", i)
			}
			now := time.Now()
			_, err = s.Accept(context.Background(), store.Incoming{
				Event:      store.Event{UID: "uid", Namespace: "ns", Name: "name", Type: "booking_created", ID: "msg_1", ReceivedAt: now},
				Body:       bytes.Repeat([]byte("x"), int(o.MaxBodyBytes)),
				DedupScope: "uid", DedupKey: bytes.Repeat([]byte("d"), 32), DedupUntil: now.Add(time.Hour),
				Targets: targets,
			})
			if err != nil {
				t.Fatalf("an empty store of %d bytes refuses a body of MaxBodyBytes (%d): %v", maxBytes, o.MaxBodyBytes, err)
			}
		})
	}
}
