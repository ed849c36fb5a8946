// Command demo runs the operator's whole job locally, on 127.0.0.1 only: a
// real kube-apiserver and etcd, a fake meetergo, the operator binary, and
// manifests applied with kubectl. `make demo` builds what it needs and runs
// it.
//
// With KEEP=1 the environment stays up until Ctrl-C, and the demo prints how
// to reach it.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// The demo's meetergo company and its credential (fake, like everything here).
const (
	companyID = "c0ffee00-0000-4000-8000-00000000de00"
	adminID   = "a11ce000-0000-4000-8000-00000000de01"
	demoToken = "rgo-demo-personal-access-token-0123456789abcdef"
	namespace = "demo"
)

type demo struct {
	env      *testenv.Env
	meetergo *fake.Server
	apiURL   string
	workDir  string
	manager  string
	operator *exec.Cmd
	opLog    string
	step     int
	cleanup  []func()
}

func main() {
	ctrl.SetLogger(logr.Discard())
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
	fmt.Printf("    API server %s\n    kubeconfig %s\n", d.env.Config.Host, d.env.KubeconfigPath)

	d.say("starting a fake meetergo on 127.0.0.1 with one company (six webhook slots)")
	if err := d.startMeetergo(); err != nil {
		return err
	}
	fmt.Printf("    meetergo API %s\n", d.apiURL)

	d.say("starting the operator binary (%s)", d.manager)
	if err := d.startOperator(); err != nil {
		return err
	}

	d.say("applying a credentials Secret and six MeetergoWebhooks with kubectl")
	if _, err := d.kubectl("create", "namespace", namespace); err != nil {
		return err
	}
	if err := d.show("apply", "--server-side", "-n", namespace, "-f", demoFile("webhooks.yaml")); err != nil {
		return err
	}
	if err := d.waitReasons(map[string]int{"Registered": 6}, 30*time.Second); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "-n", namespace); err != nil {
		return err
	}

	d.say("adding a seventh MeetergoWebhook: the company's six slots are taken, so it waits")
	if err := d.show("apply", "--server-side", "-n", namespace, "-f", demoFile("late-comer.yaml")); err != nil {
		return err
	}
	if err := d.waitReasons(map[string]int{"Registered": 6, "QuotaExceeded": 1}, 30*time.Second); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "-n", namespace); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "late-comer", "-n", namespace, "-o", `jsonpath=    {.status.conditions[?(@.type=="Registered")].message}{"\n"}`); err != nil {
		return err
	}

	d.say("what meetergo holds: the registrations, each marked with its resource's UID")
	d.printRegistrations()

	d.say("deleting analytics: its registration is removed and late-comer takes the slot")
	if err := d.show("delete", "mgwh", "analytics", "-n", namespace); err != nil {
		return err
	}
	start := time.Now()
	if err := d.waitReasons(map[string]int{"Registered": 6}, 30*time.Second); err != nil {
		return err
	}
	fmt.Printf("    late-comer registered %.1fs after the deletion\n", time.Since(start).Seconds())
	if err := d.show("get", "mgwh", "-n", namespace); err != nil {
		return err
	}

	d.say("the Kubernetes Events the operator recorded")
	if err := d.show("get", "events.events.k8s.io", "-n", namespace, "--sort-by=.metadata.creationTimestamp",
		"-o", "custom-columns=RESOURCE:.regarding.name,TYPE:.type,REASON:.reason,NOTE:.note"); err != nil {
		return err
	}

	if os.Getenv("KEEP") == "1" {
		fmt.Printf("\n==> KEEP=1: the environment stays up. In another shell:\n")
		fmt.Printf("    export KUBECONFIG=%s\n    %s get mgwh -A\n", d.env.KubeconfigPath, d.env.Kubectl())
		fmt.Printf("    fake meetergo admin: curl %s/admin/webhooks\n", d.apiURL)
		fmt.Printf("    operator log: %s\n    Press Ctrl-C here to stop everything.\n", d.opLog)
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		<-ctx.Done()
	}
	return nil
}

func demoFile(name string) string { return filepath.Join(testenv.RepoRoot(), "hack", "demo", name) }

func (d *demo) startMeetergo() error {
	var err error
	d.meetergo, err = fake.New(fake.Options{Seed: fake.Seed{
		Companies:   []fake.Company{{ID: companyID, Name: "Demo GmbH (fake)"}},
		Users:       []fake.User{{ID: adminID, CompanyID: companyID, Email: "admin@demo.example.test", IsAdmin: true}},
		Credentials: []fake.Credential{{Token: demoToken, UserID: adminID}},
	}})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(d.meetergo)
	d.apiURL = srv.URL
	d.cleanup = append(d.cleanup, func() { d.meetergo.Close(); srv.Close() })
	return nil
}

func (d *demo) startOperator() error {
	probe, err := freeAddr()
	if err != nil {
		return err
	}
	keyFile := filepath.Join(d.workDir, "token.key")
	if err := os.WriteFile(keyFile, []byte("demo-token-key-0123456789abcdef0123456789"), 0o600); err != nil {
		return err
	}
	d.opLog = filepath.Join(d.workDir, "operator.log")
	logFile, err := os.Create(d.opLog)
	if err != nil {
		return err
	}
	d.operator = exec.Command(d.manager,
		"--kubeconfig", d.env.KubeconfigPath,
		"--health-probe-bind-address", probe,
		"--metrics-bind-address", "0",
		"--meetergo-api-url", d.apiURL,
		"--receiver-public-url", "http://127.0.0.1:8082",
		"--allow-insecure-http",
		"--token-key-file", keyFile,
		"--quota-poll-interval", "2s")
	d.operator.Stdout, d.operator.Stderr = logFile, logFile
	return d.operator.Start()
}

// waitReasons waits until the resources' Registered reasons have the counts.
func (d *demo) waitReasons(want map[string]int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := d.kubectl("get", "mgwh", "-n", namespace, "-o",
			`jsonpath={range .items[*]}{.status.conditions[?(@.type=="Registered")].reason}{"\n"}{end}`)
		if err != nil {
			return err
		}
		got := map[string]int{}
		for _, r := range strings.Fields(out) {
			got[r]++
		}
		if equalCounts(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the resources' Registered reasons are %v, want %v", timeout, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func (d *demo) printRegistrations() {
	fmt.Printf("    %-5s %-52s %s\n", "ID", "DESCRIPTION", "EVENT TYPES")
	for _, w := range d.meetergo.Webhooks(companyID) {
		fmt.Printf("    %-5d %-52s %s\n", w.ID, w.Description, strings.Join(w.EventTypes, ","))
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
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
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
