package receiver

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// TestRateLimitIsPerResource runs a receiver with --receiver-rate-limit=0.5
// and a burst of 3: a resource gets its burst, then 429 with Retry-After
// (nothing stored); another resource is unaffected meanwhile; both tokens
// of a rotated resource share its one bucket; after a while the limited
// resource is served again. (A token comes back every 2 s, far longer
// than the few requests of a burst take, even on a loaded machine.)
func TestRateLimitIsPerResource(t *testing.T) {
	g := NewWithT(t)
	const burst = 3
	x := startExtraReceiver(t, Options{RateLimit: 0.5, RateBurst: burst})
	ns := namespace(t)
	spec := webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}}
	busy, quiet, rotated := webhook(t, ns, "busy", spec), webhook(t, ns, "quiet", spec), webhook(t, ns, "rotated", spec)
	setStatus(t, rotated, func(s *webhooksv1alpha1.MeetergoWebhookStatus) {
		s.TokenGeneration, s.TokenRotatedAt = 1, &metav1.Time{Time: time.Now()}
	})
	for _, w := range []*webhooksv1alpha1.MeetergoWebhook{busy, quiet, rotated} {
		x.sees(t, w)
	}
	limited := testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeRateLimited))

	// The burst, then refusals. Requests that are refused are never read,
	// so they cost no store write.
	for i := range burst {
		code, err := post(x.endpoint(busy, 0), booking(t), "application/json")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK), "request %d of the burst", i+1)
	}
	resp, err := noKeepAlive.Post(x.endpoint(busy, 0), "application/json", bytes.NewReader(booking(t)))
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
	g.Expect(resp.Header.Get("Retry-After")).To(Equal("1"))
	for range 5 {
		code, _ := post(x.endpoint(busy, 0), booking(t), "")
		g.Expect(code).To(Equal(http.StatusTooManyRequests))
	}
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeRateLimited)) - limited).To(BeEquivalentTo(6))

	// Another resource has its own bucket.
	for i := range burst {
		code, _ := post(x.endpoint(quiet, 0), booking(t), "")
		g.Expect(code).To(Equal(http.StatusOK), "another resource, request %d", i+1)
	}
	// Both tokens of a rotated resource draw on one bucket: the limit is
	// per resource, not per URL.
	for i := range burst {
		code, _ := post(x.endpoint(rotated, int64(i%2)), booking(t), "")
		g.Expect(code).To(Equal(http.StatusOK))
	}
	code, _ := post(x.endpoint(rotated, 0), booking(t), "")
	g.Expect(code).To(Equal(http.StatusTooManyRequests), "the previous token shares the current one's bucket")

	// Within the limit again: a token comes back every 2 s.
	g.Eventually(func() int {
		code, _ := post(x.endpoint(busy, 0), booking(t), "")
		return code
	}, 10*time.Second, 250*time.Millisecond).Should(Equal(http.StatusOK))

	g.Eventually(delivery(busy)).Should(HaveField("Received", BeEquivalentTo(burst+1)), "refused requests are not stored")
	g.Eventually(delivery(quiet)).Should(HaveField("Received", BeEquivalentTo(burst)))
	g.Eventually(delivery(rotated)).Should(HaveField("Received", BeEquivalentTo(burst)))
}

// TestRateLimiterUnit checks the token buckets without HTTP: per UID, the
// burst, then the rate.
func TestRateLimiterUnit(t *testing.T) {
	l := newLimiter(1000, 2)
	for i, want := range []bool{true, true, false} {
		if got := l.allow("a"); got != want {
			t.Fatalf("request %d of a: %v, want %v", i+1, got, want)
		}
	}
	if !l.allow("b") {
		t.Fatal("b is limited by a's bucket")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !l.allow("a") {
		if time.Now().After(deadline) {
			t.Fatal("a's bucket did not refill at 1000/s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPruningKeepsBucketsThatAreNotFull checks the minute's pruning of idle
// buckets against a limit slower than a burst a minute: a bucket that is
// still refilling must be kept, or the resource would get a full burst
// back early (at 1 request an hour, after a minute instead of an hour).
func TestPruningKeepsBucketsThatAreNotFull(t *testing.T) {
	l := newLimiter(1.0/3600, 1)
	if !l.allow("slow") {
		t.Fatal("the first request was refused")
	}
	l.prune(time.Now().Add(time.Minute)) // as the maintenance a minute later does
	if l.allow("slow") {
		t.Fatal("pruning an empty bucket gave its resource a new burst")
	}
	l2 := newLimiter(1000, 1)
	l2.allow("fast")
	deadline := time.Now().Add(5 * time.Second)
	for l2.buckets["fast"].Tokens() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l2.prune(time.Now().Add(time.Minute))
	if len(l2.buckets) != 0 {
		t.Fatal("a full, idle bucket was kept")
	}
}
