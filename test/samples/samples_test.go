// Package samples applies config/samples with the real kubectl to a real API
// server while the operator binary runs, as a user following the README
// would, and checks what kubectl shows and that GitOps sees no drift.
package samples

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

// kubectl runs the real kubectl against the test API server.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), env.Kubectl(), append([]string{"--kubeconfig", env.KubeconfigPath}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// operatorBinary is the binary `make build` produced: the one the image ships.
func operatorBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OPERATOR_BIN")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "manager")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("operator binary %s missing: run `make build` (make test does): %v", bin, err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startOperator runs the operator binary until the test ends.
func startOperator(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logPath := filepath.Join(t.TempDir(), "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, operatorBinary(t), append([]string{
		"--kubeconfig", env.KubeconfigPath,
		"--health-probe-bind-address", freeAddr(t),
		"--metrics-bind-address", "0",
		"--token-key-file", tokenKeyFile(t),
		"--receiver-bind-address", freeAddr(t),
		"--data-dir", t.TempDir(),
	}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("operator log:\n%s", out)
		}
	})
}

// eventually polls cond until it returns "" or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if last = cond(); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not reached within %s: %s", timeout, last)
}

func TestSamplesApplyAndPrintColumns(t *testing.T) {
	kubectl(t, "create", "namespace", "samples")
	out := kubectl(t, "apply", "--server-side", "--namespace", "samples", "-f", filepath.Join(testenv.RepoRoot(), "config", "samples"))
	for _, name := range []string{"crm-sync", "bookings-fanout", "people-ops"} {
		if !strings.Contains(out, "meetergowebhook.webhooks.meetergo-operator.io/"+name+" serverside-applied") {
			t.Errorf("kubectl apply did not create %s:\n%s", name, out)
		}
	}

	// The Services the samples target, with a ready endpoint each (a
	// never-routed address: no event is delivered in this test).
	for name, port := range map[string]int32{"crm-bridge": 80, "notifier": 8080, "onboarding": 80} {
		targetService(t, "samples", name, port)
	}
	meetergoURL := startFakeMeetergo(t, sampleCredentials())
	startOperator(t, "--meetergo-api-url", meetergoURL, "--receiver-public-url", "http://127.0.0.1:9/", "--allow-insecure-http")

	// The printer columns answer "is it working" at a glance.
	eventually(t, 30*time.Second, func() string {
		out := kubectl(t, "get", "mgwh", "--namespace", "samples")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME READY REASON WEBHOOK EVENTS AGE" {
			return "header is " + lines[0]
		}
		if len(lines) != 4 {
			return "want 3 rows:\n" + out
		}
		for _, l := range lines[1:] {
			if f := strings.Fields(l); f[1] != "True" || f[2] != "Registered" || !isNumber(f[3]) {
				return "row not yet registered: " + l
			}
		}
		if !strings.Contains(out, `["booking_created","booking_cancelled","booking_rescheduled"]`) {
			return "event types column missing:\n" + out
		}
		return ""
	})

	// The short name and the category both find the resources.
	if out := kubectl(t, "get", "meetergo", "--namespace", "samples", "-o", "name"); strings.Count(out, "meetergowebhook.webhooks.meetergo-operator.io/") != 3 {
		t.Errorf("kubectl get meetergo (category) listed:\n%s", out)
	}
	// GitOps sees no drift: a server-side diff of the applied manifests
	// against the reconciled resources is empty.
	diff := exec.CommandContext(t.Context(), env.Kubectl(), "--kubeconfig", env.KubeconfigPath, "diff", "--server-side", "--namespace", "samples", "-f", filepath.Join(testenv.RepoRoot(), "config", "samples"))
	if out, err := diff.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("kubectl diff --server-side after reconcile: %v\n%s", err, out)
	}
	// kubectl explain reads the field documentation from the CRD.
	if out := kubectl(t, "explain", "mgwh.spec.deletionPolicy"); !strings.Contains(out, "Orphan leaves it in place") {
		t.Errorf("kubectl explain does not document deletionPolicy:\n%s", out)
	}
}
