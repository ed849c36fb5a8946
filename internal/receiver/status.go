package receiver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// deliveryDelta is what one replica adds to a resource's status.delivery
// since its last update.
type deliveryDelta struct {
	received, forwarded, failed, deadLettered int64
	lastEvent                                 time.Time
	lastError                                 string
}

// merge adds an older delta (one whose update failed) under this one.
func (d *deliveryDelta) merge(older *deliveryDelta) {
	d.received += older.received
	d.forwarded += older.forwarded
	d.failed += older.failed
	d.deadLettered += older.deadLettered
	if older.lastEvent.After(d.lastEvent) {
		d.lastEvent = older.lastEvent
	}
	if d.lastError == "" {
		d.lastError = older.lastError
	}
}

// applyTo adds the delta to a status.
func (d *deliveryDelta) applyTo(s *webhooksv1alpha1.DeliveryStatus) {
	s.Received += d.received
	s.Forwarded += d.forwarded
	s.Failed += d.failed
	s.DeadLettered += d.deadLettered
	if !d.lastEvent.IsZero() && (s.LastEventTime == nil || d.lastEvent.After(s.LastEventTime.Time)) {
		s.LastEventTime = &metav1.Time{Time: d.lastEvent}
	}
	if d.lastError != "" {
		s.LastError = d.lastError
	}
}

// resourceKey identifies a resource incarnation: a resource deleted and
// made again under its name gets figures of its own.
type resourceKey struct {
	types.NamespacedName
	uid string
}

// errRecreated says the resource was deleted and made again meanwhile.
var errRecreated = errors.New("resource recreated")

// statusFlusher adds each replica's figures to status.delivery every
// interval, never per event. Updates carry the resourceVersion read just
// before (optimistic concurrency) and are retried on conflict, so replicas
// and the reconciler, which patches only what it changed, never undo each
// other's writes; only status.delivery is changed.
type statusFlusher struct {
	client   client.Client // writes the status subresource
	reader   client.Reader // reads uncached: the freshest resourceVersion
	interval time.Duration
	log      logr.Logger

	mu      sync.Mutex
	pending map[resourceKey]*deliveryDelta
}

func newStatusFlusher(c client.Client, r client.Reader, interval time.Duration, log logr.Logger) *statusFlusher {
	return &statusFlusher{client: c, reader: r, interval: interval, log: log, pending: map[resourceKey]*deliveryDelta{}}
}

// add changes the pending delta of ev's resource.
func (s *statusFlusher) add(ev *store.Event, change func(*deliveryDelta)) {
	k := resourceKey{types.NamespacedName{Namespace: ev.Namespace, Name: ev.Name}, ev.UID}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.pending[k]
	if d == nil {
		d = &deliveryDelta{}
		s.pending[k] = d
	}
	change(d)
}

// Run updates status every interval until ctx ends, then once more.
func (s *statusFlusher) Run(ctx context.Context) error {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			s.flush(final)
			return nil
		case <-tick.C:
			s.flush(ctx)
		}
	}
}

// flush writes every pending delta; a failed one waits for the next flush.
func (s *statusFlusher) flush(ctx context.Context) {
	s.mu.Lock()
	taken := s.pending
	s.pending = map[resourceKey]*deliveryDelta{}
	s.mu.Unlock()
	for k, d := range taken {
		err := s.write(ctx, k, d)
		switch {
		case err == nil:
			statusUpdatesTotal.WithLabelValues("written").Inc()
		case apierrors.IsNotFound(err) || errors.Is(err, errRecreated):
			statusUpdatesTotal.WithLabelValues("resource_gone").Inc()
		default:
			statusUpdatesTotal.WithLabelValues("failed").Inc()
			s.log.Error(err, "updating status.delivery; the figures go into the next update", "resource", k.NamespacedName)
			s.add(&store.Event{Namespace: k.Namespace, Name: k.Name, UID: k.uid}, func(cur *deliveryDelta) { cur.merge(d) })
		}
	}
}

// write adds d to the resource's status.delivery.
func (s *statusFlusher) write(ctx context.Context, k resourceKey, d *deliveryDelta) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		w := &webhooksv1alpha1.MeetergoWebhook{}
		if err := s.reader.Get(ctx, k.NamespacedName, w); err != nil {
			return err
		}
		if string(w.UID) != k.uid {
			return errRecreated
		}
		d.applyTo(&w.Status.Delivery)
		return s.client.Status().Update(ctx, w)
	})
}
