package forward

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Delivery metrics. Labels are bounded: no resource, target, token or
// payload ever becomes a label.
var (
	attemptsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_delivery_attempts_total",
		Help: "POSTs (or tries to find an endpoint) made to targets, by result: success, retryable, permanent.",
	}, []string{"result"})
	deliveriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_delivery_deliveries_total",
		Help: "Deliveries (an event to one target) finished, by outcome: forwarded, dead_lettered, dropped (resource deleted, target removed, dead letter expired).",
	}, []string{"outcome"})
	deliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meetergo_operator_delivery_latency_seconds",
		Help:    "Time from accepting an event to a target's 2xx, retries included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600},
	})
	attemptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meetergo_operator_delivery_attempt_duration_seconds",
		Help:    "Duration of one POST to a target.",
		Buckets: prometheus.DefBuckets,
	})
	deliveriesInState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meetergo_operator_delivery_queue_depth",
		Help: "Deliveries this replica holds, by state: waiting (due now or backing off), running, suspended (resource suspended), dead (dead letters).",
	}, []string{"state"})
	storeRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meetergo_operator_receiver_store_repaired_records_total",
		Help: "Inconsistent records (e.g. a delivery whose event is missing) removed from the store when loading it at start.",
	})
)

func init() {
	metrics.Registry.MustRegister(attemptsTotal, deliveriesTotal, deliveryLatency, attemptDuration, deliveriesInState, storeRepairs)
}
