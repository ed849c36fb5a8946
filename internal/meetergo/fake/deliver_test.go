package fake_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// receiver records what is POSTed to it and answers status.
type receiver struct {
	url    string
	mu     sync.Mutex
	bodies [][]byte
	paths  []string
	header http.Header
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies, rc.paths, rc.header = append(rc.bodies, b), append(rc.paths, r.URL.Path), r.Header.Clone()
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL
	return rc
}

func (rc *receiver) got() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.bodies
}

func addHook(t *testing.T, srv *fake.Server, company, endpoint string, types ...string) {
	t.Helper()
	if _, err := srv.AddExternalWebhook(company, fake.WebhookSpec{Endpoint: endpoint, EventTypes: types}); err != nil {
		t.Fatal(err)
	}
}

func TestDeliverToSubscribers(t *testing.T) {
	srv, _ := start(t, fake.Settings{})
	subscribed, other, failing := newReceiver(t, 200), newReceiver(t, 200), newReceiver(t, 503)
	addHook(t, srv, fake.SeedCompanyID, subscribed.url+"/hooks/secret-token-1", "booking_created", "booking_cancelled")
	addHook(t, srv, fake.SeedCompanyID, other.url+"/hooks/secret-token-2", "new_employee")
	addHook(t, srv, fake.SeedOtherCompanyID, failing.url+"/x", "booking_created")

	results, err := srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{})
	if err != nil || len(results) != 2 {
		t.Fatalf("results %+v, %v", results, err)
	}
	if len(subscribed.got()) != 1 || len(other.got()) != 0 || len(failing.got()) != 1 {
		t.Fatal("only subscribers get the event")
	}
	if results[0].StatusCode != 200 || results[1].StatusCode != 503 || results[0].Endpoint != subscribed.url+"/hooks/secret-token-1" {
		t.Fatalf("results %+v", results)
	}
	if results[0].AppointmentID == results[1].AppointmentID {
		t.Fatal("each company gets its own booking")
	}
	if ct := subscribed.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, h := range []string{"X-Signature", "X-Meetergo-Signature", "X-Delivery-Id"} {
		if subscribed.header.Get(h) != "" {
			t.Fatalf("meetergo sends no %s", h)
		}
	}

	results, _ = srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{PayloadOptions: fake.PayloadOptions{CompanyID: fake.SeedOtherCompanyID}})
	if len(results) != 1 || results[0].CompanyID != fake.SeedOtherCompanyID {
		t.Fatalf("CompanyID selects the receivers: %+v", results)
	}
	if _, err := srv.Deliver(context.Background(), "booking_canceled", fake.DeliverOptions{}); err == nil {
		t.Fatal("unknown event type accepted")
	}
}

func TestDeliverTwiceAndUniqueIDs(t *testing.T) {
	srv, _ := start(t, fake.Settings{})
	rc := newReceiver(t, 200)
	addHook(t, srv, fake.SeedCompanyID, rc.url+"/h", "booking_created")
	for range 2 {
		if _, err := srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{Twice: true}); err != nil {
			t.Fatal(err)
		}
	}
	got := rc.got()
	if len(got) != 4 || string(got[0]) != string(got[1]) || string(got[2]) != string(got[3]) {
		t.Fatal("Twice sends the identical body twice")
	}
	first, second := decode(t, got[0]), decode(t, got[2])
	if first["id"] == second["id"] || first["secret"] == second["secret"] {
		t.Fatal("every call makes a new appointment id and secret")
	}
}

func TestDeliveryFailuresAreReported(t *testing.T) {
	srv, _ := start(t, fake.Settings{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/hooks/tok"
	_ = ln.Close()
	addHook(t, srv, fake.SeedCompanyID, closed, "form_submission")
	results, err := srv.Deliver(context.Background(), "form_submission", fake.DeliverOptions{})
	if err != nil || len(results) != 1 || results[0].Err == nil || results[0].StatusCode != 0 {
		t.Fatalf("results %+v, %v", results, err)
	}
}

// TestLoopbackDeliveryClient: an endpoint on a never-routed address is
// delivered to the receiver on 127.0.0.1 at the same port.
func TestLoopbackDeliveryClient(t *testing.T) {
	srv, _ := fake.Start(t, fake.Options{Seed: fake.DefaultSeed(), DeliveryClient: fake.LoopbackDeliveryClient()})
	rc := newReceiver(t, 202)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.url, "http://"))
	addHook(t, srv, fake.SeedCompanyID, "http://192.0.2.10:"+port+"/hooks/tok", "new_employee")
	results, err := srv.Deliver(context.Background(), "new_employee", fake.DeliverOptions{})
	if err != nil || len(results) != 1 || results[0].StatusCode != 202 || rc.paths[0] != "/hooks/tok" {
		t.Fatalf("results %+v, %v", results, err)
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload is not a JSON object: %v", err)
	}
	return m
}
