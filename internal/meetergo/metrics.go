package meetergo

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus collectors. Labels are the operation,
// the status class and the list's wrapping key (a fixed set) only: never a
// credential, a company or a webhook id.
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	budgetWait  *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	retries     *prometheus.CounterVec
	listWrapped *prometheus.CounterVec
}

const metricsPrefix = "meetergo_operator_api_"

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "requests_total",
			Help: "HTTP requests sent to meetergo, by operation and status class (2xx, 4xx, 5xx, or error when no answer came).",
		}, []string{"operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricsPrefix + "request_duration_seconds",
			Help:    "Duration of one HTTP request to meetergo, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.025, 2, 10),
		}, []string{"operation"}),
		budgetWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricsPrefix + "rate_limit_wait_seconds",
			Help:    "Time a call waited for its credential's local rate budget (including pauses after a 429), by operation.",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120},
		}, []string{"operation"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "rate_limited_total",
			Help: "429 Too Many Requests answers received from meetergo, by operation.",
		}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "retries_total",
			Help: "Requests to meetergo sent again after a 429, a 5xx or a transport failure, by operation.",
		}, []string{"operation"}),
		listWrapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "list_wrapped_total",
			Help: "Webhook lists meetergo answered as an object wrapping the array instead of a bare array, by the key that held it (data, items, webhooks, results, or other).",
		}, []string{"key"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests = register(reg, m.requests, &err)
	m.latency = register(reg, m.latency, &err)
	m.budgetWait = register(reg, m.budgetWait, &err)
	m.rateLimited = register(reg, m.rateLimited, &err)
	m.retries = register(reg, m.retries, &err)
	m.listWrapped = register(reg, m.listWrapped, &err)
	return m, err
}

// register registers c, or returns the collector already registered under
// its name, so two clients can share one registry. The first failure is
// kept in *errp.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}

// codeClass is the "code" label: 2xx, 4xx, 5xx, or error without an answer.
func codeClass(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}
