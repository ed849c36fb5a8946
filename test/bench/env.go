package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/loopbackproxy"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// The receiver runs measure the operator binary as a separate process, as
// the demo and the end-to-end tests run it: a real kube-apiserver and etcd,
// the fake meetergo, and targets on 127.0.0.1 reached through Services
// whose EndpointSlices name never-routed 192.0.2.x addresses, mapped back
// to 127.0.0.1 by the loopback proxy set as the operator's HTTP_PROXY.
const (
	benchNamespace = "bench"
	benchToken     = "rgo-bench-receiver-0123456789abcdef"
	benchCompany   = "c0ffee00-0000-4000-8000-0000000be7c0"
	benchUser      = "a11ce000-0000-4000-8000-0000000be7c1"
	signingKey     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	tokenKey       = "bench-receiver-token-key-0123456789abcdef"
)

// opEnv is a control plane, the fake meetergo, the loopback proxy and the
// operator process.
type opEnv struct {
	k8s      *testenv.Env
	mg       *fake.Server
	mgURL    string
	proxyURL string
	targets  *targetProxy
	dir      string
	tokens   *token.Deriver
	rcvAddr  string
	probe    string
	metrics  string
	op       *exec.Cmd
	exited   chan struct{}
	cleanup  []func()
	// unregister removes stop from the interrupt handlers.
	unregister func()
}

func startOpEnv() (_ *opEnv, err error) {
	e := &opEnv{}
	e.unregister = onInterrupt(e.stop)
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "meetergo-bench-rcv-"); err != nil {
		return nil, err
	}
	if e.tokens, err = token.NewDeriver([]byte(tokenKey)); err != nil {
		return nil, err
	}
	if e.k8s, err = testenv.Start(); err != nil {
		return nil, err
	}
	e.cleanup = append(e.cleanup, func() { _ = e.k8s.Stop() })
	e.mg, err = fake.New(fake.Options{Seed: fake.Seed{
		Companies:   []fake.Company{{ID: benchCompany, Name: "Bench GmbH (fake)"}},
		Users:       []fake.User{{ID: benchUser, CompanyID: benchCompany, Email: "bench@bench.example.test", IsAdmin: true}},
		Credentials: []fake.Credential{{Token: benchToken, UserID: benchUser}},
	}})
	if err != nil {
		return nil, err
	}
	mg := httptest.NewServer(e.mg)
	e.mgURL = mg.URL
	e.cleanup = append(e.cleanup, func() { e.mg.Close(); mg.Close() })
	lp, err := loopbackproxy.New("192.0.2.0/24")
	if err != nil {
		return nil, err
	}
	e.targets = &targetProxy{lp: lp, direct: map[string]http.Handler{}}
	proxy := httptest.NewServer(e.targets)
	e.proxyURL = proxy.URL
	e.cleanup = append(e.cleanup, proxy.Close)
	if e.rcvAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if e.probe, err = freeAddr(); err != nil {
		return nil, err
	}
	if e.metrics, err = freeAddr(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	c := e.k8s.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}); err != nil {
		return nil, err
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "meetergo-api"}, StringData: map[string]string{"token": benchToken}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "meetergo-signing"}, StringData: map[string]string{"secret": signingKey}},
	} {
		if err := c.Create(ctx, s); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// startOperator starts the operator binary with its receiver on rcvAddr.
func (e *opEnv) startOperator(manager string, env ...string) error {
	keyFile := filepath.Join(e.dir, "token.key")
	if err := os.WriteFile(keyFile, []byte(tokenKey), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "operator.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(manager,
		"--kubeconfig", e.k8s.KubeconfigPath,
		"--health-probe-bind-address", e.probe,
		"--metrics-bind-address", e.metrics, "--metrics-secure=false",
		"--meetergo-api-url", e.mgURL,
		"--receiver-bind-address", e.rcvAddr,
		"--receiver-public-url", "http://"+e.rcvAddr,
		"--allow-insecure-http",
		"--data-dir", filepath.Join(e.dir, "data"),
		"--token-key-file", keyFile,
		"--zap-log-level", "error")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HTTP_PROXY="+e.proxyURL, "http_proxy="+e.proxyURL, "NO_PROXY=", "no_proxy=")
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	e.op, e.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(e.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + e.probe + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-e.exited:
			return fmt.Errorf("the operator exited during start-up; see %s", filepath.Join(e.dir, "operator.log"))
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("the operator is not ready after 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *opEnv) pid() int { return e.op.Process.Pid }

// stopOperator ends the operator with SIGTERM (SIGKILL after 15 s).
func (e *opEnv) stopOperator() {
	if e.op == nil {
		return
	}
	_ = e.op.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(15 * time.Second):
		_ = e.op.Process.Kill()
		<-e.exited
	}
	e.op = nil
}

func (e *opEnv) stop() {
	if e.unregister != nil {
		e.unregister()
	}
	e.stopOperator()
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// service makes the selectorless Service name (port "http": 80) whose
// EndpointSlice names addr (192.0.2.x) with port, the real port of a
// server on 127.0.0.1.
func (e *opEnv) service(ctx context.Context, name, addr string, port int) error {
	c := e.k8s.Client
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP,
		}}},
	}
	if err := c.Create(ctx, svc); err != nil {
		return err
	}
	return c.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	})
}

