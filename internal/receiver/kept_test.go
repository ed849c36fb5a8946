package receiver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// postText sends body to url and returns the status and the answer.
func postText(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := noKeepAlive.Post(url, "application/json", strings.NewReader(string(body)))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// keptLetters counts the kept events of w held as dead letters in st.
func keptLetters(t *testing.T, st *store.Store, w *webhooksv1alpha1.MeetergoWebhook) int {
	t.Helper()
	n := 0
	NewWithT(t).Expect(st.Load(func(ev store.Event, d store.Delivery) {
		if ev.UID == string(w.UID) && d.Target == forward.KeptTarget && d.Dead() {
			n++
		}
	})).To(Succeed())
	return n
}

// eventsWithReason returns the Events about w with reason.
func eventsWithReason(t *testing.T, w *webhooksv1alpha1.MeetergoWebhook, reason string) []eventsv1.Event {
	var out []eventsv1.Event
	for _, e := range kubeEvents(t, w) {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// TestUnreadableBodiesWithAValidTokenAreKeptAnswered200AndShown: with a
// valid token, a body that is not JSON, a JSON body cut in half, and an
// event of a type the operator does not know are each answered 200
// {"status":"kept"} (meetergo may disable a webhook that answers errors),
// counted in the metric, shown as a Warning Event that names nothing of
// the body, counted in status.delivery and kept as a dead letter; sent
// again, a duplicate. Without a valid token the same body still gets 404.
// A replay reads them again: none is an event the resource subscribes to,
// so they stay dead letters, and the replay's Event says so.
func TestUnreadableBodiesWithAValidTokenAreKeptAnswered200AndShown(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
	})
	url := endpointOf(w, 0)
	keptNone := testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeKept))
	keptUnknown := testutil.ToFloat64(eventsTotal.WithLabelValues("unknown", outcomeKept))
	notFound := testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeNotFound))

	// Bodies full of what must never be shown: the fake cast's personal
	// data, an appointment secret, an appointment id and a marker.
	const appt = "a0000000-0000-4000-8000-00000000c0de"
	marker := fmt.Sprintf("Zebulon%dQuux", time.Now().UnixNano())
	secret := fake.AppointmentSecret(appt)
	garbage := []byte(strings.Join(fake.PersonalData(), " ") + " secret=" + secret + " appointment=" + appt + " " + marker)
	full, err := fake.Payload("booking_created", fake.PayloadOptions{AppointmentID: appt})
	g.Expect(err).NotTo(HaveOccurred())
	half := full[:len(full)/2]
	unknownType := []byte(`{"webhookType":"booking_exploded_` + marker + `","id":"` + appt + `","secret":"` + secret +
		`","attendees":[{"email":"` + fake.PersonalData()[0] + `"}]}`)
	for _, b := range [][]byte{garbage, half, unknownType} {
		code, text := postText(t, url, b)
		g.Expect(code).To(Equal(http.StatusOK), "%.40q", b)
		g.Expect(text).To(Equal(`{"status":"kept"}`))
	}
	code, text := postText(t, url, garbage)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(text).To(Equal(`{"status":"duplicate"}`), "the same body again is a duplicate")
	for _, bad := range []string{baseURL + "/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", baseURL + "/hooks/" + otherToken(w)} {
		code, _ := postText(t, bad, garbage)
		g.Expect(code).To(Equal(http.StatusNotFound), "without a valid token")
	}

	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeKept)) - keptNone).To(BeEquivalentTo(2))
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("unknown", outcomeKept)) - keptUnknown).To(BeEquivalentTo(1))
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeNotFound)) - notFound).To(BeEquivalentTo(2))

	// Shown: Warning Events, the two unreadable ones aggregated into one
	// series (the second written when the interval ends).
	g.Eventually(func() int32 {
		var n int32
		for _, e := range eventsWithReason(t, w, "UnparseableEvent") {
			n += max(1, seriesCount(e))
		}
		return n
	}).Should(BeEquivalentTo(2))
	g.Eventually(func() []eventsv1.Event { return eventsWithReason(t, w, "UnknownEventType") }).ShouldNot(BeEmpty())
	for _, reason := range []string{"UnparseableEvent", "UnknownEventType"} {
		for _, e := range eventsWithReason(t, w, reason) {
			g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
			g.Expect(e.Note).To(ContainSubstring(webhooksv1alpha1.ReplayDeadLettersAnnotation))
			g.Expect(e.Note).To(MatchRegexp(keptNoteRE(reason)))
			expectNothingOf(t, reason+" note", e.Note, secret, appt, marker, "booking_exploded")
		}
	}
	g.Eventually(delivery(w)).Should(And(
		HaveField("Received", BeEquivalentTo(3)),
		HaveField("DeadLettered", BeEquivalentTo(3)),
		HaveField("Forwarded", BeEquivalentTo(0)),
		HaveField("LastError", MatchRegexp(`^event msg_\S+ kept unread: `)),
	))
	expectNothingOf(t, "status.delivery.lastError", delivery(w)().LastError, secret, appt, marker, "booking_exploded")
	g.Expect(keptLetters(t, rcv.store, w)).To(Equal(3), "each is a dead letter")
	g.Consistently(func() int { return len(tg.got()) }).Should(BeZero(), "nothing unread is forwarded")

	// A replay with this build: still nothing it can read.
	annotate(t, w, webhooksv1alpha1.ReplayDeadLettersAnnotation, "2030-01-01T00:00:00Z")
	g.Eventually(func() string { return noteOf(t, w, "DeadLettersReplayed") }).Should(
		Equal("sending 0 dead letter(s) again; 3 kept event(s) still cannot be read as an event type this resource subscribes to and stay dead letters"))
	g.Expect(eventsWithReason(t, w, "DeadLettersReplayed")[0].Type).To(Equal(corev1.EventTypeWarning))
	g.Consistently(func() int { return len(tg.got()) }).Should(BeZero())
	g.Expect(keptLetters(t, rcv.store, w)).To(Equal(3), "they stay dead letters")
	g.Expect(logs.String()).NotTo(ContainSubstring(marker), "nothing of a kept body is logged")
}

