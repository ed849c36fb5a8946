// Package forward delivers stored events to the target Services of their
// MeetergoWebhook: it resolves each target through its EndpointSlices,
// POSTs the original body with Standard Webhooks headers, retries with
// exponential backoff and full jitter, keeps what still fails as a dead
// letter, and replays dead letters on request.
//
// Every delivery (one event, one target) lives in the store; the Forwarder
// mirrors them in memory and schedules the waiting ones by due time. A
// delivery's state in the store changes only after the attempt it records,
// so a crash at any point repeats at most that attempt (at-least-once,
// with a stable webhook-id targets can deduplicate on).
package forward

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/endpoints"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// Defaults of Config.
const (
	DefaultWorkers             = 32
	DefaultRetryBaseDelay      = time.Second
	DefaultRetryMaxDelay       = 5 * time.Minute
	DefaultDeadLetterRetention = 7 * 24 * time.Hour
	// defaultTimeout and defaultMaxAttempts apply when the resource's
	// (API-defaulted) spec.delivery leaves them unset.
	defaultTimeout     = 10 * time.Second
	defaultMaxAttempts = 12
	// drainTimeout is how long attempts under way may go on after Run's
	// context ends; then they are cancelled and recorded as failed attempts.
	drainTimeout = 10 * time.Second
)

// Reporter is told what happens to deliveries, for status figures and
// Kubernetes Events. Its methods must not block.
type Reporter interface {
	// Forwarded: target acknowledged ev with 2xx.
	Forwarded(ev *store.Event, target string)
	// Failed: an attempt failed; lastError names target and status.
	Failed(ev *store.Event, lastError string)
	// DeadLettered: the delivery gave up after attempts and is kept.
	DeadLettered(ev *store.Event, lastError string, attempts int)
	// Replayed: n dead letters of w were queued again for value of the
	// replay annotation.
	Replayed(w *webhooksv1alpha1.MeetergoWebhook, n int, value string)
}

