//go:build tools

// Package etcd pins the etcd server that hack/build-control-plane.sh builds
// into bin/ for envtest. A module of its own: etcd's dependency versions must
// not move kube-apiserver's, nor the operator's.
package etcd

import _ "go.etcd.io/etcd/server/v3"
