// Package endpoints resolves a Service port to the addresses of its ready
// endpoints, from the Service and its EndpointSlices, the way kube-proxy
// does: the Service port (by name or number) gives a port name, and each
// EndpointSlice's port of that name gives the number to dial on its
// endpoints.
package endpoints

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Problem says why a Service port has no address to send to. The values
// double as condition reasons.
type Problem string

// The problems Resolve reports.
const (
	ServiceNotFound  Problem = "ServiceNotFound"
	PortNotFound     Problem = "PortNotFound"
	NoReadyEndpoints Problem = "NoReadyEndpoints"
)

// Resolution is the outcome of Resolve: addresses, or a problem.
type Resolution struct {
	// Addresses are "host:port" of the ready endpoints, sorted, without
	// duplicates.
	Addresses []string
	// Problem is empty when there are addresses.
	Problem Problem
	// Message explains the problem, naming the Service and port.
	Message string
}

// Resolve finds the ready endpoints of the Service port in namespace. It
// reads through c (a cache or the API), and fails only when reading fails.
func Resolve(ctx context.Context, c client.Reader, namespace, service string, port intstr.IntOrString) (Resolution, error) {
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: service}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return problem(ServiceNotFound, "Service %q not found", service), nil
		}
		return Resolution{}, fmt.Errorf("reading Service %s/%s: %w", namespace, service, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return problem(NoReadyEndpoints, "Service %q is of type ExternalName, which has no endpoints", service), nil
	}
	sp, ok := servicePort(svc, port)
	if !ok {
		return problem(PortNotFound, "Service %q has no TCP port %q", service, port.String()), nil
	}
	list := &discoveryv1.EndpointSliceList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return Resolution{}, fmt.Errorf("listing the EndpointSlices of Service %s/%s: %w", namespace, service, err)
	}
	var addrs []string
	for i := range list.Items {
		addrs = append(addrs, readyAddresses(&list.Items[i], sp.Name)...)
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if len(addrs) == 0 {
		return problem(NoReadyEndpoints, "Service %q has no ready endpoint for port %q", service, port.String()), nil
	}
	return Resolution{Addresses: addrs}, nil
}

func problem(p Problem, format string, args ...any) Resolution {
	return Resolution{Problem: p, Message: fmt.Sprintf(format, args...)}
}

// servicePort finds the TCP port named or numbered by port.
func servicePort(svc *corev1.Service, port intstr.IntOrString) (corev1.ServicePort, bool) {
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if port.Type == intstr.String && sp.Name == port.StrVal || port.Type == intstr.Int && sp.Port == port.IntVal {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

// readyAddresses returns host:port of the slice's ready endpoints for the
// port named portName (kube-proxy matches Service and slice ports by name;
// an unnamed port is "").
func readyAddresses(s *discoveryv1.EndpointSlice, portName string) []string {
	if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
		return nil
	}
	var number int32
	for _, p := range s.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		tcp := p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP
		if name == portName && tcp && p.Port != nil {
			number = *p.Port
			break
		}
	}
	if number == 0 {
		return nil
	}
	var out []string
	for _, ep := range s.Endpoints {
		// A nil ready condition means unknown, which consumers treat as ready.
		if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
			continue
		}
		for _, a := range ep.Addresses {
			if net.ParseIP(a) != nil {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(number))))
			}
		}
	}
	return out
}
