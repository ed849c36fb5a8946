package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// secondCredential adds another personal token of the world's company admin
// and a Secret holding it.
func (w *world) secondCredential(secretName string) string {
	w.t.Helper()
	tok := "rgo-attack2-" + secretName + "-" + w.ns
	NewWithT(w.t).Expect(meetergoFk.AddSeed(fake.Seed{Credentials: []fake.Credential{{Token: tok, UserID: w.userID}}})).To(Succeed())
	w.secret(secretName, map[string]string{SecretKeyToken: tok})
	return tok
}

// otherCompany adds a second company with an admin, and a Secret holding
// the admin's personal token.
func (w *world) otherCompany(secretName string) (companyID, tok string) {
	w.t.Helper()
	n := counter.Add(1)
	companyID = fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", n)
	userID := fmt.Sprintf("a11ce000-0000-4000-8000-%012d", n)
	tok = fmt.Sprintf("rgo-attack2-other-%d-%s", n, strings.Repeat("y", 24))
	NewWithT(w.t).Expect(meetergoFk.AddSeed(fake.Seed{
		Companies:   []fake.Company{{ID: companyID}},
		Users:       []fake.User{{ID: userID, CompanyID: companyID, Email: fmt.Sprintf("admin%d@example.test", n), IsAdmin: true}},
		Credentials: []fake.Credential{{Token: tok, UserID: userID}},
	})).To(Succeed())
	w.secret(secretName, map[string]string{SecretKeyToken: tok})
	return companyID, tok
}

// afterCreationSecond waits until a resource created now gets a later
// creation timestamp than obj (timestamps have second resolution).
func afterCreationSecond(g Gomega, obj *webhooksv1alpha1.MeetergoWebhook) {
	g.Eventually(func() bool { return time.Now().Truncate(time.Second).After(obj.CreationTimestamp.Time) }, 2*time.Second, 10*time.Millisecond).Should(BeTrue())
}

// Attack: a holder whose credential has expired (401, CredentialRejected:
// not Stalled, "retried with backoff") cannot act. Its registration is
// deleted in the dashboard, to make room. The holder keeps its claim to
// the slot (status.webhookID, never cleared because every call of its
// credential is refused), so the free slot is kept for a resource that
// cannot use it until a person fixes its Secret: the waiting resource stays
// QuotaExceeded with "5 of 6 used, waiting at position 2". The same
// reasoning that made stalled resources stop queueing applies: a 401 waits
// for a person.
func TestHolderWithARefusedCredentialGivesAFreedSlotToWaiters(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.fillWithDashboardWebhooks(5)
	expiring := w.secondCredential("holder-api")
	w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond})

	h := w.webhook("holder")
	h.Spec.Credentials.SecretRef.Name = "holder-api"
	w.create(h)
	held := w.waitReason("holder", ReasonRegistered)
	afterCreationSecond(g, held)
	w.create(w.webhook("waiter"))
	w.waitReason("waiter", ReasonQuotaExceeded)

	// The holder's token expires; its dead registration is deleted in
	// the dashboard to free the slot.
	meetergoFk.ExpireCredential(expiring)
	id, _ := strconv.ParseInt(held.Status.WebhookID, 10, 64)
	g.Expect(meetergoFk.DeleteWebhook(id)).To(Succeed())

	g.Eventually(func() string {
		_, r, msg := cond(w.get("waiter"), webhooksv1alpha1.ConditionRegistered)
		return r + ": " + msg
	}, 5*time.Second, 100*time.Millisecond).Should(HavePrefix(ReasonRegistered),
		func() string {
			_, r, msg := cond(w.get("holder"), webhooksv1alpha1.ConditionRegistered)
			return fmt.Sprintf("a slot is free and the only other claimant cannot use it (holder: %s: %s, webhookID %q)", r, msg, w.get("holder").Status.WebhookID)
		})
}