// seriesCount is an Event's series count (0 without a series).
func seriesCount(e eventsv1.Event) int32 {
	if e.Series == nil {
		return 0
	}
	return e.Series.Count
}

// expectNothingOf fails if what holds personal data, an appointment
// secret, or any of the strings given.
func expectNothingOf(t *testing.T, where, what string, strs ...string) {
	t.Helper()
	expectNoPersonalData(t, where, what)
	for _, s := range strs {
		if strings.Contains(what, s) {
			t.Errorf("%s %q holds %q from a body", where, what, s)
		}
	}
}

// keptNoteRE matches the notes of kept events of reason: the fixed text,
// a derived webhook id, and the aggregation's suffix. Nothing else can be
// in them.
func keptNoteRE(reason string) string {
	const id = "MSGID"
	return "^" + strings.Replace(regexp.QuoteMeta(keptNote(reason, id)), id, `msg_[A-Za-z0-9_-]{24}`, 1) +
		`( \(and \d+ more since \S+\))?$`
}

// TestAKeptBodyOfASubscribedTypeIsDeliveredOnReplay: a body kept unread
// (simulated: a booking kept as an older build would have, one that could
// not read it) is delivered byte for byte to the resource's target at
// the next replay, recorded as the event it is, and its dead letter goes.
func TestAKeptBodyOfASubscribedTypeIsDeliveredOnReplay(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/in")},
	})
	const appt = "a0000000-0000-4000-8000-00000000beef"
	body, err := fake.Payload("booking_created", fake.PayloadOptions{AppointmentID: appt})
	g.Expect(err).NotTo(HaveOccurred())
	hook := &webhooksv1alpha1.MeetergoWebhook{}
	g.Expect(cached.Get(context.Background(), client.ObjectKeyFromObject(w), hook)).To(Succeed())
	dup, err := rcv.intake.keep(context.Background(), hook, payload.Event{}, body, reasonUnparseable)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dup).To(BeFalse())
	g.Eventually(func() []eventsv1.Event { return eventsWithReason(t, w, "UnparseableEvent") }).Should(HaveLen(1))
	g.Expect(keptLetters(t, rcv.store, w)).To(Equal(1))
	g.Consistently(func() int { return len(tg.got()) }).Should(BeZero())

	annotate(t, w, webhooksv1alpha1.ReplayDeadLettersAnnotation, "2030-01-01T00:00:00Z")
	g.Eventually(tg.accepted).Should(Equal([][]byte{body}))
	got := tg.got()[0]
	g.Expect(got.path).To(Equal("/in"))
	g.Expect(got.header.Get(forward.HeaderEvent)).To(Equal("booking_created"))
	g.Expect(got.header.Get("webhook-id")).To(HavePrefix("msg_"))
	g.Eventually(func() string { return noteOf(t, w, "DeadLettersReplayed") }).Should(
		Equal("sending 1 dead letter(s) again; 1 kept event(s) could be read now and are delivered as any event"))
	g.Eventually(func() string { return noteOf(t, w, "BookingCreated") }).Should(HavePrefix("booking_created: appointment " + appt))
	g.Eventually(delivery(w)).Should(And(
		HaveField("Received", BeEquivalentTo(1)),
		HaveField("Forwarded", BeEquivalentTo(1)),
		HaveField("DeadLettered", BeEquivalentTo(1)),
	))
	g.Eventually(func() int { return keptLetters(t, rcv.store, w) }).Should(BeZero())
	g.Consistently(func() int { return len(tg.got()) }).Should(Equal(1))
}

