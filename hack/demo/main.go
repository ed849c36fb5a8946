// Command demo runs the operator's whole job locally, on 127.0.0.1 only: a
// real kube-apiserver and etcd, a fake meetergo, an echo Service, and the
// operator binary, driven with kubectl. `make demo` builds what it needs and
// runs it; KEEP=1 leaves everything running until Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

const namespace = "demo"

// The event types meetergo documents payloads for.
var eventTypes = []string{"booking_created", "booking_cancelled", "booking_rescheduled", "new_employee", "form_submission"}

type demo struct {
	env  *localenv.Env
	step int
}

func main() {
	ctrl.SetLogger(logr.Discard())
	manager := os.Getenv("MANAGER")
	if manager == "" {
		manager = filepath.Join(testenv.RepoRoot(), "bin", "manager")
	}
	d := &demo{}
	err := d.run(manager)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n!! demo failed at step %d: %v\n", d.step, err)
		if d.env != nil && d.env.OperatorLog != "" {
			fmt.Fprintf(os.Stderr, "\n-- last lines of the operator's log:\n%s\n", localenv.Tail(d.env.OperatorLog, 30))
		}
	}
	if d.env != nil {
		d.env.Stop()
	}
	if err != nil {
		os.Exit(1)
	}
	fmt.Println("\n==> done: everything the demo started is stopped.")
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n==> step %d: %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run(manager string) error {
	d.say("starting etcd and kube-apiserver, a fake meetergo (one company, six webhook slots) and an echo Service, all on 127.0.0.1")
	env, err := localenv.Start(localenv.Options{Manager: manager, Namespace: namespace, EchoOut: os.Stdout})
	if err != nil {
		return err
	}
	d.env = env
	fmt.Printf("    API server   %s (kubeconfig %s)\n", env.K8s.Config.Host, env.K8s.KubeconfigPath)
	fmt.Printf("    meetergo     %s\n", env.MeetergoURL)
	fmt.Printf("    echo Service %s/echo, port http -> %s (mapped to 127.0.0.1 by a loopback proxy)\n", namespace, localenv.EchoAddress)

	d.say("starting the operator binary %s; its receiver listens on %s", manager, env.ReceiverURL)
	if err := env.StartOperator(); err != nil {
		return err
	}

	d.say("applying a credentials Secret and six MeetergoWebhooks with kubectl")
	if err := d.show("apply", "--server-side", "-n", namespace, "-f", demoFile("webhooks.yaml")); err != nil {
		return err
	}
	if err := d.waitReasons(map[string]int{"Registered": 6}, 30*time.Second); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "-n", namespace); err != nil {
		return err
	}

	d.say("adding a seventh: the company's six slots are taken, so it waits")
	if err := d.show("apply", "--server-side", "-n", namespace, "-f", demoFile("late-comer.yaml")); err != nil {
		return err
	}
	if err := d.waitReasons(map[string]int{"Registered": 6, "QuotaExceeded": 1}, 30*time.Second); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "-n", namespace); err != nil {
		return err
	}
	if err := d.show("get", "mgwh", "late-comer", "-n", namespace, "-o", `jsonpath={.status.conditions[?(@.type=="Registered")].message}{"\n"}`); err != nil {
		return err
	}

	d.say("meetergo delivers one event of each documented type; the echo Service prints what reaches it")
	want := 0
	for _, et := range eventTypes {
		res, err := env.Meetergo.Deliver(context.Background(), et, fake.DeliverOptions{})
		if err != nil {
			return err
		}
		codes := map[int]int{}
		for _, r := range res {
			codes[r.StatusCode]++
			if r.StatusCode == 200 {
				want++
			}
		}
		fmt.Printf("    meetergo -> receiver: %-20s to %d webhooks, answers %v\n", et, len(res), codes)
	}
	if err := d.waitEcho(want, 30*time.Second); err != nil {
		return err
	}

	d.say("the Kubernetes Events on the resources (no names, emails or phone numbers in them)")
	if err := d.show("get", "events.events.k8s.io", "-n", namespace, "--sort-by=.metadata.creationTimestamp",
		"-o", "custom-columns=RESOURCE:.regarding.name,TYPE:.type,REASON:.reason,NOTE:.note"); err != nil {
		return err
	}

	d.say("what meetergo holds: six registrations, each marked with its resource's UID")
	fmt.Printf("    %-5s %-78s %s\n", "ID", "DESCRIPTION", "EVENT TYPES")
	for _, w := range env.Meetergo.Webhooks(localenv.CompanyID) {
		fmt.Printf("    %-5d %-78s %s\n", w.ID, w.Description, strings.Join(w.EventTypes, ","))
	}

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

	if os.Getenv("KEEP") == "1" {
		fmt.Printf("\n==> KEEP=1: the environment stays up. In another shell:\n")
		fmt.Printf("    export KUBECONFIG=%s\n    %s get mgwh -A\n", env.K8s.KubeconfigPath, env.K8s.Kubectl())
		fmt.Printf("    fake meetergo admin API: curl %s/admin/webhooks\n", env.MeetergoURL)
		fmt.Printf("    deliver an event:        curl -X POST %s/admin/deliver -d '{\"eventType\":\"booking_created\"}'\n", env.MeetergoURL)
		fmt.Printf("    operator log:            %s\n    Press Ctrl-C here to stop everything.\n", env.OperatorLog)
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		<-ctx.Done()
	}
	return nil
}

func demoFile(name string) string { return filepath.Join(testenv.RepoRoot(), "hack", "demo", name) }

// waitReasons waits until the resources' Registered reasons have the counts.
func (d *demo) waitReasons(want map[string]int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := d.env.Kubectl("get", "mgwh", "-n", namespace, "-o",
			`jsonpath={range .items[*]}{.status.conditions[?(@.type=="Registered")].reason}{"\n"}{end}`)
		if err != nil {
			return err
		}
		got := map[string]int{}
		for _, r := range strings.Fields(out) {
			got[r]++
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the resources' Registered reasons are %v, want %v", timeout, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEcho waits until the echo Service has received n deliveries.
func (d *demo) waitEcho(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(d.env.Echo.Deliveries()) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the echo Service got %d of %d deliveries in %s", len(d.env.Echo.Deliveries()), n, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("    all %d deliveries arrived\n", n)
	return nil
}

// show runs kubectl and prints the command and what it printed.
func (d *demo) show(args ...string) error {
	fmt.Printf("    $ kubectl %s\n", strings.Join(args, " "))
	out, err := d.env.Kubectl(args...)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Printf("    %s\n", l)
	}
	return err
}
