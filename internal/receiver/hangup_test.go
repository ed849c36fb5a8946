package receiver

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// hungUp is a request context whose client has gone (net/http cancels
// r.Context() when the connection closes) while the body is being stored.
func hungUp() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// storedBodies counts the events of w in the store (pending or dead).
func storedBodies(t *testing.T, st *store.Store, w *webhooksv1alpha1.MeetergoWebhook) int {
	n := 0
	NewWithT(t).Expect(st.Load(func(ev store.Event, _ store.Delivery) {
		if ev.UID == string(w.UID) {
			n++
		}
	})).To(Succeed())
	return n
}

// TestAKeptBodyWhoseSenderHungUpIsStillReplayed: meetergo hangs up while
// a kept body is being stored. keep stops waiting (the request is gone),
// but the write (body, dead letter and duplicate key) still commits, and
// what follows a stored body follows it too: the dead letter is handed to
// the forwarder (with the Warning Event and the status figures). meetergo
// sends the body again: answered "duplicate". A replay then reads the
// kept body and delivers it. (keep used to return before handing the dead
// letter on: the body sat on disk, unknown to the running receiver.)
func TestAKeptBodyWhoseSenderHungUpIsStillReplayed(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/in")},
	})
	hook := &webhooksv1alpha1.MeetergoWebhook{}
	g.Expect(cached.Get(context.Background(), client.ObjectKeyFromObject(w), hook)).To(Succeed())
	body, err := fake.Payload("booking_created", fake.PayloadOptions{AppointmentID: "a0000000-0000-4000-8000-0000000abc01"})
	g.Expect(err).NotTo(HaveOccurred())

	// As a build that cannot read it would keep it; the client hangs up.
	_, err = rcv.intake.keep(hungUp(), hook, payload.Event{}, body, reasonUnparseable)
	g.Expect(err).To(MatchError(context.Canceled))
	g.Eventually(func() int { return storedBodies(t, rcv.store, w) }).Should(Equal(1), "the write committed anyway")
	// meetergo sends it again.
	dup, err := rcv.intake.keep(context.Background(), hook, payload.Event{}, body, reasonUnparseable)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dup).To(BeTrue(), "answered duplicate")

	annotate(t, w, webhooksv1alpha1.ReplayDeadLettersAnnotation, "2030-01-01T00:00:00Z")
	g.Eventually(func() int { return len(tg.accepted()) }, 5*time.Second).Should(Equal(1),
		"the replay should deliver the kept body: it is on disk and acknowledged as a duplicate")
}

// TestAnAcceptedEventWhoseSenderHungUpIsStillForwarded: the same on the
// accept path: the event and its pending delivery commit after the client
// hung up; the forwarder is told all the same, meetergo's retry is
// answered "duplicate", and the target gets the event (it used to wait
// for the replica's next restart).
func TestAnAcceptedEventWhoseSenderHungUpIsStillForwarded(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/in")},
	})
	hook := &webhooksv1alpha1.MeetergoWebhook{}
	g.Expect(cached.Get(context.Background(), client.ObjectKeyFromObject(w), hook)).To(Succeed())
	body, err := fake.Payload("booking_created", fake.PayloadOptions{AppointmentID: "a0000000-0000-4000-8000-0000000abc02"})
	g.Expect(err).NotTo(HaveOccurred())
	ev, err := payload.Parse(body)
	g.Expect(err).NotTo(HaveOccurred())

	_, err = rcv.intake.accept(hungUp(), hook, ev, body)
	g.Expect(err).To(MatchError(context.Canceled))
	dup, err := rcv.intake.accept(context.Background(), hook, ev, body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dup).To(BeTrue(), "meetergo's retry is answered duplicate")
	g.Eventually(func() int { return len(tg.accepted()) }, 5*time.Second).Should(Equal(1),
		"the event is on disk with a pending delivery: the forwarder must deliver it")
}