// TestAppointmentIDIdentifiesEvents: payloads that name their appointment
// as appointmentId (no id), flat and in the older {"event", "data"}
// shape, are accepted and forwarded, show the appointment in the Event,
// and the same appointment version sent twice (members in another order)
// is recognised as a duplicate.
func TestAppointmentIDIdentifiesEvents(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	tg := newTarget(t, always(200))
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_cancelled"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
	})
	url := endpointOf(w, 0)
	dups := testutil.ToFloat64(eventsTotal.WithLabelValues("booking_cancelled", outcomeDuplicate))
	const a1, a2 = "a0000000-0000-4000-8000-0000000000a1", "a0000000-0000-4000-8000-0000000000a2"
	flat := []byte(`{"webhookType":"booking_cancelled","appointmentId":"` + a1 + `","updatedAt":"2030-01-01T10:00:00Z","isCancelled":true}`)
	flatAgain := []byte(`{"isCancelled":true,"updatedAt":"2030-01-01T10:00:00Z","appointmentId":"` + a1 + `","webhookType":"booking_cancelled"}`)
	legacy := []byte(`{"event":"booking_cancelled","data":{"appointmentId":"` + a2 + `","updatedAt":"2030-01-01T11:00:00Z"}}`)
	legacyAgain := []byte(`{"data":{"updatedAt":"2030-01-01T11:00:00Z","appointmentId":"` + a2 + `","location":null},"event":"booking_cancelled"}`)
	for _, c := range []struct {
		body []byte
		want string
	}{{flat, "accepted"}, {flatAgain, "duplicate"}, {legacy, "accepted"}, {legacyAgain, "duplicate"}} {
		code, text := postText(t, url, c.body)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(text).To(Equal(`{"status":"`+c.want+`"}`), "%s", c.body)
	}
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("booking_cancelled", outcomeDuplicate)) - dups).To(BeEquivalentTo(2))
	g.Eventually(tg.accepted).Should(ConsistOf(flat, legacy))
	g.Eventually(delivery(w)).Should(HaveField("Received", BeEquivalentTo(2)))
	g.Eventually(func() []string {
		var notes []string
		for _, e := range kubeEvents(t, w) {
			if e.Reason == "BookingCancelled" {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}).Should(ContainElement(ContainSubstring("appointment " + a2)))
	g.Consistently(func() int { return len(tg.got()) }).Should(Equal(2))
}
