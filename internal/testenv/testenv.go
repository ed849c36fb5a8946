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
	"strings"
	"time"

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

	// certDir is the restartable API server's certificate directory.
	certDir string
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

// Options of StartWith.
type Options struct {
	// RestartableAPIServer keeps the API server's certificates in a
	// directory of the Env's own (envtest deletes its own on Stop), so that
	// StopAPIServer and StartAPIServer can take the API server away and
	// bring it back on the same address with the same certificates: every
	// client made before trusts it again, and every user stays valid. The
	// control plane is then stopped within a second (kube-apiserver waits
	// for open watches before it exits; it is killed after that).
	RestartableAPIServer bool
}

// Start starts etcd and kube-apiserver and installs the CRDs of config/crd.
func Start() (*Env, error) { return StartWith(Options{}) }

// StartWith is Start with options.
func StartWith(o Options) (*Env, error) {
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
	var certDir string
	if o.RestartableAPIServer {
		if certDir, err = os.MkdirTemp("", "testenv-apiserver-"); err != nil {
			return nil, err
		}
		env.ControlPlane.GetAPIServer().CertDir = certDir
		env.ControlPlaneStopTimeout = apiServerStopTimeout
	}

	cfg, err := env.Start()
	if err != nil {
		if certDir != "" {
			_ = os.RemoveAll(certDir)
		}
		return nil, fmt.Errorf("starting the control plane from %s: %w", assets, err)
	}
	e := &Env{Environment: env, Config: cfg, AssetsDir: assets, certDir: certDir}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	user, err := env.AddUser(envtest.User{Name: "envtest-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	e.KubeconfigPath = filepath.Join(env.ControlPlane.APIServer.CertDir, "admin.kubeconfig")
	if err := os.WriteFile(e.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// apiServerStopTimeout is how long a restartable API server may take to
// stop before it is killed.
const apiServerStopTimeout = time.Second

// Stop stops the control plane and removes what it kept on disk.
func (e *Env) Stop() error {
	err := e.Environment.Stop()
	if e.certDir != "" {
		if isKilled(err) {
			err = nil // the restartable API server is killed after a second: expected
		}
		_ = os.RemoveAll(e.certDir)
	}
	return err
}

// StopAPIServer stops kube-apiserver (etcd keeps running); it needs
// Options.RestartableAPIServer. Killed after a second if it has not exited.
func (e *Env) StopAPIServer() error {
	if e.certDir == "" {
		return errors.New("testenv: the API server is not restartable (Options.RestartableAPIServer)")
	}
	if err := e.ControlPlane.APIServer.Stop(); err != nil && !isKilled(err) {
		return err
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same address with the same certificates, and waits until it is healthy.
func (e *Env) StartAPIServer() error {
	if e.certDir == "" {
		return errors.New("testenv: the API server is not restartable (Options.RestartableAPIServer)")
	}
	return e.ControlPlane.APIServer.Start()
}

// isKilled tells whether err says a control plane process was killed after
// its stop timeout.
func isKilled(err error) bool {
	return err != nil && strings.Contains(err.Error(), "timeout waiting for process")
}

// Kubectl is the path of the kubectl binary built with the control plane.
func (e *Env) Kubectl() string { return filepath.Join(e.AssetsDir, "kubectl") }

// GVK of the MeetergoWebhook kind.
var GVK = schema.GroupVersionKind{Group: webhooksv1alpha1.GroupVersion.Group, Version: webhooksv1alpha1.GroupVersion.Version, Kind: "MeetergoWebhook"}
