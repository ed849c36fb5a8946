package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/record"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// TestUnreadableBodiesFromOneTokenCannotFillTheStoreForOthers: whoever
// holds one resource's URL (meetergo, or anyone it leaked to) posts
// distinct bodies that are not JSON. Each is answered 200, but only up to
// the per-resource bound of kept events (KeptMaxEvents, KeptMaxBytes) is
// kept for DeadLetterRetention; the rest are dropped. (Without the bound,
// since 92cd829, every one was kept, the store's bound was reached, and
// every other resource's real events were answered 503 for a week.)
func TestUnreadableBodiesFromOneTokenCannotFillTheStoreForOthers(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	mk := func(name string) *webhooksv1alpha1.MeetergoWebhook {
		w := &webhooksv1alpha1.MeetergoWebhook{Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
			Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
		}}
		w.Namespace, w.Name, w.UID = "ns", name, types.UID("uid-"+name)
		return w
	}
	hooks := map[string]*webhooksv1alpha1.MeetergoWebhook{"leaked": mk("leaked"), "other": mk("other")}
	in := &intake{
		log: logr.Discard(), store: st, forwarder: forward.New(forward.Config{Store: st}),
		recorder: record.New(nil, record.Options{}), status: newStatusFlusher(nil, nil, time.Hour, logr.Discard()),
		dedupWindow: time.Hour, now: time.Now,
	}
	h := &handler{
		lookup: func(_ context.Context, tok string) (*webhooksv1alpha1.MeetergoWebhook, error) { return hooks[tok], nil },
		intake: in, maxBody: DefaultMaxBodyBytes, bodyTimeout: 10 * time.Second, log: logr.Discard(),
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	post := func(tok, body string) (int, string) {
		resp, err := http.Post(srv.URL+"/hooks/"+tok, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	kept, dropped := 0, 0
	for _, size := range []int{4 << 10, 1 << 10} {
		filler := strings.Repeat("x", size)
		refused, droppedHere := 0, 0
		// Until the store refuses (it must not), or well past the bound.
		for i := 0; refused < 2 && droppedHere < 50 && i < 5000; i++ {
			code, text := post("leaked", fmt.Sprintf("garbage %d %d %s", size, i, filler))
			switch {
			case code == http.StatusOK && text == `{"status":"kept"}`:
				kept, refused = kept+1, 0
			case code == http.StatusOK && text == `{"status":"dropped"}`:
				dropped, droppedHere, refused = dropped+1, droppedHere+1, 0
			case code == http.StatusOK:
				t.Fatalf("unexpected answer %s", text)
			default:
				refused++
				checkpointed(t, st) // what waits for the database file is in it now
			}
		}
	}
	t.Logf("%d garbage bodies kept for the leaked resource, %d dropped", kept, dropped)
	if kept > DefaultKeptMaxEvents || dropped == 0 {
		t.Errorf("kept %d (bound %d) and dropped %d unreadable bodies of one resource", kept, DefaultKeptMaxEvents, dropped)
	}
	real, err := fake.Payload("booking_created", fake.PayloadOptions{AppointmentID: "a0000000-0000-4000-8000-0000000abc03"})
	if err != nil {
		t.Fatal(err)
	}
	checkpointed(t, st)
	code, text := post("other", string(real))
	if code != http.StatusOK {
		checkpointed(t, st)
		code, text = post("other", string(real)) // meetergo's retry
	}
	if code != http.StatusOK {
		t.Fatalf("another resource's real event answered %d %s after one token holder sent %d unreadable bodies (%d kept for 7 days)", code, text, kept+dropped, kept)
	}
}

// checkpointed waits until every write so far is in the database file
// (Load starts with that barrier).
func checkpointed(t *testing.T, st *store.Store) {
	if err := st.Load(func(store.Event, store.Delivery) {}); err != nil {
		t.Fatal(err)
	}
}

// TestKeptEventsAreBoundedPerResourceByCountAndBytes: a resource keeps at
// most KeptMaxEvents unread bodies and KeptMaxBytes of them, concurrent
// requests included; beyond, a body is answered 200 {"status":"dropped"},
// counted (outcome kept_dropped) and not stored. Another resource is not
// affected, and once kept events are gone there is room again.
func TestKeptEventsAreBoundedPerResourceByCountAndBytes(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxEvents int
		maxBytes  int64
		bodySize  int
	}{
		{"by count", 5, 1 << 20, 100},
		{"by bytes", 1000, 5 * 1000, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			fw := forward.New(forward.Config{Store: st})
			if err := fw.Load(); err != nil { // an empty store; Sync waits for it
				t.Fatal(err)
			}
			in := &intake{
				log: logr.Discard(), store: st, forwarder: fw,
				recorder: record.New(nil, record.Options{}), status: newStatusFlusher(nil, nil, time.Hour, logr.Discard()),
				dedupWindow: time.Hour, now: time.Now, keptMaxEvents: c.maxEvents, keptMaxBytes: c.maxBytes,
			}
			mk := func(name string) *webhooksv1alpha1.MeetergoWebhook {
				w := &webhooksv1alpha1.MeetergoWebhook{}
				w.Namespace, w.Name, w.UID = "ns", name, types.UID("uid-"+name)
				return w
			}
			a, b := mk("a"), mk("b")
			dropped := testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeKeptDropped))
			body := func(i int) []byte {
				p := fmt.Appendf(nil, "garbage %d ", i)
				return append(p, strings.Repeat("x", c.bodySize-len(p))...)
			}
			// 20 at once: no more than 5 are kept.
			results := make(chan error, 20)
			for i := range 20 {
				go func() {
					_, err := in.keep(context.Background(), a, payload.Event{}, body(i), reasonUnparseable)
					results <- err
				}()
			}
			keptN, droppedN := 0, 0
			for range 20 {
				switch err := <-results; {
				case err == nil:
					keptN++
				case errors.Is(err, errKeptFull):
					droppedN++
				default:
					t.Fatal(err)
				}
			}
			if keptN != 5 || droppedN != 15 {
				t.Fatalf("kept %d, dropped %d; want 5 and 15", keptN, droppedN)
			}
			if n := keptLetters(t, st, a); n != 5 {
				t.Errorf("%d kept events stored; want 5", n)
			}
			// The handler answers 200 "dropped" and counts it.
			h := &handler{
				lookup: func(context.Context, string) (*webhooksv1alpha1.MeetergoWebhook, error) { return a, nil },
				intake: in, maxBody: DefaultMaxBodyBytes, bodyTimeout: 10 * time.Second, log: logr.Discard(),
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/tok", strings.NewReader(string(body(99)))))
			if rec.Code != http.StatusOK || rec.Body.String() != `{"status":"dropped"}` {
				t.Errorf("answered %d %s; want 200 dropped", rec.Code, rec.Body)
			}
			if got := testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeKeptDropped)) - dropped; got != 1 {
				t.Errorf("kept_dropped counted %v; want 1", got)
			}
			// Another resource keeps its own.
			if _, err := in.keep(context.Background(), b, payload.Event{}, body(0), reasonUnparseable); err != nil {
				t.Errorf("another resource's unreadable body: %v", err)
			}
			// Once a's kept events are gone (here: a was deleted), there
			// is room again.
			if err := fw.Sync(context.Background(), types.NamespacedName{Namespace: "ns", Name: "a"}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := in.keep(context.Background(), a, payload.Event{}, body(100), reasonUnparseable); err != nil {
				t.Errorf("after a's kept events were dropped: %v", err)
			}
		})
	}
}

