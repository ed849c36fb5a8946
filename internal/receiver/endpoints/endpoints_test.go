package endpoints

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

const ns = "team"

func service(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Type: typ, Ports: ports}}
}

func slice(name, svc string, family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: family, Ports: ports, Endpoints: eps,
	}
}

func port(name string, n int32) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Port: ptr.To(n), Protocol: ptr.To(corev1.ProtocolTCP)}
	if name != "" {
		p.Name = ptr.To(name)
	}
	return p
}

func endpoint(ready *bool, addrs ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestResolve(t *testing.T) {
	objs := []client.Object{
		// crm: named port http (80 -> 8080 in the slices), also metrics.
		service("crm", "", corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "metrics", Port: 9090}),
		slice("crm-a", "crm", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080), port("metrics", 9090)},
			endpoint(ptr.To(true), "192.0.2.1"), endpoint(nil, "192.0.2.2"), endpoint(ptr.To(false), "192.0.2.3")),
		slice("crm-b", "crm", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{port("http", 8080)},
			endpoint(ptr.To(true), "2001:db8::1")),
		// The same endpoint in two slices (during a slice rebalance) counts once.
		slice("crm-c", "crm", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)},
			endpoint(ptr.To(true), "192.0.2.1")),
		slice("crm-fqdn", "crm", discoveryv1.AddressTypeFQDN, []discoveryv1.EndpointPort{port("http", 8080)},
			endpoint(ptr.To(true), "crm.example.com")),
		// Another Service's slice is never used.
		slice("other-a", "other", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)},
			endpoint(ptr.To(true), "192.0.2.99")),
		// single: one unnamed port.
		service("single", "", corev1.ServicePort{Port: 8000}),
		slice("single-a", "single", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("", 3000)}, endpoint(ptr.To(true), "192.0.2.7")),
		// down: endpoints exist, none ready.
		service("down", "", corev1.ServicePort{Name: "http", Port: 80}),
		slice("down-a", "down", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, endpoint(ptr.To(false), "192.0.2.8")),
		service("udp", "", corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}),
		service("ext", corev1.ServiceTypeExternalName),
	}
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(objs...).Build()
	cases := []struct {
		name    string
		service string
		port    intstr.IntOrString
		want    []string
		problem Problem
	}{
		{"by name, across slices and families", "crm", intstr.FromString("http"), []string{"192.0.2.1:8080", "192.0.2.2:8080", "[2001:db8::1]:8080"}, ""},
		{"by number", "crm", intstr.FromInt32(80), []string{"192.0.2.1:8080", "192.0.2.2:8080", "[2001:db8::1]:8080"}, ""},
		{"second port maps by name", "crm", intstr.FromString("metrics"), []string{"192.0.2.1:9090", "192.0.2.2:9090"}, ""},
		{"unnamed single port", "single", intstr.FromInt32(8000), []string{"192.0.2.7:3000"}, ""},
		{"no such Service", "nope", intstr.FromString("http"), nil, ServiceNotFound},
		{"no such port name", "crm", intstr.FromString("grpc"), nil, PortNotFound},
		{"no such port number", "crm", intstr.FromInt32(8080), nil, PortNotFound},
		{"UDP only", "udp", intstr.FromString("dns"), nil, PortNotFound},
		{"no ready endpoint", "down", intstr.FromString("http"), nil, NoReadyEndpoints},
		{"no slices at all", "ext", intstr.FromInt32(80), nil, NoReadyEndpoints},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), c, ns, tc.service, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Addresses, tc.want) || got.Problem != tc.problem {
				t.Errorf("got %v %q (%s), want %v %q", got.Addresses, got.Problem, got.Message, tc.want, tc.problem)
			}
			if tc.problem != "" && !strings.Contains(got.Message, `"`+tc.service+`"`) {
				t.Errorf("message %q does not name Service %q", got.Message, tc.service)
			}
		})
	}
}

func TestResolveReadErrors(t *testing.T) {
	boom := errors.New("apiserver down")
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).
		WithObjects(service("crm", "", corev1.ServicePort{Name: "http", Port: 80})).
		WithInterceptorFuncs(interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return boom }}).
		Build()
	if _, err := Resolve(context.Background(), c, ns, "crm", intstr.FromString("http")); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the list error", err)
	}
}
