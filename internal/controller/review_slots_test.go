package controller

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// fillWithDashboardWebhooks adds n registrations made outside the operator.
func (w *world) fillWithDashboardWebhooks(n int) {
	w.t.Helper()
	for i := 0; i < n; i++ {
		_, err := meetergoFk.AddExternalWebhook(w.companyID, fake.WebhookSpec{
			Endpoint: fmt.Sprintf("https://elsewhere.example.test/%d", i), Description: "dashboard", EventTypes: []string{"booking_created"},
		})
		NewWithT(w.t).Expect(err).NotTo(HaveOccurred())
	}
}

// Found by review: a holder's registration is deleted in the dashboard while
// meetergo refuses creates for a moment (503). The holder's status loses
// its webhookID (written with the failure) and its priority lives only in
// the process's memory. The operator restarts (a rollout, a new leader):
// the holder is now an ordinary waiter, and an older waiting resource takes
// the slot the holder held. README: "A holder keeps its slot ... registered
// again at once, ahead of every waiting resource".
func TestVanishedHolderKeepsItsSlotAcrossARestart(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.fillWithDashboardWebhooks(5)

	first := w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond})
	// The waiting resource is the older one: created suspended first.
	waiter := w.webhook("older-waiter")
	waiter.Spec.Suspend = true
	w.create(waiter)
	w.waitReason("older-waiter", ReasonSuspended)
	g.Eventually(func() bool {
		return time.Now().Truncate(time.Second).After(w.get("older-waiter").CreationTimestamp.Time)
	}, 2*time.Second, 10*time.Millisecond).Should(BeTrue())
	w.create(w.webhook("holder"))
	held := w.waitReason("holder", ReasonRegistered)
	cur := w.get("older-waiter")
	cur.Spec.Suspend = false
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	w.waitReason("older-waiter", ReasonQuotaExceeded)

	// meetergo refuses creates for a while; the holder's registration is
	// deleted in the dashboard.
	fid, err := meetergoFk.InjectFault(fake.Fault{Method: "POST", Path: "/webhooks", Status: 503})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(fid) })
	id, _ := strconv.ParseInt(held.Status.WebhookID, 10, 64)
	g.Expect(meetergoFk.DeleteWebhook(id)).To(Succeed())
	g.Eventually(func(g Gomega) {
		h := w.get("holder")
		g.Expect(h.Status.WebhookID).To(BeEmpty())
		_, r, _ := cond(h, webhooksv1alpha1.ConditionRegistered)
		g.Expect(r).To(Equal(ReasonMeetergoUnavailable))
	}, wait, 20*time.Millisecond).Should(Succeed())
	// Until here the holder keeps its priority: the waiter still waits.
	_, r, _ := cond(w.get("older-waiter"), webhooksv1alpha1.ConditionRegistered)
	g.Expect(r).To(Equal(ReasonQuotaExceeded))

	// The operator restarts; meetergo is back.
	first.stop()
	meetergoFk.RemoveFault(fid)
	w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond})
	g.Eventually(func(g Gomega) {
		_, hr, hmsg := cond(w.get("holder"), webhooksv1alpha1.ConditionRegistered)
		_, wr, _ := cond(w.get("older-waiter"), webhooksv1alpha1.ConditionRegistered)
		g.Expect(hr).To(Equal(ReasonRegistered), "the holder gets its slot back (holder: %s)", hmsg)
		g.Expect(wr).To(Equal(ReasonQuotaExceeded))
	}, wait, 50*time.Millisecond).Should(Succeed())
}

// Found by review: "reconcile now" on a resource waiting for a slot. The request is
// never recorded as handled (status.lastHandledReconcileAt stays empty, so
// a CLI or script waiting for it waits for ever), and every quota poll
// from then on is a forced, uncached list: one GET /webhooks per waiting
// resource and poll, for ever, out of the credential's 100 a minute.
func TestReconcileNowOnAWaitingResourceIsHandled(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.fillWithDashboardWebhooks(6)
	w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond, ListMaxAge: time.Minute})
	w.create(w.webhook("waiting"))
	w.waitReason("waiting", ReasonQuotaExceeded)

	cur := w.get("waiting")
	cur.Annotations = map[string]string{webhooksv1alpha1.ReconcileRequestedAtAnnotation: "2026-12-03T13:00:00Z"}
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	lists := w.count("GET", "/webhooks")
	g.Eventually(func() string { return w.get("waiting").Status.LastHandledReconcileAt }, 3*time.Second, 50*time.Millisecond).
		Should(Equal("2026-12-03T13:00:00Z"), func() string {
			return fmt.Sprintf("the request was handled (listed afresh, still no slot): status must say so; uncached GET /webhooks in 3s since: %d", w.count("GET", "/webhooks")-lists)
		})
}

// Found by review: a holder's registration vanishes and meetergo refuses its
// re-create for good (400: InvalidRequest, Stalled until its spec
// changes). Its in-memory priority is never settled, so the free slot is
// kept for a resource that cannot use it: the waiting resource stays
// QuotaExceeded with "5 of 6 slots used" for as long as the process runs.
func TestStalledResourceDoesNotBlockAFreeSlot(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.fillWithDashboardWebhooks(5)
	w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond})
	w.create(w.webhook("holder"))
	held := w.waitReason("holder", ReasonRegistered)
	g.Eventually(func() bool { return time.Now().Truncate(time.Second).After(held.CreationTimestamp.Time) }, 2*time.Second, 10*time.Millisecond).Should(BeTrue())
	w.create(w.webhook("waiter"))
	w.waitReason("waiter", ReasonQuotaExceeded)

	// The holder's re-create is refused once, as invalid: it stalls.
	fid, err := meetergoFk.InjectFault(fake.Fault{Method: "POST", Path: "/webhooks", Status: 400, Times: 1})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(fid) })
	id, _ := strconv.ParseInt(held.Status.WebhookID, 10, 64)
	g.Expect(meetergoFk.DeleteWebhook(id)).To(Succeed())
	w.waitReason("holder", ReasonInvalidRequest)
	g.Expect(condStatus(w.get("holder"), webhooksv1alpha1.ConditionStalled)).To(BeEquivalentTo("True"))

	g.Eventually(func() string {
		_, r, msg := cond(w.get("waiter"), webhooksv1alpha1.ConditionRegistered)
		return r + ": " + msg
	}, 5*time.Second, 100*time.Millisecond).Should(HavePrefix(ReasonRegistered), "a free slot, and the only other claimant is stalled: %+v", w.get("holder").Status)
}