// TestDroppedUnreadableBodiesAreShownInAWarningEvent: beyond the bound, a
// resource's Warning Event UnreadableEventsDropped says bodies are being
// dropped, naming nothing of them; the Events are aggregated per interval.
func TestDroppedUnreadableBodiesAreShownInAWarningEvent(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
	})
	url := endpointOf(w, 0)
	marker := fmt.Sprintf("Zebulon%dQuux", time.Now().UnixNano())
	for i := range DefaultKeptMaxEvents {
		code, text := postText(t, url, fmt.Appendf(nil, "garbage %d %s", i, marker))
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(text).To(Equal(`{"status":"kept"}`))
	}
	for i := range 3 {
		code, text := postText(t, url, fmt.Appendf(nil, "more garbage %d %s", i, marker))
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(text).To(Equal(`{"status":"dropped"}`))
	}
	g.Expect(keptLetters(t, rcv.store, w)).To(Equal(DefaultKeptMaxEvents))
	g.Eventually(func() []eventsv1.Event { return eventsWithReason(t, w, reasonKeptDropped) }).ShouldNot(BeEmpty())
	for _, e := range eventsWithReason(t, w, reasonKeptDropped) {
		g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
		g.Expect(e.Note).To(ContainSubstring("dropped"))
		g.Expect(e.Note).NotTo(ContainSubstring(marker))
		g.Expect(e.Note).NotTo(ContainSubstring("garbage"))
	}
}
