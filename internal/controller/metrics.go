package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meetergo-operator/meetergo-operator/internal/registration"
)

var (
	companySlots = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meetergo_operator_company_webhook_slots",
		Help: "meetergo webhook slots of a company in use, by holder: this_cluster (resources of this cluster) or others (dashboard, other clusters, orphaned registrations); and the limit.",
	}, []string{"company", "holder"})
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meetergo_operator_reconcile_errors_total",
		Help: "Failed MeetergoWebhook reconciles, by condition reason.",
	}, []string{"reason"})
)

func init() {
	metrics.Registry.MustRegister(companySlots, reconcileErrors)
}

// recordSlots publishes what a slot decision saw.
func (r *MeetergoWebhookReconciler) recordSlots(companyID string, d registration.SlotDecision) {
	companySlots.WithLabelValues(companyID, "this_cluster").Set(float64(len(d.Holders)))
	companySlots.WithLabelValues(companyID, "others").Set(float64(d.Others))
	companySlots.WithLabelValues(companyID, "limit").Set(float64(d.Limit))
}
