package forward

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/loopbackproxy"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

const (
	ns         = "team"
	testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// target is an HTTP server on 127.0.0.1 that answers with the next status of
// a script (the last one repeats) and records what it got.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	requests []*http.Request
	bodies   [][]byte
}

func newTarget(t *testing.T, script ...int) *target {
	tg := &target{script: script}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		status := tg.script[0]
		if len(tg.script) > 1 {
			tg.script = tg.script[1:]
		}
		tg.requests = append(tg.requests, r)
		tg.bodies = append(tg.bodies, body)
		tg.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) port() int32 { return int32(tg.Listener.Addr().(*net.TCPAddr).Port) }

func (tg *target) count() int { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.requests) }

func (tg *target) answer(script ...int) { tg.mu.Lock(); tg.script = script; tg.mu.Unlock() }

// reporter records what the Forwarder reports.
type reporter struct {
	mu                          sync.Mutex
	forwarded, failed, deadLets []string
	replayed                    int
	reports                     []ReplayReport
}

func (r *reporter) Forwarded(ev *store.Event, target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forwarded = append(r.forwarded, ev.ID+"->"+target)
}
func (r *reporter) Failed(_ *store.Event, lastError string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, lastError)
}
func (r *reporter) DeadLettered(_ *store.Event, lastError string, _ int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deadLets = append(r.deadLets, lastError)
}
func (r *reporter) Replayed(_ *webhooksv1alpha1.MeetergoWebhook, n int, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replayed += n
}
func (r *reporter) ReplayDone(_ *webhooksv1alpha1.MeetergoWebhook, rep ReplayReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replayed += rep.Deliveries()
	r.reports = append(r.reports, rep)
}
func (r *reporter) replays() []ReplayReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReplayReport(nil), r.reports...)
}
func (r *reporter) snapshot() (fwd, failed, dead []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.forwarded...), append([]string(nil), r.failed...), append([]string(nil), r.deadLets...)
}

// loopbackDialer maps the never-routed 192.0.2.x to 127.0.0.1: to the port
// in ports[ip] if set, else the port asked for. Anything else is refused,
// so no test can reach beyond loopback.
func loopbackDialer(ports map[string]int32) func(context.Context, string, string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !strings.HasPrefix(host, "192.0.2.") {
			return nil, fmt.Errorf("test dialer: refusing %s", addr)
		}
		if p, ok := ports[host]; ok {
			port = fmt.Sprint(p)
		}
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
}

// noProxy ignores proxy settings of the environment.
func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

type fixture struct {
	t     *testing.T
	c     client.Client
	st    *store.Store
	f     *Forwarder
	rep   *reporter
	hook  *webhooksv1alpha1.MeetergoWebhook
	seq   int
	start func()
}

// newFixture makes a resource whose one target Service "crm" (port http,
// signed) has the ready endpoints given (IP -> 127.0.0.1 port).
func newFixture(t *testing.T, endpoints map[string]int32, tweaks ...func(*Config)) *fixture {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = webhooksv1alpha1.AddToScheme(scheme)
	hook := &webhooksv1alpha1.MeetergoWebhook{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook", UID: "uid-1"},
		Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
			Targets:    []webhooksv1alpha1.Target{{Service: webhooksv1alpha1.ServiceReference{Name: "crm", Port: intstr.FromString("http")}, Path: "/in?src=meetergo"}},
			Delivery: webhooksv1alpha1.DeliverySpec{MaxAttempts: 4, Timeout: &metav1.Duration{Duration: 5 * time.Second},
				SigningSecretRef: &webhooksv1alpha1.SecretKeyReference{Name: "signing", Key: "secret"}},
		},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "crm-1", Labels: map[string]string{discoveryv1.LabelServiceName: "crm"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9)}},
	}
	for ip := range endpoints {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(hook, slice,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crm"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signing"}, Data: map[string][]byte{"secret": []byte(testSecret)}},
	).Build()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &reporter{}
	fx := &fixture{t: t, c: c, st: st, rep: rep, hook: hook}
	cfg := Config{Store: st, Client: c, Secrets: c, Reporter: rep, DialContext: loopbackDialer(endpoints),
		Proxy: noProxy, RetryBaseDelay: 5 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond,
		UserAgent: "test-agent"}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	fx.f = New(cfg)
	if err := fx.f.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	fx.start = func() { running.Go(func() { _ = fx.f.Run(ctx) }) }
	t.Cleanup(func() {
		cancel()
		running.Wait()
		_ = st.Close()
	})
	return fx
}