// Config is what a Forwarder needs.
type Config struct {
	// Store holds the deliveries.
	Store *store.Store
	// Client reads MeetergoWebhooks, Services and EndpointSlices (the
	// manager's cache).
	Client client.Reader
	// Secrets reads signing Secrets (uncached).
	Secrets client.Reader
	// Reporter is told outcomes.
	Reporter Reporter
	// DialContext opens connections; nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy picks a proxy per request; nil means http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// Workers is how many attempts run at once.
	Workers int
	// RetryBaseDelay and RetryMaxDelay bound the backoff between attempts.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// DeadLetterRetention is how long a dead letter is kept for a replay.
	DeadLetterRetention time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// Log receives one line per failed attempt and per dead letter.
	Log logr.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.RetryBaseDelay <= 0 {
		c.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if c.RetryMaxDelay <= 0 {
		c.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if c.DeadLetterRetention <= 0 {
		c.DeadLetterRetention = DefaultDeadLetterRetention
	}
	if c.DialContext == nil {
		c.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if c.Proxy == nil {
		c.Proxy = http.ProxyFromEnvironment
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Forwarder delivers events. Create it with New, call Load once, then Run.
type Forwarder struct {
	cfg    Config
	now    func() time.Time
	client *http.Client
	keys   *signingKeys
	q      *queue
	// locks serialise the work on one resource's deliveries that reads
	// and then changes them (Sync, the expiry sweep, replays).
	locks resourceLocks
	// loaded is closed when Load has returned; loadErr is its error. Sync
	// waits for it: before it the queue does not show what the store holds.
	loaded  chan struct{}
	loadErr error
}

// New returns a Forwarder.
func New(cfg Config) *Forwarder {
	cfg.defaults()
	transport := &http.Transport{
		Proxy:       cfg.Proxy,
		DialContext: cfg.DialContext,
		// Every worker may hold a connection to the same endpoint.
		MaxIdleConns:        4 * cfg.Workers,
		MaxIdleConnsPerHost: cfg.Workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Forwarder{
		cfg: cfg,
		now: cfg.Now,
		client: &http.Client{
			Transport: transport,
			// A redirect is an answer: the target is misconfigured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		keys:   &signingKeys{reader: cfg.Secrets, now: cfg.Now, keys: map[webhooksv1alpha1.SecretKeyReference]map[string]signingKey{}},
		q:      newQueue(),
		loaded: make(chan struct{}),
	}
}

// Load reads the deliveries left in the store (after a restart) into the
// schedule. Call it once, before Enqueue; Sync waits until it has returned
// (and fails if it failed). A record the store cannot use (a delivery
// without its event, say) does not stop it: the store removes it, and
// Load logs and counts it.
func (f *Forwarder) Load() (err error) {
	defer func() {
		f.loadErr = err
		close(f.loaded)
	}()
	events := map[uint64]*store.Event{}
	return f.cfg.Store.LoadRepairing(func(ev store.Event, d store.Delivery) {
		e := events[ev.Seq]
		if e == nil {
			e = &ev
			events[ev.Seq] = e
		}
		f.q.add(e, d)
	}, func(r store.Repair) {
		storeRepairs.Inc()
		f.cfg.Log.Info("removed an inconsistent record from the store", "record", r.Record, "problem", r.Problem)
	})
}

// Loaded is closed once Load has returned.
func (f *Forwarder) Loaded() <-chan struct{} { return f.loaded }

// Enqueue schedules the deliveries of a just-accepted event, one per
// target, due at once.
func (f *Forwarder) Enqueue(ev store.Event, targets []string) {
	e := &ev
	for _, t := range targets {
		f.q.add(e, store.Delivery{Key: store.Key{Seq: ev.Seq, Target: t}, Due: ev.ReceivedAt})
	}
}

// Run delivers until ctx ends. Attempts under way then may finish for a
// few seconds more; each outcome is recorded before Run returns.
func (f *Forwarder) Run(ctx context.Context) error {
	inflight, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	context.AfterFunc(ctx, func() { time.AfterFunc(drainTimeout, cancel) })
	work := make(chan *item)
	var wg sync.WaitGroup
	for range f.cfg.Workers {
		wg.Go(func() {
			for it := range work {
				f.process(inflight, it)
			}
		})
	}
	wg.Go(func() { f.maintain(ctx) })
	for {
		it, ok := f.q.next(ctx, f.now)
		if !ok {
			break
		}
		select {
		case work <- it:
		case <-ctx.Done():
			f.settle(ctx, it, waiting, it.d)
		}
	}
	close(work)
	wg.Wait()
	return nil
}

// process makes one attempt at a due delivery and records its outcome.
func (f *Forwarder) process(ctx context.Context, it *item) {
	ev, d := it.ev, it.d
	if d.Target == KeptTarget {
		// A kept event is never attempted, only read again at a replay;
		// it is never scheduled (this is a guard).
		f.settle(ctx, it, dead, d)
		return
	}
	w := &webhooksv1alpha1.MeetergoWebhook{}
	err := f.cfg.Client.Get(ctx, it.resource(), w)
	switch {
	case apierrors.IsNotFound(err) || err == nil && string(w.UID) != ev.UID:
		f.drop(ctx, it, "resource deleted")
		return
	case err != nil:
		f.cfg.Log.Error(err, "reading the MeetergoWebhook of a delivery; trying again later", "resource", it.resource())
		d.Due = f.now().Add(f.cfg.RetryBaseDelay)
		f.settle(ctx, it, waiting, d)
		return
	case w.Spec.Suspend:
		f.settle(ctx, it, suspended, d)
		return
	}
	target, ok := findTarget(w, d.Target, ev.Type)
	if !ok {
		f.drop(ctx, it, "target removed")
		return
	}

	o := f.attempt(ctx, w, target, ev)
	d.Attempts++
	attemptsTotal.WithLabelValues(o.verdict.String()).Inc()
	if o.verdict == success {
		f.finish(ctx, it, d)
		return
	}
	d.LastError = "target " + d.Target + ": " + o.problem
	f.cfg.Reporter.Failed(ev, d.LastError)
	maxAttempts := int(w.Spec.Delivery.MaxAttempts)
	if maxAttempts <= 0 {
		maxAttempts = defaultMaxAttempts
	}
	if o.verdict == retryable && d.Attempts < maxAttempts {
		d.Due = f.now().Add(backoff(d.Attempts, f.cfg.RetryBaseDelay, f.cfg.RetryMaxDelay, o.retryAfter, jitter))
		f.cfg.Log.V(1).Info("delivery attempt failed; will retry", "resource", it.resource(), "webhookID", ev.ID,
			"target", d.Target, "problem", o.problem, "attempt", d.Attempts, "next", d.Due)
		if err := f.cfg.Store.Reschedule(ctx, d); err != nil {
			f.cfg.Log.Error(err, "recording a failed attempt", "resource", it.resource(), "webhookID", ev.ID)
		}
		f.settle(ctx, it, waiting, d)
		return
	}
	f.bury(ctx, it, d, o.problem)
}

// attempt resolves the target and offers it the event.
func (f *Forwarder) attempt(ctx context.Context, w *webhooksv1alpha1.MeetergoWebhook, t webhooksv1alpha1.Target, ev *store.Event) outcome {
	res, err := endpoints.Resolve(ctx, f.cfg.Client, w.Namespace, t.Service.Name, t.Service.Port)
	if err != nil {
		return outcome{verdict: retryable, problem: "cannot read the Service or its EndpointSlices"}
	}
	if res.Problem != "" {
		return outcome{verdict: retryable, problem: res.Message}
	}
	body, err := f.cfg.Store.Body(ev.Seq)
	if err != nil {
		return outcome{verdict: permanent, problem: "event body missing from the store"}
	}
	key, err := f.keys.get(ctx, w)
	if err != nil {
		return outcome{verdict: retryable, problem: err.Error()}
	}
	timeout := defaultTimeout
	if d := w.Spec.Delivery.Timeout; d != nil && d.Duration > 0 {
		timeout = d.Duration
	}
	path := t.Path
	if path == "" {
		path = "/"
	}
	return f.post(ctx, request{
		addresses: res.Addresses,
		path:      path,
		header:    headers(ev, f.cfg.UserAgent, key, f.now().Unix(), body),
		body:      body,
		timeout:   timeout,
	})
}

// finish records a delivered event.
func (f *Forwarder) finish(ctx context.Context, it *item, d store.Delivery) {
	if err := f.cfg.Store.Finish(ctx, d.Key); err != nil {
		// It was delivered; after a restart it would be delivered again,
		// with the same webhook-id.
		f.cfg.Log.Error(err, "recording a delivery", "resource", it.resource(), "webhookID", it.ev.ID)
	}
	f.q.settle(it, gone, d) // delivered, dropped meanwhile or not
	deliveriesTotal.WithLabelValues("forwarded").Inc()
	deliveryLatency.Observe(f.now().Sub(it.ev.ReceivedAt).Seconds())
	f.cfg.Reporter.Forwarded(it.ev, d.Target)
}

// bury keeps a delivery that gave up as a dead letter.
func (f *Forwarder) bury(ctx context.Context, it *item, d store.Delivery, problem string) {
	d.DeadAt = f.now()
	f.cfg.Log.Info("delivery failed; kept as a dead letter", "resource", it.resource(), "webhookID", it.ev.ID,
		"target", d.Target, "problem", problem, "attempts", d.Attempts)
	if err := f.cfg.Store.Bury(ctx, d); err != nil {
		f.cfg.Log.Error(err, "recording a dead letter", "resource", it.resource(), "webhookID", it.ev.ID)
	}
	if f.settle(ctx, it, dead, d) {
		deliveriesTotal.WithLabelValues("dead_lettered").Inc()
		f.cfg.Reporter.DeadLettered(it.ev, d.LastError, d.Attempts)
	}
}

// settle moves a running item on (see queue.settle); if its resource went
// away during the attempt, it deletes it instead and says false.
func (f *Forwarder) settle(ctx context.Context, it *item, to state, d store.Delivery) bool {
	if f.q.settle(it, to, d) {
		return true
	}
	f.forget(ctx, []*item{it}, "resource deleted")
	return false
}

// drop forgets a running delivery that can no longer happen.
func (f *Forwarder) drop(ctx context.Context, it *item, why string) {
	f.q.settle(it, gone, it.d)
	f.forget(ctx, []*item{it}, why)
}

// forget deletes deliveries already taken out of the queue.
func (f *Forwarder) forget(ctx context.Context, items []*item, why string) {
	if len(items) == 0 {
		return
	}
	keys := make([]store.Key, len(items))
	for i, it := range items {
		keys[i] = it.d.Key
	}
	if err := f.cfg.Store.Finish(ctx, keys...); err != nil {
		f.cfg.Log.Error(err, "deleting dropped deliveries", "resource", items[0].resource())
	}
	deliveriesTotal.WithLabelValues("dropped").Add(float64(len(items)))
	f.cfg.Log.Info("dropped deliveries", "resource", items[0].resource(), "count", len(items), "reason", why)
}
