// Package install tests the ways the operator is installed: the Helm chart
// (lint, render, schema, server-side dry run, install, upgrade, uninstall),
// the kustomize configuration, and the Argo CD health check. Everything runs
// against one real kube-apiserver (internal/testenv) with the real helm and
// kubectl binaries; no pod runs, so the tests assert on the objects.
package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// helmVersion is the helm that `make helm` (hack/build-helm.sh) builds.
const helmVersion = "3.22.0"

var (
	env *testenv.Env
	// toolEnv is the environment of every helm and kubectl run: the test
	// control plane's kubeconfig, a private HOME and helm directories, and a
	// proxy on a closed loopback port so that nothing can reach past
	// 127.0.0.0/8 even by mistake.
	toolEnv []string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	home, err := os.MkdirTemp("", "install-test-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(home) }()

	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	// KUBECTL: for scripts (from the docs) that the tests run with bash.
	toolEnv = append(isolatedEnv(home, env.KubeconfigPath), "KUBECTL="+env.Kubectl())
	return m.Run()
}

// isolatedEnv is os.Environ without anything that could point helm or kubectl
// at another cluster, configuration or network.
func isolatedEnv(home, kubeconfig string) []string {
	drop := func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HOME", "KUBECONFIG", "KUBECACHEDIR", "KUBECTL", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			return true
		}
		return strings.HasPrefix(k, "HELM_") || strings.HasPrefix(k, "XDG_")
	}
	var out []string
	for _, kv := range os.Environ() {
		if !drop(kv) {
			out = append(out, kv)
		}
	}
	const deadProxy = "http://127.0.0.1:1"
	return append(out,
		"HOME="+home,
		"KUBECONFIG="+kubeconfig,
		"KUBECACHEDIR="+filepath.Join(home, "kube-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "helm", "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "helm", "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "helm", "data"),
		"HTTP_PROXY="+deadProxy, "HTTPS_PROXY="+deadProxy,
		"http_proxy="+deadProxy, "https_proxy="+deadProxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	)
}

// helmBin is the helm binary: $HELM, else what `make helm` builds.
func helmBin(t *testing.T) string {
	t.Helper()
	path := os.Getenv("HELM")
	if path == "" {
		path = filepath.Join(testenv.RepoRoot(), "bin", "helm-v"+helmVersion, "helm")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no helm at %s: run `make helm` (or set HELM to a helm v3 binary): %v", path, err)
	}
	return path
}

// result is a finished command.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) output() string { return r.stdout + r.stderr }

// runTool runs a tool with the isolated environment in the repository root,
// feeding it stdin, and gives up after a minute. (Not bound to t.Context,
// which ends before cleanups run.)
func runTool(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = toolEnv
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out: %w", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// mustRun runs a tool and fails the test when it fails.
func mustRun(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	r := runTool(t, stdin, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), r.err, r.output())
	}
	return r.stdout
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, "", helmBin(t), args...)
}

func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return mustRun(t, stdin, env.Kubectl(), args...)
}

// eventually is testenv.Eventually.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, what, check)
}

// repoPath is a path in the repository.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot()}, elem...)...)
}
