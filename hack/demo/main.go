// Command demo runs the operator's whole job locally, on 127.0.0.1 only: a
// real kube-apiserver and etcd, the operator binary, and the sample
// manifests applied with kubectl. `make demo` builds what it needs and runs it.
//
// With KEEP=1 the environment stays up until Ctrl-C, and the demo prints how
// to reach it.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

type demo struct {
	env      *testenv.Env
	workDir  string
	manager  string
	operator *exec.Cmd
	opLog    string
	step     int
}

func main() {
	d := &demo{manager: os.Getenv("MANAGER")}
	if d.manager == "" {
		d.manager = filepath.Join(testenv.RepoRoot(), "bin", "manager")
	}
	err := d.run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n!! demo failed at step %d: %v\n", d.step, err)
		if d.opLog != "" {
			fmt.Fprintf(os.Stderr, "\n-- last lines of the operator's log:\n%s\n", tail(d.opLog, 30))
		}
	}
	d.stop()
	if err != nil {
		os.Exit(1)
	}
	fmt.Println("\n==> done: everything the demo started is stopped.")
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n==> step %d: %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run() error {
	var err error
	if d.workDir, err = os.MkdirTemp("", "meetergo-demo-"); err != nil {
		return err
	}

	d.say("starting etcd and kube-apiserver on 127.0.0.1, installing the MeetergoWebhook CRD")
	if d.env, err = testenv.Start(); err != nil {
		return err
	}
	fmt.Printf("    API server %s, kubeconfig %s\n", d.env.Config.Host, d.env.KubeconfigPath)

	d.say("starting the operator binary (%s)", d.manager)
	if err := d.startOperator(); err != nil {
		return err
	}

	d.say("applying the sample manifests with kubectl (config/samples)")
	if _, err := d.kubectl("create", "namespace", "demo"); err != nil {
		return err
	}
	if err := d.show("apply", "--namespace", "demo", "-f", filepath.Join(testenv.RepoRoot(), "config", "samples")); err != nil {
		return err
	}

	d.say("waiting until the operator has reconciled every resource")
	if err := d.waitReconciled("demo", 3, 30*time.Second); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "--namespace", "demo"); err != nil {
		return err
	}
	fmt.Println("\n    Registration at meetergo, the receiver and forwarding arrive in later versions;")
	fmt.Println("    until then the resources say so honestly in their Ready condition.")

	if os.Getenv("KEEP") == "1" {
		fmt.Printf("\n==> KEEP=1: the environment stays up. In another shell:\n")
		fmt.Printf("    export KUBECONFIG=%s\n    %s get mgwh -A\n", d.env.KubeconfigPath, d.env.Kubectl())
		fmt.Printf("    operator log: %s\n    Press Ctrl-C here to stop everything.\n", d.opLog)
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		<-ctx.Done()
	}
	return nil
}

func (d *demo) startOperator() error {
	probe, err := freeAddr()
	if err != nil {
		return err
	}
	d.opLog = filepath.Join(d.workDir, "operator.log")
	logFile, err := os.Create(d.opLog)
	if err != nil {
		return err
	}
	d.operator = exec.Command(d.manager, "--kubeconfig", d.env.KubeconfigPath,
		"--health-probe-bind-address", probe, "--metrics-bind-address", "0")
	d.operator.Stdout, d.operator.Stderr = logFile, logFile
	return d.operator.Start()
}

func (d *demo) waitReconciled(ns string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := d.kubectl("get", "mgwh", "--namespace", ns, "-o",
			`jsonpath={range .items[*]}{.metadata.generation}={.status.observedGeneration}{"\n"}{end}`)
		if err != nil {
			return err
		}
		done := 0
		for _, l := range strings.Fields(out) {
			if a, b, _ := strings.Cut(l, "="); a == b {
				done++
			}
		}
		if done >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d resources reconciled after %s", done, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// show runs kubectl and prints the command and what it printed.
func (d *demo) show(args ...string) error {
	fmt.Printf("    $ kubectl %s\n", strings.Join(args, " "))
	out, err := d.kubectl(args...)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Printf("    %s\n", l)
	}
	return err
}

func (d *demo) kubectl(args ...string) (string, error) {
	out, err := exec.Command(d.env.Kubectl(), append([]string{"--kubeconfig", d.env.KubeconfigPath}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (d *demo) stop() {
	if d.operator != nil && d.operator.Process != nil {
		_ = d.operator.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- d.operator.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.operator.Process.Kill()
			<-done
		}
	}
	if d.env != nil {
		if err := d.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	if d.workDir != "" {
		_ = os.RemoveAll(d.workDir)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