// targetProxy is the operator's HTTP_PROXY. Requests for a target
// registered with serve are answered here, by the target's handler: the
// operator's connection to the proxy stands for its connection to the
// pod, and no second hop costs CPU on the machine under test. Anything
// else goes through the loopback proxy (192.0.2.x to 127.0.0.1).
type targetProxy struct {
	lp     http.Handler
	mu     sync.RWMutex
	direct map[string]http.Handler // endpoint host:port
}

func (p *targetProxy) serve(hostport string, h http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.direct[hostport] = h
}

func (p *targetProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.RLock()
	h := p.direct[r.URL.Host]
	p.mu.RUnlock()
	if h != nil && r.URL.IsAbs() {
		h.ServeHTTP(w, r)
		return
	}
	p.lp.ServeHTTP(w, r)
}

// target makes the Service name (port "http": 80) whose EndpointSlice names
// addr:8080, served by h at the proxy.
func (e *opEnv) target(ctx context.Context, name, addr string, h http.Handler) error {
	e.targets.serve(addr+":8080", h)
	return e.service(ctx, name, addr, 8080)
}

// webhook makes a MeetergoWebhook for booking_created with the given
// target Services, waits until the reconciler has registered it (so
// status.companyID is set) and the receiver knows its token, and returns
// its receiver path.
func (e *opEnv) webhook(ctx context.Context, name string, services ...string) (*webhooksv1alpha1.MeetergoWebhook, string, error) {
	c := e.k8s.Client
	o := &webhooksv1alpha1.MeetergoWebhook{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name},
		Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes:  []webhooksv1alpha1.EventType{webhooksv1alpha1.EventBookingCreated},
			Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
			Delivery: webhooksv1alpha1.DeliverySpec{
				SigningSecretRef: &webhooksv1alpha1.SecretKeyReference{Name: "meetergo-signing", Key: "secret"},
			},
		},
	}
	for _, s := range services {
		o.Spec.Targets = append(o.Spec.Targets, webhooksv1alpha1.Target{
			Service: webhooksv1alpha1.ServiceReference{Name: s, Port: intstr.FromString("http")}, Path: "/" + s,
		})
	}
	if err := c.Create(ctx, o); err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			return nil, "", err
		}
		if apimeta.IsStatusConditionTrue(o.Status.Conditions, webhooksv1alpha1.ConditionRegistered) && o.Status.CompanyID != "" {
			break
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("%s not registered after 60 s: %+v", name, o.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	path := token.PathPrefix + e.tokens.Token(string(o.UID), o.Status.TokenGeneration)
	// The receiver knows the token once a GET is refused with 405, not 404.
	for {
		resp, err := http.Get("http://" + e.rcvAddr + path)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed {
				return o, path, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("the receiver does not know %s after 60 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setSuspend suspends or resumes a resource: while suspended, its events
// are accepted and stored, and their deliveries wait.
func (e *opEnv) setSuspend(ctx context.Context, o *webhooksv1alpha1.MeetergoWebhook, suspend bool) error {
	patch := client.MergeFrom(o.DeepCopy())
	o.Spec.Suspend = suspend
	return e.k8s.Client.Patch(ctx, o, patch)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// logTail returns the end of the operator's log, for error messages.
func (e *opEnv) logTail() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "operator.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}
