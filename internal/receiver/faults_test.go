package receiver

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// Retry delays of the receivers whose targets are down while their store
// fills: 50 attempts take about 25 s, so nothing becomes a dead letter
// during the test, and a target that comes back gets its events within a
// second.
const (
	faultRetryBase = 100 * time.Millisecond
	faultRetryMax  = time.Second
	// faultHold is how long the ready check fails after a refused write.
	faultHold = time.Second
)

// fillUntilRefused posts 10 KB events to endpoint until one is answered
// 503 (at most max posts) and returns the bodies acknowledged with 200, the
// refused body and the text of the 503 answer.
func fillUntilRefused(t *testing.T, endpoint string, max int) (acked [][]byte, refused []byte, refusal string) {
	t.Helper()
	for range max {
		body, err := fake.Payload("booking_created", fake.PayloadOptions{PadBytes: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noKeepAlive.Post(endpoint, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			acked = append(acked, body)
		case http.StatusServiceUnavailable:
			return acked, body, string(answer)
		default:
			t.Fatalf("status %d while filling the store", resp.StatusCode)
		}
	}
	t.Fatalf("the store took %d events of 10 KB without refusing one", max)
	return nil, nil, ""
}

// switchable is a target that answers 503 until switched on.
func switchable(t *testing.T) (*target, *atomic.Bool) {
	var up atomic.Bool
	return newTarget(t, func(int) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	}), &up
}

// expectAllDelivered waits until the target has taken every body in acked.
func expectAllDelivered(t *testing.T, tg *target, acked [][]byte) {
	t.Helper()
	NewWithT(t).Eventually(func() int {
		got := map[string]bool{}
		for _, b := range tg.accepted() {
			got[string(b)] = true
		}
		missing := 0
		for _, b := range acked {
			if !got[string(b)] {
				missing++
			}
		}
		return missing
	}, 60*time.Second).Should(BeZero(), "acknowledged events that never reached the target")
}

// TestAFullStoreAnswers503UntilSpaceFrees fills a receiver whose store may
// not grow beyond 1 MiB (--receiver-store-max-bytes) while its target is
// down: once full, events are answered 503 (meetergo retries) rather than
// acknowledged, the log, the metrics and the readiness check say so; when
// the target comes back, delivered events free their pages and the
// receiver takes events again by itself. No acknowledged event is lost.
func TestAFullStoreAnswers503UntilSpaceFrees(t *testing.T) {
	g := NewWithT(t)
	x := startExtraReceiver(t, Options{StoreMaxBytes: 1 << 20, RetryBaseDelay: faultRetryBase, RetryMaxDelay: faultRetryMax})
	x.refusals.hold = faultHold // 30 s in production
	tg, up := switchable(t)
	w := hookTo(t, x, tg)
	unavailable := testutil.ToFloat64(eventsTotal.WithLabelValues("booking_created", outcomeUnavailable))
	failures := testutil.ToFloat64(commitFailures)

	acked, refused, refusal := fillUntilRefused(t, x.endpoint(w, 0), 500)
	t.Logf("the store took %d events of 10 KB, then refused", len(acked))
	g.Expect(acked).NotTo(BeEmpty())
	g.Expect(refusal).To(Equal(answers[outcomeUnavailable].text))
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("booking_created", outcomeUnavailable)) - unavailable).To(BeNumerically(">=", 1))
	g.Expect(testutil.ToFloat64(commitFailures) - failures).To(BeNumerically(">=", 1))
	g.Expect(x.logs.String()).To(And(ContainSubstring("storing an event"), ContainSubstring("database reached maximum size")))
	g.Expect(x.ready()).To(MatchError(ContainSubstring("receiver store")), "a full store must take the replica out of the Service")

	// The target comes back: deliveries free their pages and the receiver
	// recovers without help.
	up.Store(true)
	expectAllDelivered(t, tg, acked)
	g.Eventually(x.ready, 30*time.Second).Should(Succeed())
	expectAllDelivered(t, tg, [][]byte{acceptedAgain(t, x, w)})
	expectNeverDelivered(t, tg, refused)
}

// expectNeverDelivered checks that a refused event was not kept: meetergo
// sends it again, and only that copy may reach the target.
func expectNeverDelivered(t *testing.T, tg *target, refused []byte) {
	t.Helper()
	for _, b := range tg.got() {
		if bytes.Equal(b.body, refused) {
			t.Fatal("an event answered 503 was forwarded")
		}
	}
}

// hookTo creates, in a namespace of its own, a resource for booking_created
// that forwards to tg (up to 50 attempts), and waits until x sees it.
func hookTo(t *testing.T, x *extraReceiver, tg *target) *webhooksv1alpha1.MeetergoWebhook {
	t.Helper()
	ns := namespace(t)
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
		Delivery:   webhooksv1alpha1.DeliverySpec{MaxAttempts: 50},
	})
	x.sees(t, w)
	return w
}

// postAcked posts n bookings to w at x, each of which must get 200, and
// returns their bodies.
func postAcked(t *testing.T, x *extraReceiver, w *webhooksv1alpha1.MeetergoWebhook, n int) [][]byte {
	t.Helper()
	var acked [][]byte
	for range n {
		body := booking(t)
		code, err := post(x.endpoint(w, 0), body, "application/json")
		if err != nil || code != http.StatusOK {
			t.Fatalf("posting an event: %d, %v", code, err)
		}
		acked = append(acked, body)
	}
	return acked
}

// acceptedAgain posts bookings to w at x until one is answered 200 (the
// receiver has recovered by itself), and returns that one's body.
func acceptedAgain(t *testing.T, x *extraReceiver, w *webhooksv1alpha1.MeetergoWebhook) []byte {
	t.Helper()
	var body []byte
	NewWithT(t).Eventually(func() int {
		body = booking(t)
		code, _ := post(x.endpoint(w, 0), body, "application/json")
		return code
	}, 30*time.Second).Should(Equal(http.StatusOK))
	return body
}
