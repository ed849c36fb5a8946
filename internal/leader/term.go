package leader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/go-logr/logr"
)

// Election configures leader election.
type Election struct {
	// Enabled turns leader election on (--leader-elect).
	Enabled bool
	// Namespace and Name locate the Lease.
	Namespace, Name string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's:
	// non-leaders wait LeaseDuration from the last renewal they saw before
	// taking over; the leader gives up after failing to renew for
	// RenewDeadline; both try every RetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Validate checks what client-go would refuse only once a term starts.
func (e Election) Validate() error {
	if !e.Enabled {
		return nil
	}
	switch {
	case e.Namespace == "":
		return errors.New("leader election needs the operator's namespace (--namespace or $POD_NAMESPACE)")
	case e.Name == "":
		return errors.New("leader election needs a Lease name")
	case e.RetryPeriod <= 0:
		return errors.New("--leader-elect-retry-period must be positive")
	case e.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(e.RetryPeriod)):
		return fmt.Errorf("--leader-elect-renew-deadline (%s) must be greater than %v × --leader-elect-retry-period (%s)", e.RenewDeadline, leaderelection.JitterFactor, e.RetryPeriod)
	case e.LeaseDuration <= e.RenewDeadline:
		return fmt.Errorf("--leader-elect-lease-duration (%s) must be greater than --leader-elect-renew-deadline (%s)", e.LeaseDuration, e.RenewDeadline)
	}
	return nil
}

// Setup registers a term's reconcilers with the term's fresh manager. The
// drain it returns, if not nil, is called once the manager has stopped: it
// stops admitting reconciles and waits for those running, which a manager
// that lost its Lease does not wait for.
type Setup func(ctx context.Context, mgr manager.Manager) (drain func(context.Context) error, err error)

// Options of New.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	Scheme *runtime.Scheme
	// Base is the always-on manager. Terms share its REST mapper, so a term
	// made while the API server is away needs no discovery, and its
	// informer cache, so the leader holds each object once (sharedcache.go);
	// the election's Events ("became leader") are recorded with it.
	Base     manager.Manager
	Election Election
	Setup    Setup
	// DrainTimeout bounds the wait for a stopped term's reconciles
	// (default 30s); the next term campaigns after it either way.
	DrainTimeout time.Duration
	// MinBackoff and MaxBackoff: see Loop.
	MinBackoff, MaxBackoff time.Duration
	Log                    logr.Logger
}

// New returns the loop that runs the reconcilers of Setup in leader terms,
// each with a fresh manager: leader election on (when enabled), metrics
// and probes off (the always-on manager serves them), controller name
// validation off (every term registers the same controllers again).
func New(o Options) (*Loop, error) {
	if err := o.Election.Validate(); err != nil {
		return nil, err
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	t := &managerTerm{opts: o, shared: newSharedCache(o.Base.GetCache(), o.Scheme)}
	if o.Election.Enabled {
		host, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		// One identity for the process: a term that finds the Lease still
		// naming this process (it lost it only because the API server was
		// away) takes it back at once instead of waiting a LeaseDuration.
		// The previous term has stopped by then.
		t.identity = host + "_" + string(uuid.NewUUID())
		cfg := rest.AddUserAgent(rest.CopyConfig(o.Config), "leader-election")
		// A single hung request must not cost the Lease (as controller-runtime
		// and client-go set it).
		cfg.Timeout = max(o.Election.RenewDeadline/2, time.Second)
		if t.leases, err = coordinationv1client.NewForConfig(cfg); err != nil {
			return nil, err
		}
	}
	return &Loop{Term: t.run, Elect: o.Election.Enabled, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, Log: o.Log}, nil
}

// managerTerm runs terms with a fresh controller-runtime manager each.
type managerTerm struct {
	opts     Options
	shared   *sharedCache
	identity string
	leases   coordinationv1client.CoordinationV1Interface
}

func (t *managerTerm) run(ctx context.Context, elected func()) error {
	el := t.opts.Election
	base := t.opts.Base
	tc := t.shared.term()
	defer func() {
		if err := tc.release(); err != nil {
			t.opts.Log.Error(err, "removing the ended term's event handlers")
		}
	}()
	mo := manager.Options{
		Scheme:                 t.opts.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		MapperProvider: func(*rest.Config, *http.Client) (meta.RESTMapper, error) {
			return base.GetRESTMapper(), nil
		},
		// The always-on manager's cache, which the receiver fills already.
		NewCache: func(*rest.Config, cache.Options) (cache.Cache, error) { return tc, nil },
	}
	if el.Enabled {
		// A term begins when the API server answers: its informers then
		// start against a live server instead of backing off through the
		// rest of an outage.
		if err := t.waitForAPI(ctx); err != nil {
			return err
		}
		lock, err := resourcelock.New(resourcelock.LeasesResourceLock, el.Namespace, el.Name, nil, t.leases,
			resourcelock.ResourceLockConfig{
				Identity: t.identity,
				// The old events API, as controller-runtime's own lock uses.
				EventRecorder: base.GetEventRecorderFor(t.identity), //nolint:staticcheck
			})
		if err != nil {
			return err
		}
		mo.LeaderElection = true
		mo.LeaderElectionID = el.Name
		mo.LeaderElectionResourceLockInterface = lock
		mo.LeaderElectionReleaseOnCancel = true
		mo.LeaseDuration, mo.RenewDeadline, mo.RetryPeriod = &el.LeaseDuration, &el.RenewDeadline, &el.RetryPeriod
	}
	mgr, err := manager.New(t.opts.Config, mo)
	if err != nil {
		return fmt.Errorf("creating the term's manager: %w", err)
	}
	drain, err := t.opts.Setup(ctx, mgr)
	if err != nil {
		return fmt.Errorf("setting up the term's reconcilers: %w", err)
	}

	stopped, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-mgr.Elected():
			elected()
		case <-stopped:
			select {
			case <-mgr.Elected():
				elected()
			default:
			}
		}
	}()
	err = mgr.Start(ctx)
	close(stopped)
	<-watched
	if drain != nil {
		dctx, cancel := context.WithTimeout(context.Background(), t.opts.DrainTimeout)
		if derr := drain(dctx); derr != nil {
			t.opts.Log.Error(derr, "reconciles of the ended term still run; campaigning anyway")
		}
		cancel()
	}
	if ctx.Err() != nil {
		return err
	}
	// controller-runtime reports a lost Lease with this message only
	// (errors.New in the manager), possibly inside an aggregate.
	if err != nil && strings.Contains(err.Error(), "leader election lost") {
		return lostError(err)
	}
	return err
}

// waitForAPI returns once the API server serves a read of the Lease (found
// or not), or ctx is done. A refusal counts as not yet: right after a
// restart kube-apiserver answers before its authorizer has loaded the RBAC
// rules, and denies.
func (t *managerTerm) waitForAPI(ctx context.Context) error {
	el := t.opts.Election
	var waiting time.Time
	var last string
	for {
		_, err := t.leases.Leases(el.Namespace).Get(ctx, el.Name, metav1.GetOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			if !waiting.IsZero() {
				t.opts.Log.Info("the API server answers again", "waited", time.Since(waiting).Round(time.Millisecond).String())
			}
			return nil
		}
		if waiting.IsZero() {
			waiting = time.Now()
		}
		if msg := err.Error(); msg != last {
			last = msg
			t.opts.Log.Info("waiting for the API server before campaigning", "error", msg)
		}
		if err := sleepCtx(ctx, el.RetryPeriod); err != nil {
			return err
		}
	}
}
