package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

const wait = 15 * time.Second

// cond is a condition's status and reason, "" when absent.
func cond(obj *webhooksv1alpha1.MeetergoWebhook, typ string) (metav1.ConditionStatus, string, string) {
	if obj == nil {
		return "", "", ""
	}
	c := apimeta.FindStatusCondition(obj.Status.Conditions, typ)
	if c == nil {
		return "", "", ""
	}
	return c.Status, c.Reason, c.Message
}

// condStatus is a condition's status, "" when absent.
func condStatus(obj *webhooksv1alpha1.MeetergoWebhook, typ string) metav1.ConditionStatus {
	st, _, _ := cond(obj, typ)
	return st
}

// waitReason waits until the resource's Registered condition has reason.
func (w *world) waitReason(name, reason string) *webhooksv1alpha1.MeetergoWebhook {
	w.t.Helper()
	var obj *webhooksv1alpha1.MeetergoWebhook
	NewWithT(w.t).Eventually(func(g Gomega) {
		obj = w.get(name)
		g.Expect(obj).NotTo(BeNil())
		_, r, msg := cond(obj, webhooksv1alpha1.ConditionRegistered)
		g.Expect(r).To(Equal(reason), "message: %s", msg)
		g.Expect(obj.Status.ObservedGeneration).To(Equal(obj.Generation))
	}, wait, 50*time.Millisecond).Should(Succeed())
	return obj
}

// ownedBy are the registrations carrying the resource's endpoint (of its
// first token generations) or its marker.
func (w *world) ownedBy(obj *webhooksv1alpha1.MeetergoWebhook) []fake.Webhook {
	d, _ := token.NewDeriver(tokenKey)
	endpoints := map[string]bool{}
	for gen := int64(0); gen < 4; gen++ {
		endpoints[token.Endpoint(receiverURL, d.Token(string(obj.UID), gen))] = true
	}
	var out []fake.Webhook
	for _, h := range w.registrations() {
		if endpoints[h.Endpoint] || registration.HasMarker(h.Description, string(obj.UID)) {
			out = append(out, h)
		}
	}
	return out
}

// events are the Kubernetes Events regarding the resource, as reasons.
func (w *world) events(name string) []string {
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(w.ns)); err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

func TestRegisterUpdateDeregister(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)

	obj := w.create(w.webhook("crm", webhooksv1alpha1.EventBookingCreated, webhooksv1alpha1.EventBookingCancelled))
	got := w.waitReason("crm", ReasonRegistered)

	regs := w.ownedBy(got)
	g.Expect(regs).To(HaveLen(1))
	d, _ := token.NewDeriver(tokenKey)
	g.Expect(regs[0].Endpoint).To(Equal(receiverURL + "/hooks/" + d.Token(string(got.UID), 0)))
	g.Expect(regs[0].EventTypes).To(ConsistOf("booking_created", "booking_cancelled"))
	g.Expect(regs[0].Description).To(HavePrefix("test crm "))
	g.Expect(got.Status.WebhookID).To(Equal(fmt.Sprint(regs[0].ID)))
	g.Expect(got.Status.CompanyID).To(Equal(w.companyID))
	g.Expect(got.Status.Endpoint).To(Equal(receiverURL + "/hooks/********"))
	g.Expect(got.Status.EventTypes).To(ConsistOf(webhooksv1alpha1.EventBookingCreated, webhooksv1alpha1.EventBookingCancelled))
	g.Expect(got.Status.LastSyncTime).NotTo(BeNil())
	g.Expect(got.Finalizers).To(ContainElement(Finalizer))
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionReady)).To(Equal(metav1.ConditionTrue))
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionFalse))
	g.Eventually(func() []string { return w.events("crm") }, wait).Should(ContainElement("Registered"))

	// A spec change is applied with PATCH, to the same registration.
	posts := w.count("POST", "/webhooks")
	got.Spec.EventTypes = append(got.Spec.EventTypes, webhooksv1alpha1.EventBookingRescheduled)
	got.Spec.Description = "renamed"
	g.Expect(k8s.Update(context.Background(), got)).To(Succeed())
	g.Eventually(func(g Gomega) {
		regs := w.ownedBy(obj)
		g.Expect(regs).To(HaveLen(1))
		g.Expect(regs[0].EventTypes).To(ConsistOf("booking_created", "booking_cancelled", "booking_rescheduled"))
		g.Expect(regs[0].Description).To(HavePrefix("renamed "))
		g.Expect(w.get("crm").Status.EventTypes).To(HaveLen(3))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(w.count("POST", "/webhooks")).To(Equal(posts), "a spec change must not create")
	g.Expect(w.count("PATCH", "/webhooks/{id}")).To(BeNumerically(">=", 1))
	g.Eventually(func() []string { return w.events("crm") }, wait).Should(ContainElement("Updated"))

	// Delete: the registration is removed, then the finalizer, then the object.
	g.Expect(k8s.Delete(context.Background(), got)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKeyFromObject(got), got))
	}, wait, 50*time.Millisecond).Should(BeTrue())
	g.Expect(w.registrations()).To(BeEmpty())
}

