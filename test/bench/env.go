package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// The receiver runs measure the operator binary as a separate process, in
// the local environment the demo and the end-to-end tests run it in
// (internal/localenv): a real kube-apiserver and etcd, the fake meetergo,
// and targets on 127.0.0.1 reached through Services whose EndpointSlices
// name never-routed 192.0.2.x addresses, the operator's HTTP_PROXY being
// the harness's targetProxy in front of localenv's loopback proxy. Its
// company, credential, signing key and token key are localenv's.
const benchNamespace = "bench"

// opEnv is localenv's environment with the bench's targets served at the
// proxy and a "meetergo-api" Secret in benchNamespace.
type opEnv struct {
	*localenv.Env
	targets *targetProxy
	tokens  *token.Deriver
	// unregister removes stop from the interrupt handlers.
	unregister func()
}

// startOpEnv starts everything but the operator (StartOperator starts
// manager, StartOperatorBinary another build).
func startOpEnv(manager string) (_ *opEnv, err error) {
	e := &opEnv{targets: &targetProxy{direct: map[string]http.Handler{}}}
	if e.tokens, err = token.NewDeriver([]byte(localenv.TokenKey)); err != nil {
		return nil, err
	}
	e.Env, err = localenv.Start(localenv.Options{
		Manager:   manager,
		Namespace: benchNamespace,
		ExtraArgs: []string{"--zap-log-level", "error",
			// Room for every event of a saturation phase, whose deliveries are
			// held: the run measures ingest, not the full store's 503s.
			"--receiver-store-max-bytes", "4294967296"},
		Proxy: func(lp http.Handler) http.Handler {
			e.targets.lp = lp
			return e.targets
		},
	})
	if err != nil {
		return nil, err
	}
	e.unregister = onInterrupt(e.stop)
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	err = e.K8s.Client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "meetergo-api"},
		StringData: map[string]string{"token": localenv.Token}})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *opEnv) stop() {
	if e.unregister != nil {
		e.unregister()
	}
	e.Stop()
}

// logTail returns the end of the operator's log, for error messages.
func (e *opEnv) logTail() string { return localenv.Tail(e.OperatorLog, 10) }

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
	return e.Service(ctx, name, addr, 8080)
}

// webhook makes a MeetergoWebhook for booking_created with the given
// target Services, waits until the reconciler has registered it (so
// status.companyID is set) and the receiver knows its token, and returns
// its receiver path.
func (e *opEnv) webhook(ctx context.Context, name string, services ...string) (*webhooksv1alpha1.MeetergoWebhook, string, error) {
	c := e.K8s.Client
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
		resp, err := http.Get(e.ReceiverURL + path)
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
	return e.K8s.Client.Patch(ctx, o, patch)
}
