package receiver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Receiver metrics (the delivery ones are in package forward). Labels are
// bounded: event types are the known ones or "unknown", outcomes a fixed
// set; no token, resource name or payload ever becomes a label.
var (
	eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_receiver_events_total",
		Help: "Requests to the receiver by event type (none before the body is read or when it names none) and outcome: accepted, kept (a body that could not be read, or of an unknown type: acknowledged and kept as a dead letter), kept_dropped (such a body acknowledged but not stored: its resource keeps as many as it may), duplicate, unsubscribed, not_found, method_not_allowed, too_large, timeout, bad_request, forbidden, rate_limited, unavailable.",
	}, []string{"type", "outcome"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meetergo_operator_receiver_request_duration_seconds",
		Help:    "Time from request to answer, by outcome; for accepted events it includes the durable commit.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"outcome"})
	commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meetergo_operator_receiver_store_commit_duration_seconds",
		Help:    "Duration of one store transaction with its fsync (group commit).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5},
	})
	commitWrites = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meetergo_operator_receiver_store_commit_writes",
		Help:    "Writes (events accepted, delivery states) that shared one store commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11),
	})
	commitFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meetergo_operator_receiver_store_commit_failures_total",
		Help: "Store commits that failed (the requests in them were answered 503).",
	})
	storeBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meetergo_operator_receiver_store_bytes",
		Help: "Size of the store file.",
	})
	kubeEventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_receiver_kube_events_total",
		Help: "Kubernetes Events written, by result (written, failed); one Event may stand for many occurrences.",
	}, []string{"result"})
	kubeEventOccurrences = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meetergo_operator_receiver_kube_event_occurrences_total",
		Help: "Occurrences (events received, deliveries failed) carried by the Kubernetes Events written.",
	})
	statusUpdatesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_receiver_status_updates_total",
		Help: "Updates of status.delivery, by result: written, resource_gone, failed (retried at the next flush).",
	}, []string{"result"})
)

func init() {
	metrics.Registry.MustRegister(eventsTotal, requestDuration, commitDuration, commitWrites, commitFailures,
		storeBytes, kubeEventsTotal, kubeEventOccurrences, statusUpdatesTotal)
}

// observeCommit records a store commit.
func observeCommit(writes int, took time.Duration, err error) {
	commitDuration.Observe(took.Seconds())
	commitWrites.Observe(float64(writes))
	if err != nil {
		commitFailures.Inc()
	}
}

// observeEventWrite records a Kubernetes Event write.
func observeEventWrite(occurrences int, err error) {
	if err != nil {
		kubeEventsTotal.WithLabelValues("failed").Inc()
		return
	}
	kubeEventsTotal.WithLabelValues("written").Inc()
	kubeEventOccurrences.Add(float64(occurrences))
}
