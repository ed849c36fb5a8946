package receiver

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

func TestTargetsReady(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	ctx := context.Background()
	// ready: port http with a ready endpoint; starting: none ready yet.
	for name, ready := range map[string]bool{"ready": true, "starting": false} {
		g.Expect(k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		g.Expect(k8s.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{targetIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}},
		})).To(Succeed())
	}
	target := func(service string, port intstr.IntOrString) webhooksv1alpha1.Target {
		return webhooksv1alpha1.Target{Service: webhooksv1alpha1.ServiceReference{Name: service, Port: port}}
	}
	cases := []struct {
		name    string
		targets []webhooksv1alpha1.Target
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"no targets", nil, metav1.ConditionTrue, ReasonTargetsReady, "no targets: events are recorded only"},
		{"ready by name and number", []webhooksv1alpha1.Target{target("ready", intstr.FromString("http")), target("ready", intstr.FromInt32(80))},
			metav1.ConditionTrue, ReasonTargetsReady, "2 target Service port(s) have ready endpoints"},
		{"missing Service", []webhooksv1alpha1.Target{target("ready", intstr.FromString("http")), target("missing", intstr.FromString("http"))},
			metav1.ConditionFalse, ReasonServiceNotFound, `Service "missing" not found`},
		{"missing port", []webhooksv1alpha1.Target{target("ready", intstr.FromString("grpc"))},
			metav1.ConditionFalse, ReasonPortNotFound, `Service "ready" has no TCP port "grpc"`},
		{"no ready endpoint", []webhooksv1alpha1.Target{target("starting", intstr.FromString("http"))},
			metav1.ConditionFalse, ReasonNoReadyEndpoints, `Service "starting" has no ready endpoint for port "http"`},
		{"several not ready", []webhooksv1alpha1.Target{target("starting", intstr.FromString("http")), target("missing", intstr.FromInt32(80))},
			metav1.ConditionFalse, ReasonNoReadyEndpoints, `Service "starting" has no ready endpoint for port "http" (and 1 more target(s) not ready)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := &webhooksv1alpha1.MeetergoWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}, Spec: webhooksv1alpha1.MeetergoWebhookSpec{Targets: c.targets}}
			for name, reader := range map[string]client.Reader{"API": k8s, "cache": cached} {
				NewWithT(t).Eventually(func() []string {
					status, reason, message := TargetsReady(ctx, reader, obj)
					return []string{string(status), reason, message}
				}).Should(Equal([]string{string(c.status), c.reason, c.message}), "through the %s", name)
			}
		})
	}
}
