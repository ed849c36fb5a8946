package receiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// BenchmarkLookup finds a resource by token among 200 in the cache, as
// every request does.
func BenchmarkLookup(b *testing.B) {
	ns := namespace(b)
	var last *webhooksv1alpha1.MeetergoWebhook
	for i := range 200 {
		last = webhook(b, ns, fmt.Sprintf("hook-%d", i), webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}})
	}
	rt := &router{cache: cached, tokens: tokens, grace: testGrace, now: time.Now}
	tok := tokens.Token(string(last.UID), 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if w, err := rt.lookup(ctx, tok); err != nil || w == nil {
			b.Fatal("not found", err)
		}
	}
}

// BenchmarkReceive posts 3 KB booking_created events from 32 parallel
// clients to the shared receiver, which looks up the token, parses, writes
// durably (group commit) and answers; with a target, it also forwards each
// event (on the same cores as the clients and the target). "bare" is a
// handler that only reads the body and answers 200, for the ratio.
func BenchmarkReceive(b *testing.B) {
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer bare.Close()
	b.Run("bare", func(b *testing.B) { benchmarkPosts(b, bare.URL+"/hooks/x") })
	ns := namespace(b)
	tg := newTarget(b, always(200))
	service(b, ns, "crm", tg)
	for name, targets := range map[string][]webhooksv1alpha1.Target{
		"record-only": nil,
		"one-target":  {toTarget("crm", "/")},
	} {
		w := webhook(b, ns, name, webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}, Targets: targets})
		b.Run(name, func(b *testing.B) { benchmarkPosts(b, endpointOf(w, 0)) })
	}
}

func benchmarkPosts(b *testing.B, endpoint string) {
	body, _ := fake.Payload("booking_created", fake.PayloadOptions{})
	prefix, suffix, _ := bytes.Cut(body, []byte(`"id":"`))
	suffix = suffix[36:] // the appointment id, replaced per request
	var n atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.SetParallelism(16) // 32 clients on 2 cores
	b.ReportAllocs()
	writes, commits := histogram(b, commitWrites)
	took, _ := histogram(b, commitDuration)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("a0000000-0000-4000-8000-%012d", n.Add(1))
			body := bytes.Join([][]byte{prefix, []byte(`"id":"` + id), suffix}, nil)
			resp, err := client.Post(endpoint, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	if w, c := histogram(b, commitWrites); c > commits {
		b.ReportMetric((w-writes)/float64(c-commits), "writes/commit")
		t, _ := histogram(b, commitDuration)
		b.ReportMetric((t-took)/float64(c-commits)*1e6, "µs/commit")
	}
}

// histogram reads a histogram's sum and count.
func histogram(b *testing.B, h prometheus.Histogram) (sum float64, count uint64) {
	m := &dto.Metric{}
	if err := h.Write(m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
}
