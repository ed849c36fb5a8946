// Package receiver is the operator's built-in webhook receiver. It runs on
// every replica (no leader election) and for each MeetergoWebhook:
//
//   - answers meetergo's POSTs to <receiverURL>/hooks/<token>, finding the
//     resource by its derived token through a cache index, and acknowledges
//     an event only once it is durably stored (package store, group commit);
//   - records each event as a Kubernetes Event on the resource, aggregated
//     (package record), and adds to status.delivery every few seconds;
//   - forwards each event byte for byte to the target Services, with retries,
//     dead letters and replays (package forward).
//
// docs/receiver.md describes the whole design and every option.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/record"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
	"github.com/meetergo-operator/meetergo-operator/internal/version"
)

// The receiver reads MeetergoWebhooks, adds to their status.delivery, reads
// the target Services and their EndpointSlices (cluster-wide watches), reads
// signing Secrets uncached, and writes Events.
// +kubebuilder:rbac:groups=webhooks.meetergo-operator.io,resources=meetergowebhooks,verbs=get;list;watch
// +kubebuilder:rbac:groups=webhooks.meetergo-operator.io,resources=meetergowebhooks/status,verbs=update
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create

// EventController is the reportingController of the receiver's Events.
const EventController = "meetergo-receiver"

// Receiver is the receiver of one replica. Setup creates it and adds it to
// the manager, which starts and stops it.
type Receiver struct {
	opts      Options
	log       logr.Logger
	store     *store.Store
	forwarder *forward.Forwarder
	recorder  *record.Recorder
	status    *statusFlusher
	intake    *intake
	limits    *limiter
	listener  net.Listener
	server    *http.Server
	started   atomic.Bool
	refusals  *refusals
}

// Setup creates the receiver and registers with mgr: the token index, the
// informers it reads, the receiver itself (HTTP server, forwarder, Event
// and status writers) as a Runnable that runs on every replica, the
// controller that follows resource changes, and the readiness check
// "receiver" (the store takes writes). It opens the store and binds the
// port at once, so a bad DataDir or a taken port fails here.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) (*Receiver, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	log := mgr.GetLogger().WithName("receiver")
	if opts.bodyLoweredFrom > 0 {
		log.Info("bodies larger than the store can take get 413: --receiver-max-body-bytes lowered; keep --receiver-store-max-bytes at least 16 times the largest body",
			"asked", opts.bodyLoweredFrom, "maxBodyBytes", opts.MaxBodyBytes, "storeMaxBytes", opts.StoreMaxBytes)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &webhooksv1alpha1.MeetergoWebhook{}, tokenIndex, tokensOf(opts.Tokens)); err != nil {
		return nil, fmt.Errorf("receiver: indexing MeetergoWebhooks by token: %w", err)
	}
	// Start these informers with the cache, so the forwarder's first reads
	// are answered from a synced cache.
	for _, obj := range []client.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("receiver: watching %T: %w", obj, err)
		}
	}
	refused := &refusals{hold: storeRefusalHold}
	st, err := store.Open(opts.DataDir, store.Options{MaxBytes: opts.StoreMaxBytes, OnCommit: func(writes int, took time.Duration, err error) {
		observeCommit(writes, took, err)
		if err != nil {
			refused.note(time.Now(), err)
		}
	}})
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	ln, err := net.Listen("tcp", opts.BindAddress)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("receiver: listening on %s: %w", opts.BindAddress, err), st.Close())
	}
	r := newReceiver(mgr, opts, log, st, ln)
	r.refusals = refused
	follow := &resourceSync{reader: mgr.GetClient(), forwarder: r.forwarder, hooks: opts.hooks}
	if err := errors.Join(mgr.Add(r), mgr.AddReadyzCheck("receiver", r.readyCheck), follow.setup(mgr)); err != nil {
		return nil, errors.Join(fmt.Errorf("receiver: registering with the manager: %w", err), ln.Close(), st.Close())
	}
	return r, nil
}

// newReceiver wires the parts together.
func newReceiver(mgr ctrl.Manager, opts Options, log logr.Logger, st *store.Store, ln net.Listener) *Receiver {
	hostname, _ := os.Hostname()
	instance := EventController + "-" + hostname
	instance = instance[:min(len(instance), 128)] // the API's limit
	r := &Receiver{opts: opts, log: log, store: st, listener: ln}
	r.recorder = record.New(mgr.GetClient(), record.Options{
		Interval: opts.EventInterval, Controller: EventController, Instance: instance,
		OnWrite: observeEventWrite, Log: log.WithName("events"),
	})
	r.status = newStatusFlusher(mgr.GetClient(), mgr.GetAPIReader(), opts.StatusFlushInterval, log.WithName("status"))
	r.forwarder = forward.New(forward.Config{
		Store: st, Client: mgr.GetClient(), Secrets: mgr.GetAPIReader(),
		Reporter:    &reporter{recorder: r.recorder, status: r.status},
		DialContext: opts.DialContext, Proxy: opts.Proxy, Workers: opts.Workers,
		RetryBaseDelay: opts.RetryBaseDelay, RetryMaxDelay: opts.RetryMaxDelay, DeadLetterRetention: opts.DeadLetterRetention,
		UserAgent: "meetergo-operator/" + version.Version, Log: log.WithName("forward"),
	})
	if opts.RateLimit > 0 {
		r.limits = newLimiter(opts.RateLimit, opts.RateBurst)
	}
	rt := &router{cache: mgr.GetCache(), tokens: opts.Tokens, grace: opts.TokenGracePeriod, now: time.Now}
	r.intake = &intake{log: log, store: st, forwarder: r.forwarder, recorder: r.recorder, status: r.status, dedupWindow: opts.DedupWindow, now: time.Now,
		keptMaxEvents: opts.KeptMaxEvents, keptMaxBytes: opts.KeptMaxBytes}
	h := &handler{
		lookup: rt.lookup, limits: r.limits, maxBody: opts.MaxBodyBytes, bodyTimeout: opts.BodyReadTimeout, log: log,
		intake: r.intake, largeReads: make(chan struct{}, opts.LargeBodyReads), hooks: opts.hooks,
	}
	r.server = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		// The body deadline is set per request (BodyReadTimeout); the
		// answer follows the commit, well within this.
		WriteTimeout:   opts.BodyReadTimeout + 30*time.Second,
		IdleTimeout:    90 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logr.ToSlogHandler(log.WithName("http")), slog.LevelInfo),
	}
	return r
}

