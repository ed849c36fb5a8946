// Package apioutage tests the receiver while the Kubernetes API server is
// down. It has a control plane of its own (restarting the API server under
// the receiver package's shared suite would disturb its other tests) and
// only this test.
package apioutage

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

var (
	env     *testenv.Env
	cfg     *rest.Config
	k8s     client.Client
	tokens  *token.Deriver
	baseURL string
	// readyz is the manager's readiness endpoint.
	readyz string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard))) // each test's manager has a logger of its own
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	// A restartable API server: same address and certificates after a
	// restart, so the clients made now keep trusting it.
	var err error
	if env, err = testenv.StartWith(testenv.Options{RestartableAPIServer: true}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	cfg, k8s = env.Config, env.Client
	if tokens, err = token.NewDeriver([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startReceiver runs a manager with the receiver only, with fast settings,
// until the test ends. (One per test: client-go's reflectors lengthen
// their backoff with every outage they see, for two minutes.)
func startReceiver(t *testing.T) {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = webhooksv1alpha1.AddToScheme(scheme)
	logs := &syncBuffer{}
	log := zap.New(zap.WriteTo(logs))
	probes, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	readyz = "http://" + probes + "/readyz"
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Logger: log,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: probes,
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rcv, err := receiver.Setup(ctx, mgr, receiver.Options{
		BindAddress: "127.0.0.1:0", DataDir: t.TempDir(), Tokens: tokens,
		DialContext: loopbackDialer, Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond,
		EventInterval: 300 * time.Millisecond, StatusFlushInterval: 100 * time.Millisecond,
		ShutdownTimeout: 2 * time.Second,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	baseURL = "http://" + rcv.Addr().String()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
		if t.Failed() || os.Getenv("RECEIVER_TEST_LOG") != "" {
			t.Logf("receiver log (last 16 KiB):\n%s", logs.tail(16<<10))
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
}

// TestEventsAreTakenAndForwardedWhileTheAPIServerIsDown stops the API
// server for a while: the receiver keeps accepting events (routing from
// its cache) and storing them, and forwards them meanwhile (Services and
// EndpointSlices come from the cache too); what needs the API (Kubernetes
// Events, status.delivery) fails and is kept; once the API server is back,
// Events and status catch up with every occurrence, and the cache follows
// changes again.
func TestEventsAreTakenAndForwardedWhileTheAPIServerIsDown(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	startReceiver(t)
	ns := fmt.Sprintf("outage-%d", time.Now().UnixNano()) // -count=N runs it again
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	tg := newTarget(t)
	service(t, ns, "crm", tg)
	w := &webhooksv1alpha1.MeetergoWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Spec: webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes:  []webhooksv1alpha1.EventType{"booking_created"},
		Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
		Targets:     []webhooksv1alpha1.Target{{Service: webhooksv1alpha1.ServiceReference{Name: "crm", Port: intstr.FromString("http")}}},
	}}
	g.Expect(k8s.Create(ctx, w)).To(Succeed())
	endpoint := token.Endpoint(baseURL, tokens.Token(string(w.UID), 0))
	routable(t, endpoint)

	var sent [][]byte
	send := func() {
		t.Helper()
		body, err := fake.Payload("booking_created", fake.PayloadOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := http.Post(endpoint, "application/json", strings.NewReader(string(body)))
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		sent = append(sent, body)
	}
	send()
	g.Eventually(tg.count).Should(Equal(1))

	// The API server goes away.
	statusFailed := counter(t, "meetergo_operator_receiver_status_updates_total", "result", "failed")
	eventsFailed := counter(t, "meetergo_operator_receiver_kube_events_total", "result", "failed")
	stopped := time.Now()
	g.Expect(env.StopAPIServer()).To(Succeed())
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), &webhooksv1alpha1.MeetergoWebhook{})).NotTo(Succeed(), "the API server is down")

	const during = 10
	for range during {
		send()
	}
	g.Eventually(tg.count).Should(Equal(1+during), "forwarded from the cache while the API server is down")
	g.Expect(ready()).To(Succeed(), "the receiver stays ready: its store takes writes")
	g.Eventually(func() float64 {
		return counter(t, "meetergo_operator_receiver_status_updates_total", "result", "failed") - statusFailed
	}).Should(BeNumerically(">", 0), "status updates fail and are kept")
	g.Eventually(func() float64 {
		return counter(t, "meetergo_operator_receiver_kube_events_total", "result", "failed") - eventsFailed
	}).Should(BeNumerically(">", 0), "Kubernetes Events fail and are kept")

	// It comes back on the same address with the same certificates.
	g.Expect(env.StartAPIServer()).To(Succeed())
	restarted := time.Now()
	t.Logf("the API server was down for %s", restarted.Sub(stopped).Round(100*time.Millisecond))

	g.Eventually(func() webhooksv1alpha1.DeliveryStatus {
		cur := &webhooksv1alpha1.MeetergoWebhook{}
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(w), cur)
		return cur.Status.Delivery
	}).Should(And(HaveField("Received", BeEquivalentTo(1+during)), HaveField("Forwarded", BeEquivalentTo(1+during))))
	g.Eventually(func() int {
		l := &eventsv1.EventList{}
		if err := k8s.List(ctx, l, client.InNamespace(ns)); err != nil {
			return -1
		}
		n := 0
		for _, e := range l.Items {
			if e.Regarding.UID == w.UID && e.Reason == "BookingCreated" {
				n++
				if e.Series != nil {
					n += int(e.Series.Count) - 1
				}
			}
		}
		return n
	}).Should(Equal(1+during), "every occurrence is in an Event")
	t.Logf("status and Events caught up %s after the restart", time.Since(restarted).Round(100*time.Millisecond))

	// The cache follows the API again: a resource made now is routed.
	later := w.DeepCopy()
	later.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "later"}
	g.Expect(k8s.Create(ctx, later)).To(Succeed())
	routable(t, token.Endpoint(baseURL, tokens.Token(string(later.UID), 0)))
	t.Logf("the cache followed a new resource %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
	g.Expect(tg.bodies()).To(ConsistOf(sent), "each event reached the target once")
}

// routable waits until the receiver's cache has the resource of endpoint:
// a GET is answered 405 (found, wrong method) rather than 404.
func routable(t *testing.T, endpoint string) {
	NewWithT(t).Eventually(func() int {
		resp, err := http.Get(endpoint)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}).Should(Equal(http.StatusMethodNotAllowed))
}

// ready asks the manager's /readyz, which runs the receiver's check.
func ready() error {
	resp, err := http.Get(readyz)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz %d: %s", resp.StatusCode, body)
	}
	return nil
}

