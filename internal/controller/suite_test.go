package controller

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// The package shares one control plane and one fake meetergo. Each test
// gets its own namespace, its own company at the fake, and its own operator
// (a manager whose cache sees only that namespace), so tests cannot disturb
// each other and a test can restart "the operator" at will.
var (
	env         *testenv.Env
	k8s         client.Client
	meetergoFk  *fake.Server
	meetergoURL string
	tokenKey    = []byte("0123456789abcdef0123456789abcdef")
	counter     atomic.Int64
)

const receiverURL = "https://hooks.example.test/meetergo"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	var err error
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

	// The request log keeps every call of a long chaos run.
	if meetergoFk, err = fake.New(fake.Options{RequestLogSize: 500000}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := httptest.NewServer(meetergoFk)
	defer func() { meetergoFk.Close(); srv.Close() }()
	meetergoURL = srv.URL
	return m.Run()
}

// world is one test's namespace and meetergo company.
type world struct {
	t *testing.T
	// tweak, if set, changes the next operator's reconciler before it
	// starts (e.g. to wrap its clients); alsoWatch adds namespaces to its
	// cache.
	tweak     func(*MeetergoWebhookReconciler)
	alsoWatch []string
	ns        string
	companyID string
	token     string // a personal token of the company's admin
	userID    string
}

// newWorld makes a namespace and a company with an admin and a personal
// token, and a credentials Secret "meetergo-api" holding that token.
func newWorld(t *testing.T) *world {
	t.Helper()
	n := counter.Add(1)
	w := &world{
		t:         t,
		ns:        namespaceName(n, t.Name()),
		companyID: fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", n),
		userID:    fmt.Sprintf("a11ce000-0000-4000-8000-%012d", n),
		token:     fmt.Sprintf("rgo-test-%d-%s", n, strings.Repeat("x", 24)),
	}
	NewWithT(t).Expect(meetergoFk.AddSeed(fake.Seed{
		Companies:   []fake.Company{{ID: w.companyID}},
		Users:       []fake.User{{ID: w.userID, CompanyID: w.companyID, Email: fmt.Sprintf("admin%d@example.test", n), IsAdmin: true}},
		Credentials: []fake.Credential{{Token: w.token, UserID: w.userID}},
	})).To(Succeed())
	NewWithT(t).Expect(k8s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}})).To(Succeed())
	w.secret("meetergo-api", map[string]string{SecretKeyToken: w.token})
	return w
}

func (w *world) secret(name string, data map[string]string) {
	w.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name}, StringData: data}
	NewWithT(w.t).Expect(k8s.Create(context.Background(), s)).To(Succeed())
}

// operator is a running reconciler; stop() ends it like a process exit.
type operator struct {
	stop func()
	rec  *MeetergoWebhookReconciler
}

// startOperator runs the reconciler for the world's namespace until the
// test ends or stop is called.
func (w *world) startOperator(opts Options, clientOpts ...func(*meetergo.Options)) *operator {
	w.t.Helper()
	g := NewWithT(w.t)
	namespaces := map[string]cache.Config{w.ns: {}}
	for _, ns := range w.alsoWatch {
		namespaces[ns] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Client.Scheme(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: namespaces},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	g.Expect(err).NotTo(HaveOccurred())
	co := meetergo.Options{BaseURL: meetergoURL, UserAgent: "meetergo-operator/test", Timeout: 2 * time.Second}
	for _, f := range clientOpts {
		f(&co)
	}
	api, err := meetergo.NewHTTPClient(co)
	g.Expect(err).NotTo(HaveOccurred())
	deriver, err := token.NewDeriver(tokenKey)
	g.Expect(err).NotTo(HaveOccurred())
	if opts.ReceiverURL == "" {
		opts.ReceiverURL = receiverURL
	}
	if opts.ResyncPeriod == 0 {
		opts.ResyncPeriod = time.Hour
	}
	if opts.QuotaPollInterval == 0 {
		opts.QuotaPollInterval = time.Second
	}
	if opts.ListMaxAge == 0 {
		opts.ListMaxAge = 500 * time.Millisecond
	}
	if opts.RetryBaseDelay == 0 {
		opts.RetryBaseDelay, opts.RetryMaxDelay = 100*time.Millisecond, 2*time.Second
	}
	rec := &MeetergoWebhookReconciler{
		Client:   mgr.GetClient(),
		Meetergo: api,
		Tokens:   deriver,
		Recorder: mgr.GetEventRecorder("meetergo-operator"),
		Options:  opts,
	}
	if w.tweak != nil {
		w.tweak(rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Expect(rec.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			w.t.Errorf("manager: %v", err)
		}
	}()
	var once atomic.Bool
	stop := func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	w.t.Cleanup(stop)
	return &operator{stop: stop, rec: rec}
}

// webhook builds a MeetergoWebhook of the world using "meetergo-api".
func (w *world) webhook(name string, events ...webhooksv1alpha1.EventType) *webhooksv1alpha1.MeetergoWebhook {
	if len(events) == 0 {
		events = []webhooksv1alpha1.EventType{webhooksv1alpha1.EventBookingCreated}
	}
	return &webhooksv1alpha1.MeetergoWebhook{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name},
		Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes:  events,
			Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
			Description: "test " + name,
		},
	}
}

func (w *world) create(obj *webhooksv1alpha1.MeetergoWebhook) *webhooksv1alpha1.MeetergoWebhook {
	w.t.Helper()
	NewWithT(w.t).Expect(k8s.Create(context.Background(), obj)).To(Succeed())
	return obj
}

func (w *world) get(name string) *webhooksv1alpha1.MeetergoWebhook {
	obj := &webhooksv1alpha1.MeetergoWebhook{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: name}, obj); err != nil {
		return nil
	}
	return obj
}

// registrations are the company's webhooks at the fake.
func (w *world) registrations() []fake.Webhook { return meetergoFk.Webhooks(w.companyID) }

// namespaceName makes a DNS label from the test's name.
func namespaceName(n int64, testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	name := fmt.Sprintf("t%d-%s", n, b.String())
	return strings.TrimRight(name[:min(len(name), 50)], "-")
}

// zapLevel logs errors only, unless TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

func clientInNamespace(ns string) client.InNamespace { return client.InNamespace(ns) }

// annotate sets one annotation with a merge patch of it alone, so that a
// status write of the operator in between cannot make it conflict.
func (w *world) annotate(name, key, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	obj := &webhooksv1alpha1.MeetergoWebhook{}
	obj.Namespace, obj.Name = w.ns, name
	return k8s.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch)))
}
