//go:build tools

// Package helm pins the helm CLI that hack/build-helm.sh builds into bin/ for
// the install tests (helm lint, template, install, upgrade, uninstall against
// the envtest control plane). A module of its own: helm's dependency versions
// must not move the operator's, nor kube-apiserver's.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
