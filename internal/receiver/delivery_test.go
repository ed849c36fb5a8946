package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// verifySignature checks a Standard Webhooks signature as a target's
// library would (written here without the package's own code):
// HMAC-SHA256 under the base64-decoded secret of "id.timestamp.body",
// compared with each "v1,<base64>" of the header.
func verifySignature(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp: %w", err)
	}
	if d := time.Since(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %d is %s off", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if b64, ok := strings.CutPrefix(sig, "v1,"); ok {
			if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return fmt.Errorf("no valid signature in %q", h.Get("webhook-signature"))
}

// expectNoPersonalData fails if any of the fake cast's personal data or an
// appointment secret occurs in what.
func expectNoPersonalData(t *testing.T, where, what string) {
	t.Helper()
	lower := strings.ToLower(what)
	for _, pii := range fake.PersonalData() {
		if strings.Contains(lower, strings.ToLower(pii)) {
			t.Errorf("%s contains personal data %q", where, pii)
		}
	}
}

func TestEveryEventTypeReachesItsTargets(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	crm, bookings := newTarget(t, always(200)), newTarget(t, always(204))
	service(t, ns, "crm", crm)
	service(t, ns, "bookings", bookings)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(rand.Text()))
	g.Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signing"},
		StringData: map[string]string{"secret": secret}})).To(Succeed())
	w := webhook(t, ns, "crm-sync", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: allTypes,
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/meetergo"), toTarget("bookings", "/b?x=1", "booking_created")},
		Delivery:   webhooksv1alpha1.DeliverySpec{SigningSecretRef: &webhooksv1alpha1.SecretKeyReference{Name: "signing", Key: "secret"}},
	})
	srv := meetergo(t, endpointOf(w, 0), allTypes...)

	sent := map[string][]byte{} // body -> type
	for _, typ := range fake.AcceptedEventTypes {
		sent[string(deliver(t, srv, typ, fake.DeliverOptions{})[0].Body)] = []byte(typ)
	}
	legacy := deliver(t, srv, "booking_cancelled", fake.DeliverOptions{PayloadOptions: fake.PayloadOptions{LegacyShape: true}})[0].Body
	sent[string(legacy)] = []byte("booking_cancelled")

	g.Eventually(func() int { return len(crm.accepted()) }).Should(Equal(len(sent)))
	g.Eventually(func() int { return len(bookings.accepted()) }).Should(Equal(1))
	g.Consistently(func() int { return len(bookings.got()) }).Should(Equal(1), "bookings takes booking_created only")

	ids := map[string]bool{}
	check := func(r received, path string) {
		typ, ok := sent[string(r.body)]
		g.Expect(ok).To(BeTrue(), "a target got a body that was not sent byte for byte: %.80s", r.body)
		g.Expect(r.path).To(Equal(path))
		g.Expect(r.header.Get("Content-Type")).To(Equal("application/json"))
		g.Expect(r.header.Get("User-Agent")).To(HavePrefix("meetergo-operator/"))
		g.Expect(r.header.Get("X-Meetergo-Event")).To(Equal(string(typ)))
		g.Expect(r.header.Get("X-Meetergo-Webhook")).To(Equal(ns + "/crm-sync"))
		g.Expect(r.header.Get("webhook-id")).To(HavePrefix("msg_"))
		g.Expect(verifySignature(secret, r.header, r.body)).To(Succeed())
		ids[r.header.Get("webhook-id")+path] = true
	}
	for _, r := range crm.got() {
		check(r, "/meetergo")
	}
	created := bookings.got()[0]
	check(created, "/b?x=1")
	g.Expect(sent[string(created.body)]).To(BeEquivalentTo("booking_created"))
	g.Expect(ids).To(HaveLen(len(sent)+1), "each event has its own webhook-id")

	// One Kubernetes Event per type (each its own reason), with the ids
	// and no personal data.
	reasons := map[string]bool{}
	for _, typ := range fake.AcceptedEventTypes {
		reasons[payload.Reason(typ)] = true
	}
	g.Eventually(func() map[string]bool {
		seen := map[string]bool{}
		for _, e := range kubeEvents(t, w) {
			if e.Type == corev1.EventTypeNormal && e.Action == "Received" {
				seen[e.Reason] = true
			}
		}
		return seen
	}).Should(Equal(reasons))
	for body := range sent {
		ev, err := payload.Parse([]byte(body))
		g.Expect(err).NotTo(HaveOccurred())
		if ev.Type == "booking_created" {
			g.Expect(noteOf(t, w, "BookingCreated")).To(ContainSubstring(ev.ID))
			g.Expect(noteOf(t, w, "BookingCreated")).To(ContainSubstring("start " + ev.Start))
		}
	}

	g.Eventually(delivery(w)).Should(And(
		HaveField("Received", BeEquivalentTo(len(sent))),
		HaveField("Forwarded", BeEquivalentTo(len(sent)+1)),
		HaveField("LastEventTime", Not(BeNil())),
	))

	// Nothing personal anywhere the operator writes.
	for _, e := range kubeEvents(t, w) {
		raw, _ := json.Marshal(e)
		expectNoPersonalData(t, "Event "+e.Name, string(raw))
	}
	cur := &webhooksv1alpha1.MeetergoWebhook{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(w), cur)).To(Succeed())
	rawStatus, _ := json.Marshal(cur.Status)
	expectNoPersonalData(t, "status", string(rawStatus))
	expectNoPersonalData(t, "the receiver's log", logs.String())
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, mf := range families {
		expectNoPersonalData(t, "metric "+mf.GetName(), mf.String())
	}
}

