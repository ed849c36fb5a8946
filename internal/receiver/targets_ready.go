package receiver

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/endpoints"
)

// Reasons of the TargetsReady condition.
const (
	ReasonTargetsReady     = "TargetsReady"
	ReasonServiceNotFound  = string(endpoints.ServiceNotFound)
	ReasonPortNotFound     = string(endpoints.PortNotFound)
	ReasonNoReadyEndpoints = string(endpoints.NoReadyEndpoints)
	// ReasonTargetsUnknown: the Services could not be read.
	ReasonTargetsUnknown = "TargetsUnknown"
)

// TargetsReady is the TargetsReady condition of obj: True when every
// target Service exists in obj's namespace, has the port, and has a ready
// endpoint for it; else False with the reason of the first target that is
// not, and a message naming its Service. Unknown when reading fails. c may
// be the manager's cached client or an API reader.
func TargetsReady(ctx context.Context, c client.Reader, obj *webhooksv1alpha1.MeetergoWebhook) (status metav1.ConditionStatus, reason, message string) {
	if len(obj.Spec.Targets) == 0 {
		return metav1.ConditionTrue, ReasonTargetsReady, "no targets: events are recorded only"
	}
	var checked []webhooksv1alpha1.ServiceReference
	var notReady []endpoints.Resolution
	for _, t := range obj.Spec.Targets {
		if slices.Contains(checked, t.Service) {
			continue
		}
		checked = append(checked, t.Service)
		res, err := endpoints.Resolve(ctx, c, obj.Namespace, t.Service.Name, t.Service.Port)
		if err != nil {
			return metav1.ConditionUnknown, ReasonTargetsUnknown, fmt.Sprintf("cannot check Service %q: %v", t.Service.Name, err)
		}
		if res.Problem != "" {
			notReady = append(notReady, res)
		}
	}
	switch len(notReady) {
	case 0:
		return metav1.ConditionTrue, ReasonTargetsReady, fmt.Sprintf("%d target Service port(s) have ready endpoints", len(checked))
	case 1:
		return metav1.ConditionFalse, string(notReady[0].Problem), notReady[0].Message
	}
	return metav1.ConditionFalse, string(notReady[0].Problem),
		fmt.Sprintf("%s (and %d more target(s) not ready)", notReady[0].Message, len(notReady)-1)
}