func TestOrphanLeavesRegistration(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)

	obj := w.webhook("keep")
	obj.Spec.DeletionPolicy = webhooksv1alpha1.DeletionPolicyOrphan
	w.create(obj)
	got := w.waitReason("keep", ReasonRegistered)
	g.Expect(k8s.Delete(context.Background(), got)).To(Succeed())
	g.Eventually(func() *webhooksv1alpha1.MeetergoWebhook { return w.get("keep") }, wait, 50*time.Millisecond).Should(BeNil())
	g.Expect(w.ownedBy(got)).To(HaveLen(1), "Orphan leaves the registration at meetergo")
}

func TestAmbiguousCreateAndRestartYieldOneRegistration(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	// meetergo applies the create but answers 500, and the operator dies
	// before it can look again.
	id, err := meetergoFk.InjectFault(fake.Fault{Method: "POST", Path: "/webhooks", Apply: true, Status: 500, Times: 1})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(id) })

	first := w.startOperator(Options{RetryBaseDelay: time.Hour, RetryMaxDelay: time.Hour})
	obj := w.create(w.webhook("once"))
	g.Eventually(func() []fake.Webhook { return w.ownedBy(obj) }, wait, 20*time.Millisecond).Should(HaveLen(1))
	g.Eventually(func() string { _, r, _ := cond(w.get("once"), webhooksv1alpha1.ConditionRegistered); return r }, wait).Should(Equal(ReasonMeetergoUnavailable))
	g.Expect(w.get("once").Status.WebhookID).To(BeEmpty(), "the status never learned the id")
	first.stop()

	// A new operator process, with no memory of the first.
	w.startOperator(Options{})
	got := w.waitReason("once", ReasonRegistered)
	regs := w.ownedBy(got)
	g.Expect(regs).To(HaveLen(1), "exactly one registration after the restart")
	g.Expect(got.Status.WebhookID).To(Equal(fmt.Sprint(regs[0].ID)))
	g.Expect(w.count("POST", "/webhooks")).To(Equal(1), "adopted, not created again")
	g.Eventually(func() []string { return w.events("once") }, wait).Should(ContainElement("Adopted"))
}

func TestDriftAtMeetergoIsRepairedOnResync(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{ResyncPeriod: 2 * time.Second})
	g := NewWithT(t)

	obj := w.create(w.webhook("drift", webhooksv1alpha1.EventBookingCreated))
	got := w.waitReason("drift", ReasonRegistered)
	firstID := got.Status.WebhookID

	// Someone edits the registration in the dashboard.
	regs := w.ownedBy(obj)
	_, err := meetergoFk.EditWebhook(regs[0].ID, fake.WebhookChange{EventTypes: []string{"new_employee"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		regs := w.ownedBy(obj)
		g.Expect(regs).To(HaveLen(1))
		g.Expect(regs[0].EventTypes).To(ConsistOf("booking_created"))
	}, wait, 100*time.Millisecond).Should(Succeed())

	// Someone deletes it in the dashboard.
	g.Expect(meetergoFk.DeleteWebhook(regs[0].ID)).To(Succeed())
	g.Eventually(func(g Gomega) {
		regs := w.ownedBy(obj)
		g.Expect(regs).To(HaveLen(1))
		g.Expect(w.get("drift").Status.WebhookID).To(Equal(fmt.Sprint(regs[0].ID)))
		g.Expect(w.get("drift").Status.WebhookID).NotTo(Equal(firstID))
	}, wait, 100*time.Millisecond).Should(Succeed())
}

