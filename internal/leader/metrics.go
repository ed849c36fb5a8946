package leader

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Term outcomes counted by meetergo_operator_leader_terms_total.
const (
	// OutcomeLost: the term led and could not renew its Lease in time.
	OutcomeLost = "lost"
	// OutcomeFailed: the term's manager stopped with an error (for
	// instance its caches did not sync), whether it led or not.
	OutcomeFailed = "failed"
)

var (
	isLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meetergo_operator_is_leader",
		Help: "1 while this replica runs the MeetergoWebhook reconciler (it holds the leader Lease, or runs without --leader-elect), else 0. The receiver serves either way.",
	})
	termsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_leader_terms_total",
		Help: "Leader terms that ended while the process kept running (the receiver serving on), by outcome: lost (the Lease could not be renewed in time) or failed (the term stopped with an error). A new campaign follows each.",
	}, []string{"outcome"})

	registerOnce sync.Once
)

// registerMetrics adds the metrics to controller-runtime's registry, once
// per process however many loops are made (tests make several).
func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(isLeader, termsEnded)
		// Both series exist from the start, so that rate() and alerts see
		// a zero before the first loss.
		termsEnded.WithLabelValues(OutcomeLost)
		termsEnded.WithLabelValues(OutcomeFailed)
	})
}
