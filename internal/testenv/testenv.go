// Package testenv starts the real kube-apiserver and etcd that
// `make envtest-assets` builds, with this project's CRDs installed, for tests
// that touch Kubernetes. One environment per test package (from TestMain).
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// K8sVersion is the Kubernetes version `make envtest-assets` builds.
const K8sVersion = "1.37.2"

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client with this project's types.
	Client client.Client
	// KubeconfigPath is a kubeconfig file for the administrator, for kubectl.
	KubeconfigPath string
	// AssetsDir holds kube-apiserver, etcd and kubectl.
	AssetsDir string
}

// RepoRoot is the root of this repository.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AssetsDir is where the control plane binaries are: KUBEBUILDER_ASSETS when
// set, else where `make envtest-assets` puts them.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "k8s", K8sVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("no kube-apiserver in %s: run `make envtest-assets` (or `make test`, which does) first: %w", dir, err)
	}
	return dir, nil
}

// Start starts etcd and kube-apiserver and installs the CRDs of config/crd.
func Start() (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	if err := webhooksv1alpha1.AddToScheme(scheme.Scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	// Without this the API server publishes the host's address in the
	// `kubernetes` Endpoints object; nothing here may point outside loopback.
	env.ControlPlane.GetAPIServer().Configure().Set("endpoint-reconciler-type", "none")

	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane from %s: %w", assets, err)
	}
	e := &Env{Environment: env, Config: cfg, AssetsDir: assets}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	user, err := env.AddUser(envtest.User{Name: "envtest-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	e.KubeconfigPath = filepath.Join(env.ControlPlane.APIServer.CertDir, "admin.kubeconfig")
	if err := os.WriteFile(e.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	return e, nil
}

// Kubectl is the path of the kubectl binary built with the control plane.
func (e *Env) Kubectl() string { return filepath.Join(e.AssetsDir, "kubectl") }

// GVK of the MeetergoWebhook kind.
var GVK = schema.GroupVersionKind{Group: webhooksv1alpha1.GroupVersion.Group, Version: webhooksv1alpha1.GroupVersion.Version, Kind: "MeetergoWebhook"}
