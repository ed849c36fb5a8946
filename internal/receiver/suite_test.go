package receiver

import (
	"bytes"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
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
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// The package shares one control plane and one receiver (a manager with
// the receiver and fast retry settings), started in TestMain. Each test
// works in a namespace of its own, with its own fake meetergo and target
// servers on 127.0.0.1. Targets are reached through selectorless Services
// whose hand-made EndpointSlices hold a never-routed 192.0.2.x address and
// the target's real port; the receiver's dialer maps 192.0.2.x to 127.0.0.1
// before any connection is opened, and refuses every other address.
var (
	env      *testenv.Env
	k8s      client.Client // direct, as the test's user
	cached   client.Reader // the receiver's cache
	rcv      *Receiver
	baseURL  string
	tokens   *token.Deriver
	logs     = &syncBuffer{}
	tokenKey = []byte("0123456789abcdef0123456789abcdef")
	counter  atomic.Int64
)

// Fast settings for the shared receiver.
const (
	testRetryBase     = 10 * time.Millisecond
	testRetryMax      = 50 * time.Millisecond
	testEventInterval = 300 * time.Millisecond
	testFlush         = 100 * time.Millisecond
	testGrace         = time.Hour
	// targetIP is the never-routed address Services point at.
	targetIP = "192.0.2.10"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	if fuzzWorker() { // FuzzRouter needs no control plane (router_fuzz_test.go)
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	SetDefaultConsistentlyDuration(300 * time.Millisecond)
	var err error
	if tokens, err = token.NewDeriver(tokenKey); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	k8s = env.Client
	dataDir, err := os.MkdirTemp("", "receiver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dataDir) }()
	stop, err := startReceiver(dataDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop()
	if code != 0 || os.Getenv("RECEIVER_TEST_LOG") != "" {
		fmt.Fprintf(os.Stderr, "receiver log (last 8 KiB):\n%s\n", logs.tail(8<<10))
	}
	return code
}

// startReceiver runs the shared manager with the receiver until stop.
func startReceiver(dataDir string) (stop func(), err error) {
	log := zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-2)))
	ctrl.SetLogger(log)
	mgr, err := newManager(env.Config, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rcv, err = Setup(ctx, mgr, Options{
		BindAddress: "127.0.0.1:0", DataDir: dataDir, Tokens: tokens, TokenGracePeriod: testGrace,
		DialContext: loopbackDialer, Proxy: noProxy,
		RetryBaseDelay: testRetryBase, RetryMaxDelay: testRetryMax,
		EventInterval: testEventInterval, StatusFlushInterval: testFlush,
	})
	if err != nil {
		cancel()
		return nil, err
	}
	baseURL = "http://" + rcv.Addr().String()
	cached = mgr.GetCache()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("cache did not sync")
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}, nil
}

// newManager makes a manager for the receiver: no metrics or probe
// servers, controller names may repeat (the crash test's children).
func newManager(cfg *rest.Config, log logr.Logger) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := webhooksv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
}

// loopbackDialer maps 192.0.2.x to 127.0.0.1, keeping the port, and refuses
// any other address: no test connection ever leaves loopback.
func loopbackDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !strings.HasPrefix(host, "192.0.2.") {
		return nil, fmt.Errorf("test dialer: refusing %q: only 192.0.2.x (mapped to 127.0.0.1) is allowed", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

// noProxy ignores the environment's proxy settings.
func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

// namespace makes a namespace for the test.
func namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("rcv-%d", counter.Add(1))
	NewWithT(t).Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// target is an HTTP server on 127.0.0.1 standing behind a Service. It
// answers with answer(n) for its n-th request (from 0) and records them.
type target struct {
	*httptest.Server
	answer func(n int) int

	mu       sync.Mutex
	requests []received
}

// received is one request a target got.
type received struct {
	header http.Header
	path   string
	body   []byte
	status int
}

func newTarget(t testing.TB, answer func(n int) int) *target {
	tg := &target{answer: answer}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		status := tg.answer(len(tg.requests))
		tg.requests = append(tg.requests, received{header: r.Header.Clone(), path: r.URL.RequestURI(), body: body, status: status})
		tg.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func always(status int) func(int) int { return func(int) int { return status } }

func (tg *target) port() int32 { return int32(tg.Listener.Addr().(*net.TCPAddr).Port) }

// got returns the requests so far.
func (tg *target) got() []received {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]received(nil), tg.requests...)
}

// accepted returns the bodies the target answered with 2xx.
func (tg *target) accepted() [][]byte {
	var out [][]byte
	for _, r := range tg.got() {
		if r.status < 300 {
			out = append(out, r.body)
		}
	}
	return out
}

// setAnswer changes how the target answers from now on.
func (tg *target) setAnswer(answer func(int) int) {
	tg.mu.Lock()
	tg.answer = answer
	tg.mu.Unlock()
}

// service makes a selectorless Service name (port "http", 80) in ns and an
// EndpointSlice sending it to the target's real port on targetIP.
func service(t testing.TB, ns, name string, tg *target) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8s.Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(tg.port())}}},
	})).To(Succeed())
	g.Expect(k8s.Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "receiver-test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(tg.port()), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{targetIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})).To(Succeed())
}