func TestTokenRotationUpdatesEndpoint(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)
	obj := w.create(w.webhook("rotate"))
	got := w.waitReason("rotate", ReasonRegistered)
	before := w.ownedBy(obj)[0].Endpoint

	got.Annotations = map[string]string{webhooksv1alpha1.RotateTokenAnnotation: "2026-11-28T12:00:00Z"}
	g.Expect(k8s.Update(context.Background(), got)).To(Succeed())
	d, _ := token.NewDeriver(tokenKey)
	g.Eventually(func(g Gomega) {
		cur := w.get("rotate")
		g.Expect(cur.Status.TokenGeneration).To(BeEquivalentTo(1))
		g.Expect(cur.Status.TokenRotatedAt).NotTo(BeNil())
		g.Expect(w.ownedBy(obj)[0].Endpoint).To(Equal(receiverURL + "/hooks/" + d.Token(string(obj.UID), 1)))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(w.ownedBy(obj)[0].Endpoint).NotTo(Equal(before))
	g.Expect(w.ownedBy(obj)[0].ID).To(Equal(w.ownedBy(obj)[0].ID))
	for _, c := range w.get("rotate").Status.Conditions {
		g.Expect(c.Message).NotTo(ContainSubstring(d.Token(string(obj.UID), 1)), "the token never appears in status")
	}
}

func TestSuspendMakesNoCalls(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)
	obj := w.webhook("paused")
	obj.Spec.Suspend = true
	w.create(obj)
	got := w.waitReason("paused", ReasonSuspended)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionReady)).To(Equal(metav1.ConditionFalse))
	g.Expect(w.totalRequests()).To(BeZero(), "a suspended resource makes no call to meetergo")

	got.Spec.Suspend = false
	g.Expect(k8s.Update(context.Background(), got)).To(Succeed())
	w.waitReason("paused", ReasonRegistered)
}

func TestPlainHTTPEndpointRefusedUnlessAllowed(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{ReceiverURL: "http://hooks.example.test"})
	g := NewWithT(t)
	w.create(w.webhook("plain"))
	got := w.waitReason("plain", ReasonInvalidEndpoint)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
	_, _, msg := cond(got, webhooksv1alpha1.ConditionReady)
	g.Expect(msg).To(ContainSubstring("https"))
	g.Expect(w.registrations()).To(BeEmpty())
}

// count is how many requests of method and route the world's credential made.
func (w *world) count(method, route string) int {
	return meetergoFk.Count(method, route, w.token).Requests
}

func (w *world) totalRequests() int {
	n := 0
	for _, c := range meetergoFk.Counts() {
		if c.Credential == w.token {
			n += c.Requests
		}
	}
	return n
}

// statuses are the status codes the fake answered the world's credential.
func (w *world) statuses() []int {
	var out []int
	for _, r := range meetergoFk.Requests() {
		if r.Credential == w.token || strings.HasPrefix(r.Credential, w.token) {
			out = append(out, r.Status)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestDeletionBlockedByCredentialSaysWhyAndOrphanFinishesIt(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)
	obj := w.create(w.webhook("stuck"))
	got := w.waitReason("stuck", ReasonRegistered)

	// The credential is gone when the resource is deleted.
	g.Expect(k8s.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "meetergo-api"}})).To(Succeed())
	g.Expect(k8s.Delete(context.Background(), got)).To(Succeed())
	g.Eventually(func(g Gomega) {
		_, r, msg := cond(w.get("stuck"), webhooksv1alpha1.ConditionReady)
		g.Expect(r).To(Equal(ReasonDeletionBlocked))
		g.Expect(msg).To(ContainSubstring("deletionPolicy to Orphan"))
		g.Expect(msg).To(ContainSubstring(w.ns + "/meetergo-api"))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(w.ownedBy(obj)).To(HaveLen(1))

	// The way out the condition names: Orphan.
	cur := w.get("stuck")
	cur.Spec.DeletionPolicy = webhooksv1alpha1.DeletionPolicyOrphan
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	g.Eventually(func() *webhooksv1alpha1.MeetergoWebhook { return w.get("stuck") }, wait, 50*time.Millisecond).Should(BeNil())
	g.Expect(w.ownedBy(obj)).To(HaveLen(1), "Orphan leaves the registration")
}

func TestCredentialMovedToAnotherCompanyIsSaid(t *testing.T) {
	w := newWorld(t)
	other := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)
	obj := w.create(w.webhook("mover"))
	w.waitReason("mover", ReasonRegistered)

	sec := &corev1.Secret{}
	g.Expect(k8s.Get(context.Background(), clientKey(w.ns, "meetergo-api"), sec)).To(Succeed())
	sec.Data = map[string][]byte{SecretKeyToken: []byte(other.token)}
	g.Expect(k8s.Update(context.Background(), sec)).To(Succeed())

	g.Eventually(func(g Gomega) {
		got := w.get("mover")
		g.Expect(got.Status.CompanyID).To(Equal(other.companyID))
		g.Expect(other.ownedBy(obj)).To(HaveLen(1))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(w.ownedBy(obj)).To(HaveLen(1), "the old company's registration cannot be reached with the new credential")
	g.Eventually(func() []string { return w.events("mover") }, wait).Should(ContainElement("CompanyChanged"))
}
