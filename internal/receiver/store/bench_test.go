package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// BenchmarkAccept appends realistic booking_created events (3 KB) from
// parallel writers, each waiting for its own durable commit, as request
// handlers do. The writes/commit figure shows how many writes shared a
// sync.
func BenchmarkAccept(b *testing.B) {
	b.Run("held", func(b *testing.B) { benchmarkAccept(b, false) })
	b.Run("delivered", func(b *testing.B) { benchmarkAccept(b, true) })
}

// benchmarkAccept accepts events with one target each; with deliver, each
// writer then also finishes the delivery, as the forwarder does once a
// target took the event (the body then need not reach the database file).
func benchmarkAccept(b *testing.B, deliver bool) {
	body, err := fake.Payload("booking_created", fake.PayloadOptions{PadBytes: 3 << 10})
	if err != nil {
		b.Fatal(err)
	}
	var commits, writes atomic.Int64
	s, err := Open(b.TempDir(), Options{OnCommit: func(n int, _ time.Duration, _ error) {
		commits.Add(1)
		writes.Add(int64(n))
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(32) // 32 × GOMAXPROCS concurrent requests
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := strconv.FormatInt(next.Add(1), 10)
			in := Incoming{
				Event:      Event{UID: "uid", Namespace: "ns", Name: "hook", Type: "booking_created", ID: key, ReceivedAt: time.Now()},
				Body:       body,
				DedupScope: "uid", DedupKey: []byte(key), DedupUntil: time.Now().Add(time.Hour),
				Targets: []string{"crm:http/"},
			}
			acc, err := s.Accept(ctx, in)
			if err != nil {
				b.Error(err)
				return
			}
			if deliver {
				if err := s.Finish(ctx, Key{Seq: acc.Event.Seq, Target: "crm:http/"}); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
	if c := commits.Load(); c > 0 {
		b.ReportMetric(float64(writes.Load())/float64(c), "writes/commit")
	}
}