// Addr is the address the receiver listens on.
func (r *Receiver) Addr() net.Addr { return r.listener.Addr() }

// NeedLeaderElection is false: every replica receives and forwards.
func (r *Receiver) NeedLeaderElection() bool { return false }

// Start runs the receiver until ctx ends (it implements manager.Runnable),
// then shuts down in order: stop taking requests and finish those under
// way; let attempts under way finish; write the last Events and status
// figures; close the store.
func (r *Receiver) Start(ctx context.Context) error {
	defer func() { _ = r.store.Close() }()
	if h := r.opts.hooks; h != nil && h.beforeLoad != nil {
		h.beforeLoad(ctx)
	}
	if err := r.forwarder.Load(); err != nil {
		_ = r.listener.Close()
		return fmt.Errorf("receiver: loading pending deliveries: %w", err)
	}
	background := context.WithoutCancel(ctx)
	reporting, stopReporting := context.WithCancel(background)
	forwarding, stopForwarding := context.WithCancel(background)
	var reporters, forwarders sync.WaitGroup
	reporters.Go(func() { _ = r.recorder.Run(reporting) })
	reporters.Go(func() { _ = r.status.Run(reporting) })
	forwarders.Go(func() { _ = r.forwarder.Run(forwarding) })
	forwarders.Go(func() { r.maintain(forwarding) })

	served := make(chan error, 1)
	go func() { served <- r.server.Serve(r.listener) }()
	r.started.Store(true)
	r.log.Info("receiving", "address", r.listener.Addr().String())

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("receiver: serving: %w", err)
	}
	r.started.Store(false)
	shutdown, cancel := context.WithTimeout(background, r.opts.ShutdownTimeout)
	defer cancel()
	if serr := r.server.Shutdown(shutdown); serr != nil {
		r.log.Error(serr, "requests still under way at shutdown were cut off")
	}
	stopForwarding()
	forwarders.Wait()
	stopReporting()
	reporters.Wait()
	r.log.Info("receiver stopped")
	return err
}

// maintain sweeps expired duplicate keys and idle rate limits, and samples
// the store size, every minute.
func (r *Receiver) maintain(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		now := time.Now()
		for {
			n, err := r.store.SweepDedup(ctx, now, 1000)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error(err, "forgetting expired duplicate keys")
				}
				break
			}
			if n < 1000 {
				break
			}
		}
		if r.limits != nil {
			r.limits.prune(now.Add(-time.Minute))
		}
		storeBytes.Set(float64(r.store.Size()))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readyCheck fails until the receiver serves, whenever the store cannot
// take a write, and for storeRefusalHold after it refused one.
func (r *Receiver) readyCheck(req *http.Request) error {
	if !r.started.Load() {
		return errors.New("receiver not started")
	}
	if err := r.refusals.recent(time.Now()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if err := r.store.Ping(ctx); err != nil {
		return fmt.Errorf("receiver store: %w", err)
	}
	return nil
}

// storeRefusalHold is how long the ready check fails after the store
// refused a write. A full store (StoreMaxBytes, or a full disk) still takes
// the ready check's small write in the pages an event just freed, while
// events of a few KB get 503: without this the replica would stay in the
// Service and refuse meetergo's events. After the hold the replica is
// ready again and takes events if the store has room by then; if not, it
// refuses them and steps out once more.
const storeRefusalHold = 30 * time.Second

// refusals remembers the store's last failed commit.
type refusals struct {
	hold time.Duration
	last atomic.Pointer[refusal]
}

type refusal struct {
	at  time.Time
	err error
}

func (f *refusals) note(at time.Time, err error) { f.last.Store(&refusal{at: at, err: err}) }

// recent returns an error if a commit failed within the hold before now.
func (f *refusals) recent(now time.Time) error {
	if f == nil {
		return nil
	}
	if l := f.last.Load(); l != nil && now.Sub(l.at) < f.hold {
		return fmt.Errorf("receiver store: refused a write %s ago: %w", now.Sub(l.at).Round(time.Millisecond), l.err)
	}
	return nil
}
