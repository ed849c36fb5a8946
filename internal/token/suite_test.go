package token

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// The envtest control plane is started by the first test that needs it
// (the unit tests of this package do not) and stopped by TestMain.
var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error

	namespaces atomic.Int32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

func controlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() { env, envErr = testenv.Start() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

// leaseName is the Lease cmd/main.go elects with.
const leaseName = "meetergo-operator.webhooks.meetergo-operator.io"

// secretName is the default --token-key-secret.
const secretName = "meetergo-operator-token-key"

// operator is a replica's view of the API: a namespace of its own and a
// user bound to nothing but the roles of config/rbac (the generated
// ClusterRole and namespaced Role, and the leader election Role), so each
// test also proves that RBAC lets the code do what it does.
type operator struct {
	ns       string
	cfg      *rest.Config
	client   client.Client // the operator's, uncached
	metadata metadata.Interface
	admin    client.Client // the test's own
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	e := controlPlane(t)
	ctx := t.Context()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	ns := fmt.Sprintf("%s-%d", strings.TrimRight(name, "-"), namespaces.Add(1))
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	user := "operator-" + ns
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	for _, file := range []string{"role.yaml", "leader_election_role.yaml"} {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", file))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---") {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
				continue
			}
			roleName := fmt.Sprintf("%s-%s-%d", ns, strings.TrimSuffix(file, ".yaml"), i)
			switch meta.Kind {
			case "ClusterRole":
				var r rbacv1.ClusterRole
				mustUnmarshal(t, doc, &r)
				create(t, e.Client, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Rules: r.Rules})
				create(t, e.Client, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Subjects: subject,
					RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName}})
			case "Role":
				var r rbacv1.Role
				mustUnmarshal(t, doc, &r)
				if r.Namespace != "system" {
					t.Fatalf("%s: Role %s is meant for namespace %q, not the operator's own (system)", file, r.Name, r.Namespace)
				}
				create(t, e.Client, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: roleName}, Rules: r.Rules})
				create(t, e.Client, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: roleName}, Subjects: subject,
					RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}})
			}
		}
	}
	u, err := e.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &operator{ns: ns, cfg: u.Config(), admin: e.Client}
	if o.client, err = client.New(o.cfg, client.Options{Scheme: clientgoscheme.Scheme}); err != nil {
		t.Fatal(err)
	}
	if o.metadata, err = metadata.NewForConfig(o.cfg); err != nil {
		t.Fatal(err)
	}
	return o
}

func mustUnmarshal(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(doc), into); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
}

// secretKey is what the Secret holds now: its key, and nil when the Secret
// does not exist.
func (o *operator) secretKey(t *testing.T) ([]byte, *corev1.Secret) {
	t.Helper()
	s := &corev1.Secret{}
	if err := o.admin.Get(t.Context(), client.ObjectKey{Namespace: o.ns, Name: secretName}, s); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, nil
		}
		t.Fatal(err)
	}
	return s.Data[KeySecretKey], s
}

// runningKeeper is a Keeper running as in a replica.
type runningKeeper struct {
	log  *logBuffer
	stop context.CancelFunc
	done chan struct{} // closed when Start has returned, with err
	err  error
}

// stopped is Start's error once it has returned, or errRunning.
func (r *runningKeeper) stopped() error {
	select {
	case <-r.done:
		return r.err
	default:
		return errRunning
	}
}

var errRunning = errors.New("still running")

func (o *operator) startKeeper(t *testing.T, key []byte) *runningKeeper {
	t.Helper()
	log := &logBuffer{}
	k, err := NewKeeper(KeeperOptions{
		Client: o.client, Metadata: o.metadata,
		Namespace: o.ns, Name: secretName,
		Key: key, Log: log.logger(), MaxRetryDelay: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningKeeper{log: log, stop: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); r.err = k.Start(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the Keeper's log:\n%s", log)
		}
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("the Keeper did not stop within 10s of its context's end")
		}
	})
	return r
}

// logBuffer collects log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.lines = append(b.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// assertKeyNotIn fails when the log carries any key in a recognisable form.
func assertKeyNotIn(t *testing.T, log string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		for _, form := range []string{string(k), fmt.Sprintf("%x", k), fmt.Sprintf("%v", k), b64(k)} {
			if strings.Contains(log, form) {
				t.Errorf("the log carries a token key:\n%s", log)
			}
		}
	}
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// metricValue is the value of a metric series in controller-runtime's registry
// (what /metrics serves).
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s%v in the registry", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// eventually is testenv.Eventually.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, what, check)
}