// noteOf returns the note of w's Event with reason.
func noteOf(t *testing.T, w *webhooksv1alpha1.MeetergoWebhook, reason string) string {
	for _, e := range kubeEvents(t, w) {
		if e.Reason == reason {
			return e.Note
		}
	}
	return ""
}

func TestARecoveringTargetGetsTheEventOnce(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	flaky := newTarget(t, func(n int) int {
		if n < 5 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	service(t, ns, "flaky", flaky)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("flaky", "/")},
	})
	srv := meetergo(t, endpointOf(w, 0), "booking_created")
	body := deliver(t, srv, "booking_created", fake.DeliverOptions{})[0].Body

	g.Eventually(flaky.accepted).Should(Equal([][]byte{body}))
	got := flaky.got()
	g.Expect(got).To(HaveLen(6), "five failures, then the delivery")
	for _, r := range got {
		g.Expect(r.header.Get("webhook-id")).To(Equal(got[0].header.Get("webhook-id")), "the id is stable across retries")
	}
	g.Eventually(delivery(w)).Should(And(
		HaveField("Received", BeEquivalentTo(1)),
		HaveField("Forwarded", BeEquivalentTo(1)),
		HaveField("Failed", BeEquivalentTo(5)),
		HaveField("DeadLettered", BeEquivalentTo(0)),
		HaveField("LastError", Equal("target flaky:http/: HTTP 503")),
	))
	g.Consistently(func() int { return len(flaky.got()) }).Should(Equal(6))
}

func TestDeadLettersAreReplayedOnRequest(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	strict := newTarget(t, always(http.StatusBadRequest))
	service(t, ns, "strict", strict)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"form_submission"},
		Targets:    []webhooksv1alpha1.Target{toTarget("strict", "/forms")},
	})
	srv := meetergo(t, endpointOf(w, 0), "form_submission")
	body := deliver(t, srv, "form_submission", fake.DeliverOptions{})[0].Body

	g.Eventually(func() string {
		for _, e := range kubeEvents(t, w) {
			if e.Type == corev1.EventTypeWarning && e.Reason == "DeliveryFailed" {
				return e.Note
			}
		}
		return ""
	}).Should(And(ContainSubstring("target strict:http/forms: HTTP 400 after 1 attempt"), ContainSubstring(webhooksv1alpha1.ReplayDeadLettersAnnotation)))
	g.Eventually(delivery(w)).Should(HaveField("DeadLettered", BeEquivalentTo(1)))
	g.Consistently(func() int { return len(strict.got()) }).Should(Equal(1), "a 400 is not retried")

	strict.setAnswer(always(http.StatusAccepted))
	annotate(t, w, webhooksv1alpha1.ReplayDeadLettersAnnotation, "2030-01-01T00:00:00Z")
	g.Eventually(strict.accepted).Should(Equal([][]byte{body}))
	g.Eventually(delivery(w)).Should(HaveField("Forwarded", BeEquivalentTo(1)))
	g.Eventually(func() string { return noteOf(t, w, "DeadLettersReplayed") }).Should(Equal("sending 1 dead letter(s) again"))

	// The same value again does nothing; the dead letter is gone anyway.
	annotate(t, w, "unrelated", "x")
	g.Consistently(func() int { return len(strict.got()) }).Should(Equal(2))
}