// accept stores an event for the resource and hands it to the Forwarder.
func (fx *fixture) accept(body string) store.Event {
	fx.seq++
	acc, err := fx.st.Accept(context.Background(), store.Incoming{
		Event:      store.Event{UID: "uid-1", Namespace: ns, Name: "hook", Type: "booking_created", ID: fmt.Sprintf("msg_%d", fx.seq), ReceivedAt: time.Now()},
		Body:       []byte(body),
		DedupScope: "uid-1", DedupKey: []byte(body), DedupUntil: time.Now().Add(time.Hour),
		Targets: Targets(fx.hook, "booking_created"),
	})
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.f.Enqueue(acc.Event, Targets(fx.hook, "booking_created"))
	return acc.Event
}

// update changes the resource in the client and tells the Forwarder.
func (fx *fixture) update(change func(*webhooksv1alpha1.MeetergoWebhook)) {
	change(fx.hook)
	if err := fx.c.Update(context.Background(), fx.hook); err != nil {
		fx.t.Fatal(err)
	}
	if err := fx.f.Sync(context.Background(), types.NamespacedName{Namespace: ns, Name: "hook"}, fx.hook); err != nil {
		fx.t.Fatal(err)
	}
}

func stored(t *testing.T, st *store.Store) int {
	n := 0
	if err := st.Load(func(store.Event, store.Delivery) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}

// verify checks a Standard Webhooks signature the way a receiver library
// does, written here independently of Sign.
func verify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestDeliversSignedWithHeaders(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 204)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.start()
	ev := fx.accept(`{"webhookType":"booking_created","id":"a1"}`)

	g.Eventually(tg.count).Should(Equal(1))
	r, body := tg.requests[0], tg.bodies[0]
	g.Expect(string(body)).To(Equal(`{"webhookType":"booking_created","id":"a1"}`))
	g.Expect(r.Method).To(Equal(http.MethodPost))
	g.Expect(r.URL.RequestURI()).To(Equal("/in?src=meetergo"))
	g.Expect(r.Host).To(HavePrefix("192.0.2.1:"), "the endpoint's address, as a proxy needs it")
	g.Expect(r.Header.Get("Content-Type")).To(Equal("application/json"))
	g.Expect(r.Header.Get("User-Agent")).To(Equal("test-agent"))
	g.Expect(r.Header.Get("webhook-id")).To(Equal(ev.ID))
	g.Expect(r.Header.Get(HeaderEvent)).To(Equal("booking_created"))
	g.Expect(r.Header.Get(HeaderWebhook)).To(Equal("team/hook"))
	g.Expect(verify(testSecret, r.Header, body)).To(BeTrue(), "signature %q", r.Header.Get("webhook-signature"))
	g.Eventually(func() []string { fwd, _, _ := fx.rep.snapshot(); return fwd }).Should(Equal([]string{ev.ID + "->crm:http/in?src=meetergo"}))
	g.Expect(stored(t, fx.st)).To(BeZero(), "a delivered event is deleted")
	_, failed, _ := fx.rep.snapshot()
	g.Expect(failed).To(BeEmpty())
}

