package controller

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// emptyPatchAnswers is a proxy (127.0.0.1) in front of the fake that
// applies every PATCH /webhooks/{id} and answers it 200 with an empty body,
// which the reference says meetergo may do ("some successful calls return
// an empty body: tolerate it").
func emptyPatchAnswers(t *testing.T) string {
	t.Helper()
	target, _ := url.Parse(meetergoURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPatch && resp.StatusCode == http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(nil))
			resp.ContentLength = 0
			resp.Header.Del("Content-Length")
			resp.Header.Del("Content-Type")
		}
		return nil
	}
	srv := httptest.NewServer(rp) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL
}

// Found by review: meetergo answers a PATCH with an empty 200 body. The client
// fills the answer with the fields sent (an eventTypes-only PATCH: no
// endpoint, no description) and the controller stores that in the
// company's cached list, replacing the real entry. A deletion within
// ListMaxAge (10s by default) reads the cached list, recognises nothing
// (no endpoint, no marker), removes the finalizer and leaves the
// registration at meetergo: it holds one of the six slots for ever and
// meetergo keeps posting to a token no receiver accepts.
func TestEmptyPatchAnswerThenDeleteRemovesTheRegistration(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	proxy := emptyPatchAnswers(t)
	w.startOperator(Options{ListMaxAge: 10 * time.Second}, func(o *meetergo.Options) { o.BaseURL = proxy })

	obj := w.create(w.webhook("edited-then-deleted"))
	w.waitReason("edited-then-deleted", ReasonRegistered)
	g.Expect(w.ownedBy(obj)).To(HaveLen(1))

	// A spec change that is a PATCH of eventTypes only.
	cur := w.get("edited-then-deleted")
	cur.Spec.EventTypes = append(cur.Spec.EventTypes, webhooksv1alpha1.EventBookingCancelled)
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	g.Eventually(func(g Gomega) {
		regs := w.ownedBy(obj)
		g.Expect(regs).To(HaveLen(1))
		g.Expect(regs[0].EventTypes).To(ConsistOf("booking_created", "booking_cancelled"))
	}, wait, 20*time.Millisecond).Should(Succeed())
	w.waitReason("edited-then-deleted", ReasonRegistered)

	// Deleted a few seconds later (kubectl apply, then kubectl delete).
	g.Expect(k8s.Delete(context.Background(), w.get("edited-then-deleted"))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), clientKey(w.ns, "edited-then-deleted"), &webhooksv1alpha1.MeetergoWebhook{}))
	}, wait, 50*time.Millisecond).Should(BeTrue())
	g.Expect(w.registrations()).To(BeEmpty(), "the resource is gone; its registration must not stay at meetergo: %+v", w.registrations())
}

// Found by review: the same empty PATCH answer, then a second spec change within
// ListMaxAge: the resource no longer recognises its own registration in the
// cached list, says RegistrationVanished and creates a second one (a
// duplicate that takes a slot another resource may be waiting for).
func TestEmptyPatchAnswerThenSecondEditCreatesNoDuplicate(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	proxy := emptyPatchAnswers(t)
	w.startOperator(Options{ListMaxAge: 10 * time.Second}, func(o *meetergo.Options) { o.BaseURL = proxy })

	obj := w.create(w.webhook("edited-twice"))
	w.waitReason("edited-twice", ReasonRegistered)
	posts := w.count("POST", "/webhooks")

	cur := w.get("edited-twice")
	cur.Spec.EventTypes = append(cur.Spec.EventTypes, webhooksv1alpha1.EventBookingCancelled)
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	g.Eventually(func() []string { return w.ownedBy(obj)[0].EventTypes }, wait, 20*time.Millisecond).Should(HaveLen(2))
	g.Eventually(func() int64 { return w.get("edited-twice").Status.ObservedGeneration }, wait, 20*time.Millisecond).Should(BeEquivalentTo(2))

	cur = w.get("edited-twice")
	cur.Spec.EventTypes = append(cur.Spec.EventTypes, webhooksv1alpha1.EventBookingRescheduled)
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	g.Eventually(func() int64 { return w.get("edited-twice").Status.ObservedGeneration }, wait, 20*time.Millisecond).Should(BeEquivalentTo(3))
	g.Expect(w.events("edited-twice")).NotTo(ContainElement("RegistrationVanished"), "its registration never vanished")
	g.Expect(w.count("POST", "/webhooks")).To(Equal(posts), "no second create for a resource that has its registration")
	g.Expect(w.ownedBy(obj)).To(HaveLen(1), "registrations at meetergo: %+v", w.registrations())
}
