package receiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// TestAnswers sends every kind of request to the shared receiver and checks
// the status code of each.
func TestAnswers(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	spec := webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created", "booking_cancelled"}}
	w := webhook(t, ns, "hook", spec)
	// rotated an hour ago (within the grace period), and two days ago
	// (beyond it).
	recent := webhook(t, ns, "recent", spec)
	setStatus(t, recent, func(s *webhooksv1alpha1.MeetergoWebhookStatus) {
		s.TokenGeneration, s.TokenRotatedAt = 2, &metav1.Time{Time: time.Now().Add(-testGrace / 2)}
	})
	old := webhook(t, ns, "old", spec)
	setStatus(t, old, func(s *webhooksv1alpha1.MeetergoWebhookStatus) {
		s.TokenGeneration, s.TokenRotatedAt = 1, &metav1.Time{Time: time.Now().Add(-2 * testGrace)}
	})

	booking := func(opts fake.PayloadOptions) []byte {
		b, err := fake.Payload("booking_created", opts)
		g.Expect(err).NotTo(HaveOccurred())
		return b
	}
	ok := endpointOf(w, 0)
	cases := []struct {
		name   string
		method string
		url    string
		body   []byte
		chunk  bool // send without Content-Length
		want   int
	}{
		{"an event", "POST", ok, booking(fake.PayloadOptions{}), false, 200},
		{"the older shape", "POST", ok, booking(fake.PayloadOptions{LegacyShape: true}), false, 200},
		{"a 100 KB event", "POST", ok, booking(fake.PayloadOptions{PadBytes: 100_000}), false, 200},
		{"an unsubscribed type: acknowledged, dropped", "POST", ok, []byte(`{"webhookType":"new_employee","id":"x"}`), false, 200},
		{"an unknown type: acknowledged, kept", "POST", ok, []byte(`{"webhookType":"booking_exploded"}`), false, 200},
		{"unknown token", "POST", baseURL + "/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", booking(fake.PayloadOptions{}), false, 404},
		{"a token of another key", "POST", baseURL + "/hooks/" + otherToken(w), booking(fake.PayloadOptions{}), false, 404},
		{"no token", "POST", baseURL + "/hooks/", booking(fake.PayloadOptions{}), false, 404},
		{"token and more path", "POST", ok + "/more", booking(fake.PayloadOptions{}), false, 404},
		{"another path", "POST", baseURL + "/", booking(fake.PayloadOptions{}), false, 404},
		{"the previous token within the grace period", "POST", endpointOf(recent, 1), booking(fake.PayloadOptions{}), false, 200},
		{"the current token after a rotation", "POST", endpointOf(recent, 2), booking(fake.PayloadOptions{}), false, 200},
		{"a token two generations old", "POST", endpointOf(recent, 0), booking(fake.PayloadOptions{}), false, 404},
		{"the previous token after the grace period", "POST", endpointOf(old, 0), booking(fake.PayloadOptions{}), false, 404},
		{"GET", "GET", ok, nil, false, 405},
		{"PUT", "PUT", ok, booking(fake.PayloadOptions{}), false, 405},
		{"over 1 MiB", "POST", ok, booking(fake.PayloadOptions{PadBytes: 1<<20 + 1}), false, 413},
		{"over 1 MiB, chunked", "POST", ok, booking(fake.PayloadOptions{PadBytes: 1<<20 + 1}), true, 413},
		// With a valid token, what cannot be read is kept, not refused
		// (these were 400 until meetergo's possible disabling of a webhook
		// that answers errors was taken into account).
		{"not JSON: acknowledged, kept", "POST", ok, []byte("webhookType=booking_created"), false, 200},
		{"empty: acknowledged, kept", "POST", ok, nil, false, 200},
		{"a JSON array: acknowledged, kept", "POST", ok, []byte(`[{"webhookType":"booking_created"}]`), false, 200},
		{"no event type: acknowledged, kept", "POST", ok, []byte(`{"id":"a1","companyId":"` + fake.SeedCompanyID + `"}`), false, 200},
		{"not JSON, unknown token", "POST", baseURL + "/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []byte("webhookType=booking_created"), false, 404},
		{"not JSON, over 1 MiB", "POST", ok, bytes.Repeat([]byte("x"), 1<<20+1), false, 413},
		{"another company", "POST", ok, booking(fake.PayloadOptions{CompanyID: fake.SeedOtherCompanyID}), false, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(c.body)
			if c.chunk {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest(c.method, c.url, body)
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			resp, err := http.DefaultClient.Do(req)
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			NewWithT(t).Expect(resp.StatusCode).To(Equal(c.want))
			if c.want == 405 {
				NewWithT(t).Expect(resp.Header.Get("Allow")).To(Equal("POST"))
			}
		})
	}
	// Three events were accepted for w and five kept (the unknown type and
	// the four unreadable bodies); one was acknowledged and dropped (the
	// unsubscribed type).
	g.Eventually(delivery(w)).Should(And(HaveField("Received", BeEquivalentTo(8)), HaveField("DeadLettered", BeEquivalentTo(5))))
	g.Eventually(delivery(recent)).Should(HaveField("Received", BeEquivalentTo(2)))
}

// otherToken is w's token under another key: well-formed, but not ours.
func otherToken(w *webhooksv1alpha1.MeetergoWebhook) string {
	d, _ := token.NewDeriver([]byte("another key, also thirty-two bytes"))
	return d.Token(string(w.UID), 0)
}

// unitHandler is a handler with no Kubernetes behind it: every token
// belongs to hook; the store is st.
func unitHandler(t *testing.T, st *store.Store, bodyTimeout time.Duration) *httptest.Server {
	hook := &webhooksv1alpha1.MeetergoWebhook{Spec: webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}}}
	hook.Namespace, hook.Name, hook.UID = "ns", "hook", "uid"
	h := &handler{
		lookup:  func(context.Context, string) (*webhooksv1alpha1.MeetergoWebhook, error) { return hook, nil },
		intake:  &intake{store: st, dedupWindow: time.Hour, now: time.Now},
		maxBody: DefaultMaxBodyBytes, bodyTimeout: bodyTimeout,
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestStoreUnavailableAnswers503(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	srv := unitHandler(t, st, time.Second)
	resp, err := http.Post(srv.URL+"/hooks/t", "application/json", strings.NewReader(`{"webhookType":"booking_created","id":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
}

func TestSlowBodiesAreCutOff(t *testing.T) {
	srv := unitHandler(t, nil, 100*time.Millisecond)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	// Announce 100 bytes, send 10, then nothing.
	_, _ = fmt.Fprintf(conn, "POST /hooks/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"webhookT")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
}