func TestRetriesDeadLettersAndReplays(t *testing.T) {
	g := NewWithT(t)
	// 503 and 429 are retried; 400 is final.
	tg := newTarget(t, 503, 429, 400)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.start()
	ev := fx.accept(`{"n":1}`)

	g.Eventually(func() []string { _, _, dead := fx.rep.snapshot(); return dead }).Should(Equal([]string{"target crm:http/in?src=meetergo: HTTP 400"}))
	_, failed, _ := fx.rep.snapshot()
	g.Expect(failed).To(HaveLen(3))
	g.Expect(tg.count()).To(Equal(3))
	g.Expect(stored(t, fx.st)).To(Equal(1), "the dead letter is kept")

	tg.answer(200)
	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) {
		w.Annotations = map[string]string{webhooksv1alpha1.ReplayDeadLettersAnnotation: "1"}
	})
	g.Eventually(func() []string { fwd, _, _ := fx.rep.snapshot(); return fwd }).Should(HaveLen(1))
	g.Expect(tg.requests[3].Header.Get("webhook-id")).To(Equal(ev.ID), "a replay keeps the delivery id")
	g.Expect(fx.rep.replayed).To(Equal(1))

	// The same value again replays nothing.
	fx.update(func(*webhooksv1alpha1.MeetergoWebhook) {})
	g.Consistently(tg.count, 100*time.Millisecond).Should(Equal(4))
}

func TestMaxAttemptsOfRetryableFailures(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 500)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.start()
	fx.accept(`{}`)
	g.Eventually(func() []string { _, _, dead := fx.rep.snapshot(); return dead }).Should(HaveLen(1))
	g.Expect(tg.count()).To(Equal(4), "spec.delivery.maxAttempts")
}

func TestFailsOverWhenAnEndpointRefuses(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 200)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedPort := int32(closed.Listener.Addr().(*net.TCPAddr).Port)
	closed.Close()
	fx := newFixture(t, map[string]int32{"192.0.2.1": closedPort, "192.0.2.2": tg.port()})
	fx.start()
	for i := range 6 {
		fx.accept(fmt.Sprintf(`{"n":%d}`, i))
	}
	g.Eventually(tg.count).Should(Equal(6))
	_, failed, _ := fx.rep.snapshot()
	g.Expect(failed).To(BeEmpty(), "a refused connection moves on to the next endpoint within the attempt")
}

func TestSuspendedResourcesKeepTheirDeliveries(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 200)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) { w.Spec.Suspend = true })
	fx.start()
	fx.accept(`{"n":1}`)
	g.Consistently(tg.count, 200*time.Millisecond).Should(BeZero())
	g.Expect(stored(t, fx.st)).To(Equal(1))

	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) { w.Spec.Suspend = false })
	g.Eventually(tg.count).Should(Equal(1))
}

func TestDeletedResourcesDropTheirDeliveries(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 503)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.start()
	fx.accept(`{"n":1}`)
	g.Eventually(tg.count).Should(BeNumerically(">=", 1))

	g.Expect(fx.c.Delete(context.Background(), fx.hook)).To(Succeed())
	g.Expect(fx.f.Sync(context.Background(), types.NamespacedName{Namespace: ns, Name: "hook"}, nil)).To(Succeed())
	g.Eventually(func() int { return stored(t, fx.st) }).Should(BeZero())
	n := tg.count()
	g.Consistently(tg.count, 100*time.Millisecond).Should(Equal(n))
}

func TestPendingDeliveriesResumeAfterRestart(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 200)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.accept(`{"n":1}`) // accepted, never attempted: the Forwarder is not running

	// A second Forwarder on the same store (as after a restart) finds it.
	again := New(Config{Store: fx.st, Client: fx.c, Secrets: fx.c, Reporter: &reporter{}, Proxy: noProxy,
		DialContext: loopbackDialer(map[string]int32{"192.0.2.1": tg.port()})})
	g.Expect(again.Load()).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = again.Run(ctx) }()
	defer func() { cancel(); <-done }()
	g.Eventually(tg.count).Should(Equal(1))
}

