//go:build tools

// Package controlplane pins the Kubernetes sources that
// hack/build-control-plane.sh builds into bin/ for envtest, the demo and the
// end-to-end tests. It is a module of its own so that k8s.io/kubernetes never
// enters the operator's go.mod.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
