package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// TestMeetergoOutage: meetergo answers 503 to everything for a while. The
// conditions say so, the calls back off instead of looping, and everything
// recovers by itself when meetergo is back.
func TestMeetergoOutage(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	id, err := meetergoFk.InjectFault(fake.Fault{Status: 503})
	g.Expect(err).NotTo(HaveOccurred())
	removed := false
	t.Cleanup(func() {
		if !removed {
			meetergoFk.RemoveFault(id)
		}
	})
	// Backoff from 100ms doubling to 1.6s; the client does not retry on its own.
	w.startOperator(Options{RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 1600 * time.Millisecond}, func(o *meetergo.Options) { o.MaxRetries = -1 })
	w.create(w.webhook("outage"))

	got := w.waitReason("outage", ReasonMeetergoUnavailable)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionReady)).To(Equal(metav1.ConditionFalse))
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionFalse), "an outage is not terminal")

	// Count calls in two consecutive windows of 4 s: with backoff the second
	// window sees no more calls than the first, and both stay small (a hot
	// loop would make thousands).
	count := func() int { return w.totalRequests() }
	c0 := count()
	deadline := time.Now().Add(4 * time.Second)
	g.Eventually(func() bool { return time.Now().After(deadline) }, 5*time.Second, 100*time.Millisecond).Should(BeTrue())
	c1 := count()
	deadline = time.Now().Add(4 * time.Second)
	g.Eventually(func() bool { return time.Now().After(deadline) }, 5*time.Second, 100*time.Millisecond).Should(BeTrue())
	c2 := count()
	first, second := c1-c0, c2-c1
	t.Logf("calls during the outage: %d in the first 4 s, %d in the next 4 s", first, second)
	g.Expect(first).To(BeNumerically("<=", 10))
	g.Expect(second).To(BeNumerically("<=", 4), "1.6 s apart at most 3 calls fit in 4 s")
	g.Expect(second).To(BeNumerically(">=", 1), "it keeps trying")

	meetergoFk.RemoveFault(id)
	removed = true
	w.waitReason("outage", ReasonRegistered)
}