// annotate sets an annotation on w.
func annotate(t *testing.T, w *webhooksv1alpha1.MeetergoWebhook, key, value string) {
	t.Helper()
	cur := &webhooksv1alpha1.MeetergoWebhook{}
	g := NewWithT(t)
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(w), cur)).To(Succeed())
	patch := client.MergeFrom(cur.DeepCopy())
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[key] = value
	g.Expect(k8s.Patch(context.Background(), cur, patch)).To(Succeed())
}

func TestDuplicatesAreForwardedOnce(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_rescheduled"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
	})
	srv := meetergo(t, endpointOf(w, 0), "booking_rescheduled")
	dups := testutil.ToFloat64(eventsTotal.WithLabelValues("booking_rescheduled", outcomeDuplicate))

	res := deliver(t, srv, "booking_rescheduled", fake.DeliverOptions{Twice: true})
	g.Expect(res).To(HaveLen(2), "meetergo sent it twice, both acknowledged")
	g.Eventually(tg.accepted).Should(Equal([][]byte{res[0].Body}))
	g.Consistently(func() int { return len(tg.got()) }).Should(Equal(1))
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("booking_rescheduled", outcomeDuplicate))).To(Equal(dups + 1))
	g.Eventually(delivery(w)).Should(HaveField("Received", BeEquivalentTo(1)))
}

func TestSuspendedResourcesKeepEventsUntilResumed(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"new_employee"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
		Suspend:    true,
	})
	srv := meetergo(t, endpointOf(w, 0), "new_employee")
	body := deliver(t, srv, "new_employee", fake.DeliverOptions{})[0].Body
	g.Consistently(func() int { return len(tg.got()) }).Should(BeZero(), "nothing is forwarded while suspended")

	cur := &webhooksv1alpha1.MeetergoWebhook{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(w), cur)).To(Succeed())
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Suspend = false
	g.Expect(k8s.Patch(context.Background(), cur, patch)).To(Succeed())
	g.Eventually(tg.accepted).Should(Equal([][]byte{body}))
}

func TestDeletingAResourceDropsItsDeliveries(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	down := newTarget(t, always(http.StatusBadGateway))
	service(t, ns, "down", down)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("down", "/")},
		Delivery:   webhooksv1alpha1.DeliverySpec{MaxAttempts: 50},
	})
	srv := meetergo(t, endpointOf(w, 0), "booking_created")
	deliver(t, srv, "booking_created", fake.DeliverOptions{})
	g.Eventually(func() int { return len(down.got()) }).Should(BeNumerically(">=", 2))
	g.Expect(deliveriesOf(t, w)).To(Equal(1))

	g.Expect(k8s.Delete(context.Background(), w)).To(Succeed())
	g.Eventually(func() int { return deliveriesOf(t, w) }).Should(BeZero())
	n := len(down.got())
	g.Consistently(func() int { return len(down.got()) }).Should(BeNumerically("<=", n+1), "at most an attempt under way finishes")
}

// deliveriesOf counts the deliveries (pending or dead) the shared receiver
// holds for w.
func deliveriesOf(t *testing.T, w *webhooksv1alpha1.MeetergoWebhook) int {
	n := 0
	NewWithT(t).Expect(rcv.store.Load(func(ev store.Event, _ store.Delivery) {
		if ev.UID == string(w.UID) {
			n++
		}
	})).To(Succeed())
	return n
}

func TestEventsOfABurstAreAggregated(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}})
	srv := meetergo(t, endpointOf(w, 0), "booking_created")
	const burst = 30
	for range burst {
		deliver(t, srv, "booking_created", fake.DeliverOptions{})
	}
	// The first is written at once, the rest as one Event per interval;
	// together they count every occurrence.
	g.Eventually(func() int {
		total := 0
		for _, e := range kubeEvents(t, w) {
			if e.Series != nil {
				total += int(e.Series.Count)
			} else {
				total++
			}
		}
		return total
	}).Should(Equal(burst))
	evs := kubeEvents(t, w)
	g.Expect(len(evs)).To(BeNumerically("<", burst/2), "a burst must not become one Event per occurrence")
	g.Expect(slices.ContainsFunc(evs, func(e eventsv1.Event) bool { return strings.Contains(e.Note, "more since") })).To(BeTrue())
	g.Eventually(delivery(w)).Should(HaveField("Received", BeEquivalentTo(burst)))
}