func TestDeliversThroughAnHTTPProxy(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 200)
	p, err := loopbackproxy.New("192.0.2.0/24")
	g.Expect(err).NotTo(HaveOccurred())
	proxy := httptest.NewServer(p)
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	// The forwarder dials only the proxy (on 127.0.0.1); the proxy maps
	// the endpoint's 192.0.2.1 to 127.0.0.1, as in the demo.
	fx := newFixture(t, map[string]int32{"192.0.2.1": 0}, func(c *Config) {
		c.Proxy, c.DialContext = http.ProxyURL(proxyURL), nil
	})
	slice := &discoveryv1.EndpointSlice{}
	g.Expect(fx.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "crm-1"}, slice)).To(Succeed())
	slice.Ports[0].Port = ptr.To(tg.port())
	g.Expect(fx.c.Update(context.Background(), slice)).To(Succeed())
	fx.start()
	fx.accept(`{"via":"proxy"}`)
	g.Eventually(tg.count).Should(Equal(1))
	g.Expect(string(tg.bodies[0])).To(Equal(`{"via":"proxy"}`))
}

func TestDeliveriesDroppedDuringAnAttemptLeaveNothingBehind(t *testing.T) {
	g := NewWithT(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(slow.Close)
	fx := newFixture(t, map[string]int32{"192.0.2.1": int32(slow.Listener.Addr().(*net.TCPAddr).Port)})
	fx.start()
	fx.accept(`{"n":1}`)
	<-arrived

	// The resource goes while the attempt is under way; its failure must
	// not bring the delivery back.
	g.Expect(fx.c.Delete(context.Background(), fx.hook)).To(Succeed())
	g.Expect(fx.f.Sync(context.Background(), types.NamespacedName{Namespace: ns, Name: "hook"}, nil)).To(Succeed())
	g.Expect(stored(t, fx.st)).To(Equal(1), "the worker, not Sync, deletes a delivery under way")
	close(release)
	g.Eventually(func() int { return stored(t, fx.st) }).Should(BeZero())
	g.Consistently(func() int { return stored(t, fx.st) }).Should(BeZero())
	_, failed, _ := fx.rep.snapshot()
	g.Expect(failed).To(HaveLen(1))
}

// keep stores body as a kept event of the resource (as the receiver does
// with a body it cannot read) and tracks its dead letter.
func (fx *fixture) keep(body string) store.Event {
	fx.seq++
	now := time.Now()
	dl := store.Delivery{Key: store.Key{Target: KeptTarget}, Due: now, DeadAt: now, LastError: "kept unread"}
	acc, err := fx.st.Accept(context.Background(), store.Incoming{
		Event:      store.Event{UID: "uid-1", Namespace: ns, Name: "hook", ID: fmt.Sprintf("msg_kept_%d", fx.seq), ReceivedAt: now},
		Body:       []byte(body),
		DedupScope: "uid-1", DedupKey: []byte(body), DedupUntil: now.Add(time.Hour),
		DeadLetter: &dl,
	})
	if err != nil || acc.Duplicate {
		fx.t.Fatalf("keeping %s: %+v, %v", body, acc, err)
	}
	dl.Seq = acc.Event.Seq
	fx.f.AddDeadLetter(acc.Event, dl)
	return acc.Event
}

// TestKeptEventsAreReadAgainOnReplay: kept events are never attempted; a
// replay reads each body again: one that now is an event the resource
// subscribes to is delivered to its targets under the id it was kept
// with; a body that is still no JSON, an unknown or unsubscribed type,
// or another company's event stays a dead letter, at every replay.
func TestKeptEventsAreReadAgainOnReplay(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, 200)
	fx := newFixture(t, map[string]int32{"192.0.2.1": tg.port()})
	fx.hook.Status.CompanyID = "c1"
	g.Expect(fx.c.Update(context.Background(), fx.hook)).To(Succeed())
	fx.start()
	readable := `{"webhookType":"booking_created","appointmentId":"a1","companyId":"c1"}`
	ev := fx.keep(readable)
	stuck := []string{"not json at all", `{"webhookType":"booking_exploded"}`, `{"webhookType":"new_employee"}`,
		`{"webhookType":"booking_created","companyId":"c2"}`, `[]`}
	for _, b := range stuck {
		fx.keep(b)
	}
	g.Consistently(tg.count, 200*time.Millisecond).Should(BeZero(), "kept events are not attempted")
	g.Expect(stored(t, fx.st)).To(Equal(1 + len(stuck)))

	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) {
		w.Annotations = map[string]string{webhooksv1alpha1.ReplayDeadLettersAnnotation: "1"}
	})
	g.Eventually(tg.count).Should(Equal(1))
	g.Expect(string(tg.bodies[0])).To(Equal(readable))
	g.Expect(tg.requests[0].Header.Get("webhook-id")).To(Equal(ev.ID), "delivered under the id it was kept with")
	g.Expect(tg.requests[0].Header.Get(HeaderEvent)).To(Equal("booking_created"))
	g.Eventually(func() []string { fwd, _, _ := fx.rep.snapshot(); return fwd }).Should(Equal([]string{ev.ID + "->crm:http/in?src=meetergo"}))
	reports := fx.rep.replays()
	g.Expect(reports).To(HaveLen(1))
	g.Expect(reports[0].Revived).To(BeZero())
	g.Expect(reports[0].Unread).To(Equal(len(stuck)))
	g.Expect(reports[0].Reread).To(HaveLen(1))
	g.Expect(reports[0].Reread[0].Payload.ID).To(Equal("a1"))
	g.Expect(reports[0].Reread[0].Targets).To(Equal(1))
	g.Eventually(func() int { return stored(t, fx.st) }).Should(Equal(len(stuck)), "the delivered event is gone, the others stay dead letters")
	dead := 0
	g.Expect(fx.st.Load(func(_ store.Event, d store.Delivery) {
		if d.Dead() && d.Target == KeptTarget {
			dead++
		}
	})).To(Succeed())
	g.Expect(dead).To(Equal(len(stuck)))

	// Another replay: they are read again, and stay.
	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) {
		w.Annotations[webhooksv1alpha1.ReplayDeadLettersAnnotation] = "2"
	})
	g.Expect(fx.rep.replays()).To(HaveLen(2))
	g.Expect(fx.rep.replays()[1].Unread).To(Equal(len(stuck)))
	g.Consistently(tg.count, 200*time.Millisecond).Should(Equal(1))

	// Once the resource subscribes to new_employee (no target takes it:
	// the target's types are the resource's, so it does), that one is
	// delivered at the next replay.
	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) {
		w.Spec.EventTypes = append(w.Spec.EventTypes, "new_employee")
		w.Annotations[webhooksv1alpha1.ReplayDeadLettersAnnotation] = "3"
	})
	g.Eventually(tg.count).Should(Equal(2))
	g.Expect(string(tg.bodies[1])).To(Equal(`{"webhookType":"new_employee"}`))
	g.Expect(fx.rep.replays()[2].Unread).To(Equal(len(stuck) - 1))
}

// TestAKeptEventNoTargetTakesIsDoneOnReplay: a kept event that now reads
// as a subscribed type no target takes is recorded and deleted.
func TestAKeptEventNoTargetTakesIsDoneOnReplay(t *testing.T) {
	g := NewWithT(t)
	fx := newFixture(t, nil)
	fx.hook.Spec.EventTypes = append(fx.hook.Spec.EventTypes, "form_submission")
	fx.hook.Spec.Targets[0].EventTypes = []webhooksv1alpha1.EventType{"booking_created"}
	g.Expect(fx.c.Update(context.Background(), fx.hook)).To(Succeed())
	fx.start()
	fx.keep(`{"webhookType":"form_submission","id":"s1"}`)
	fx.update(func(w *webhooksv1alpha1.MeetergoWebhook) {
		w.Annotations = map[string]string{webhooksv1alpha1.ReplayDeadLettersAnnotation: "1"}
	})
	g.Expect(fx.rep.replays()).To(HaveLen(1))
	g.Expect(fx.rep.replays()[0].Reread).To(HaveLen(1))
	g.Expect(fx.rep.replays()[0].Reread[0].Targets).To(BeZero())
	g.Expect(stored(t, fx.st)).To(BeZero())
}