// freeAddr is a free port on 127.0.0.1.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// counter reads a counter of controller-runtime's registry with one label.
func counter(t *testing.T, name, label, value string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// target is an HTTP server on 127.0.0.1 that takes every POST.
type target struct {
	*httptest.Server
	mu  sync.Mutex
	got [][]byte
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.got = append(tg.got, b)
		tg.mu.Unlock()
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) count() int { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.got) }

func (tg *target) bodies() [][]byte {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([][]byte(nil), tg.got...)
}

// service makes a selectorless Service (port "http") whose EndpointSlice
// holds a never-routed 192.0.2.x address with the target's real port; the
// receiver's dialer maps it to 127.0.0.1.
func service(t *testing.T, ns, name string, tg *target) {
	g := NewWithT(t)
	port := int32(tg.Listener.Addr().(*net.TCPAddr).Port)
	g.Expect(k8s.Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(port)}}},
	})).To(Succeed())
	g.Expect(k8s.Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})).To(Succeed())
}

// loopbackDialer maps 192.0.2.x to 127.0.0.1 and refuses anything else.
func loopbackDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !strings.HasPrefix(host, "192.0.2.") {
		return nil, fmt.Errorf("test dialer: refusing %q", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

// syncBuffer is a log sink tests can read while it is written.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	return s[max(0, len(s)-n):]
}