// Attack: status.slotHeld is a claim to a slot of one company, but it
// follows the resource to another company. A holder's registration
// vanishes while meetergo refuses creates (503): status.slotHeld=true,
// webhookID empty. Its Secret is then switched to a token of another
// company (the CompanyChanged branch resets slotHeld only when webhookID is
// set). In the new company it never held anything, yet it jumps ahead of
// an older resource waiting there: README "waiting ones are served oldest
// first".
func TestSlotHeldDoesNotFollowTheResourceToAnotherCompany(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	otherID, _ := w.otherCompany("other-api")
	// The other company is full: five from its dashboard, one of this cluster.
	for i := 0; i < 5; i++ {
		_, err := meetergoFk.AddExternalWebhook(otherID, fake.WebhookSpec{
			Endpoint: fmt.Sprintf("https://elsewhere.example.test/o%d", i), Description: "dashboard", EventTypes: []string{"booking_created"},
		})
		g.Expect(err).NotTo(HaveOccurred())
	}
	w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond})

	occupant := w.webhook("other-occupant")
	occupant.Spec.Credentials.SecretRef.Name = "other-api"
	w.create(occupant)
	w.waitReason("other-occupant", ReasonRegistered)
	// The older waiter of the other company.
	waiter := w.webhook("other-older-waiter")
	waiter.Spec.Credentials.SecretRef.Name = "other-api"
	w.create(waiter)
	wobj := w.waitReason("other-older-waiter", ReasonQuotaExceeded)
	afterCreationSecond(g, wobj)

	// The mover holds a slot in the world's company; its registration
	// vanishes while meetergo refuses creates.
	w.create(w.webhook("mover"))
	held := w.waitReason("mover", ReasonRegistered)
	fid, err := meetergoFk.InjectFault(fake.Fault{Method: "POST", Path: "/webhooks", Status: 503})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(fid) })
	id, _ := strconv.ParseInt(held.Status.WebhookID, 10, 64)
	g.Expect(meetergoFk.DeleteWebhook(id)).To(Succeed())
	// A reconcile-now makes the operator notice at once.
	m := w.get("mover")
	m.Annotations = map[string]string{webhooksv1alpha1.ReconcileRequestedAtAnnotation: "2026-12-03T13:00:00Z"}
	g.Expect(k8s.Update(context.Background(), m)).To(Succeed())
	g.Eventually(func(g Gomega) {
		m := w.get("mover")
		g.Expect(m.Status.WebhookID).To(BeEmpty())
		g.Expect(m.Status.SlotHeld).To(BeTrue())
		_, r, _ := cond(m, webhooksv1alpha1.ConditionRegistered)
		g.Expect(r).To(Equal(ReasonMeetergoUnavailable))
	}, wait, 20*time.Millisecond).Should(Succeed())

	// Its Secret now names the other company's credential.
	m = w.get("mover")
	m.Spec.Credentials.SecretRef.Name = "other-api"
	g.Expect(k8s.Update(context.Background(), m)).To(Succeed())
	g.Eventually(func(g Gomega) {
		m := w.get("mover")
		g.Expect(m.Status.CompanyID).To(Equal(otherID))
		_, r, _ := cond(m, webhooksv1alpha1.ConditionRegistered)
		g.Expect(r).To(Equal(ReasonQuotaExceeded))
	}, wait, 20*time.Millisecond).Should(Succeed())
	meetergoFk.RemoveFault(fid)

	// One slot frees up in the other company: the older waiter is next.
	for _, h := range meetergoFk.Webhooks(otherID) {
		if h.Description == "dashboard" {
			g.Expect(meetergoFk.DeleteWebhook(h.ID)).To(Succeed())
			break
		}
	}
	g.Eventually(func(g Gomega) {
		_, wr, wmsg := cond(w.get("other-older-waiter"), webhooksv1alpha1.ConditionRegistered)
		_, mr, _ := cond(w.get("mover"), webhooksv1alpha1.ConditionRegistered)
		g.Expect(wr).To(Equal(ReasonRegistered), "the older waiter of the other company gets the freed slot (waiter: %s; mover: %s, slotHeld=%v)", wmsg, mr, w.get("mover").Status.SlotHeld)
	}, 5*time.Second, 50*time.Millisecond).Should(Succeed())
}