// toTarget is a target of Service name, port http, at path, for types
// (all of the resource's if none).
func toTarget(name, path string, types ...webhooksv1alpha1.EventType) webhooksv1alpha1.Target {
	return webhooksv1alpha1.Target{Service: webhooksv1alpha1.ServiceReference{Name: name, Port: intstr.FromString("http")}, Path: path, EventTypes: types}
}

// allTypes are every event type meetergo can send.
var allTypes = func() []webhooksv1alpha1.EventType {
	var out []webhooksv1alpha1.EventType
	for _, t := range fake.AcceptedEventTypes {
		out = append(out, webhooksv1alpha1.EventType(t))
	}
	return out
}()

// webhook creates a MeetergoWebhook and sets its status as the reconciler
// would once registered (companyID, tokenGeneration), then waits until the
// receiver's cache has it.
func webhook(t testing.TB, ns, name string, spec webhooksv1alpha1.MeetergoWebhookSpec) *webhooksv1alpha1.MeetergoWebhook {
	t.Helper()
	g := NewWithT(t)
	spec.Credentials.SecretRef.Name = "meetergo-api"
	w := &webhooksv1alpha1.MeetergoWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	g.Expect(k8s.Create(context.Background(), w)).To(Succeed())
	setStatus(t, w, func(s *webhooksv1alpha1.MeetergoWebhookStatus) { s.CompanyID = fake.SeedCompanyID })
	return w
}

// setStatus changes w's status as the reconciler would and waits until the
// receiver's cache sees it.
func setStatus(t testing.TB, w *webhooksv1alpha1.MeetergoWebhook, change func(*webhooksv1alpha1.MeetergoWebhookStatus)) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(w), w)).To(Succeed())
	change(&w.Status)
	g.Expect(k8s.Status().Update(context.Background(), w)).To(Succeed())
	g.Eventually(func() string {
		seen := &webhooksv1alpha1.MeetergoWebhook{}
		_ = cached.Get(context.Background(), client.ObjectKeyFromObject(w), seen)
		return seen.ResourceVersion
	}).Should(Equal(w.ResourceVersion))
}

// endpointOf is the URL meetergo posts to for w (at generation gen).
func endpointOf(w *webhooksv1alpha1.MeetergoWebhook, gen int64) string {
	return token.Endpoint(baseURL, tokens.Token(string(w.UID), gen))
}

// meetergo starts a fake meetergo that delivers over loopback, with w's
// endpoint registered for types.
func meetergo(t testing.TB, endpoint string, types ...webhooksv1alpha1.EventType) *fake.Server {
	t.Helper()
	srv, _ := fake.Start(t, fake.Options{Seed: fake.DefaultSeed(), DeliveryClient: fake.LoopbackDeliveryClient()})
	var names []string
	for _, ty := range types {
		names = append(names, string(ty))
	}
	_, err := srv.AddExternalWebhook(fake.SeedCompanyID, fake.WebhookSpec{Endpoint: endpoint, EventTypes: names})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return srv
}

// deliver has meetergo send one event and expects every POST answered 200.
func deliver(t testing.TB, srv *fake.Server, eventType string, opts fake.DeliverOptions) []fake.DeliveryResult {
	t.Helper()
	res, err := srv.Deliver(context.Background(), eventType, opts)
	g := NewWithT(t)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).NotTo(BeEmpty())
	for _, r := range res {
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.StatusCode).To(Equal(http.StatusOK), "%s delivery", eventType)
	}
	return res
}

// kubeEvents lists the Events about w.
func kubeEvents(t testing.TB, w *webhooksv1alpha1.MeetergoWebhook) []eventsv1.Event {
	t.Helper()
	l := &eventsv1.EventList{}
	NewWithT(t).Expect(k8s.List(context.Background(), l, client.InNamespace(w.Namespace))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range l.Items {
		if e.Regarding.UID == w.UID {
			out = append(out, e)
		}
	}
	return out
}

// delivery reads w's status.delivery.
func delivery(w *webhooksv1alpha1.MeetergoWebhook) func() webhooksv1alpha1.DeliveryStatus {
	return func() webhooksv1alpha1.DeliveryStatus {
		cur := &webhooksv1alpha1.MeetergoWebhook{}
		_ = k8s.Get(context.Background(), client.ObjectKeyFromObject(w), cur)
		return cur.Status.Delivery
	}
}

// syncBuffer is a log sink tests can read while it is written.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) tail(n int) string {
	s := b.String()
	return s[max(0, len(s)-n):]
}
