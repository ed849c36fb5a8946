// Package e2e is `make demo`'s flow with assertions: the real operator
// binary and kubectl, a real API server, the fake meetergo delivering
// events, and an echo Service receiving them.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

const ns = "demo"

var documented = []string{"booking_created", "booking_cancelled", "booking_rescheduled", "new_employee", "form_submission"}

func operatorBinary(t *testing.T) string {
	bin := os.Getenv("OPERATOR_BIN")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "manager")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("operator binary %s missing: run `make build` (make test does): %v", bin, err)
	}
	return bin
}

func TestWholeJob(t *testing.T) {
	g := NewWithT(t)
	env, err := localenv.Start(localenv.Options{Manager: operatorBinary(t), Namespace: ns})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if t.Failed() && env.OperatorLog != "" {
			t.Logf("operator log:\n%s", localenv.Tail(env.OperatorLog, 60))
		}
		env.Stop()
	})
	g.Expect(env.StartOperator()).To(Succeed())
	ctx := context.Background()
	c := env.K8s.Client
	kubectl := func(args ...string) string {
		out, err := env.Kubectl(args...)
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}
	reasons := func() map[string][]string {
		list := &webhooksv1alpha1.MeetergoWebhookList{}
		g.Expect(c.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		out := map[string][]string{}
		for _, o := range list.Items {
			if cond := apimeta.FindStatusCondition(o.Status.Conditions, webhooksv1alpha1.ConditionRegistered); cond != nil {
				out[cond.Reason] = append(out[cond.Reason], o.Name)
			}
		}
		return out
	}

	// Six resources take the company's six slots; a seventh waits.
	kubectl("apply", "--server-side", "-n", ns, "-f", filepath.Join(testenv.RepoRoot(), "hack", "demo", "webhooks.yaml"))
	g.Eventually(func() []string { return reasons()["Registered"] }, 30*time.Second, 100*time.Millisecond).Should(HaveLen(6))
	kubectl("apply", "--server-side", "-n", ns, "-f", filepath.Join(testenv.RepoRoot(), "hack", "demo", "late-comer.yaml"))
	g.Eventually(func() []string { return reasons()["QuotaExceeded"] }, 30*time.Second, 100*time.Millisecond).Should(Equal([]string{"late-comer"}))

	// The registrations at meetergo match the cluster, one to one.
	matchRegistrations := func(g Gomega) {
		list := &webhooksv1alpha1.MeetergoWebhookList{}
		g.Expect(c.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		want := map[string]string{}
		for _, o := range list.Items {
			if apimeta.IsStatusConditionTrue(o.Status.Conditions, webhooksv1alpha1.ConditionRegistered) {
				want[string(o.UID)] = o.Status.WebhookID
			}
		}
		got := map[string]string{}
		for _, w := range env.Meetergo.Webhooks(localenv.CompanyID) {
			uid, ok := registration.OwnerUID(w.Description)
			g.Expect(ok).To(BeTrue())
			got[uid] = fmt.Sprint(w.ID)
		}
		g.Expect(got).To(Equal(want))
	}
	g.Eventually(matchRegistrations, 10*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Eventually(func() string {
		return kubectl("get", "mgwh", "-n", ns, "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="TargetsReady")].status}{end}`)
	}, 20*time.Second, 200*time.Millisecond).Should(Equal(strings.Repeat("True", 7)))

	// Every documented event reaches the echo Service, once per subscribed
	// registered resource, signed, with its type.
	want := map[string]int{}
	for _, et := range documented {
		res, err := env.Meetergo.Deliver(ctx, et, fake.DeliverOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		for _, r := range res {
			g.Expect(r.StatusCode).To(Equal(200), "receiver answered %s", et)
			want[et]++
		}
	}
	byType := func() map[string]int {
		out := map[string]int{}
		for _, d := range env.Echo.Deliveries() {
			out[d.EventType]++
		}
		return out
	}
	g.Eventually(byType, 30*time.Second, 100*time.Millisecond).Should(Equal(want))
	for _, d := range env.Echo.Deliveries() {
		g.Expect(d.Valid).To(BeTrue(), "signature of %s %s", d.EventType, d.ID)
		g.Expect(d.Webhook).To(HavePrefix(ns + "/"))
	}

	// Kubernetes Events record the events, without personal data.
	g.Eventually(func() []string {
		list := &eventsv1.EventList{}
		g.Expect(c.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var r []string
		for _, e := range list.Items {
			r = append(r, e.Reason)
		}
		return r
	}, 30*time.Second, 200*time.Millisecond).Should(ContainElements("BookingCreated", "BookingCancelled", "BookingRescheduled", "NewEmployee", "FormSubmission"))

	// The operator is killed with SIGKILL while deliveries are pending;
	// after a restart every acknowledged event is delivered.
	before := len(env.Echo.Deliveries())
	env.Echo.FailNext(slices.Repeat([]int{503}, 1000)...)
	pending := 0
	for _, et := range []string{"booking_created", "booking_cancelled"} {
		res, err := env.Meetergo.Deliver(ctx, et, fake.DeliverOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		for _, r := range res {
			g.Expect(r.StatusCode).To(Equal(200))
			pending++
		}
	}
	// They are stored and being retried against the failing target.
	g.Eventually(func() int { return env.Echo.Failed() }, 10*time.Second, 50*time.Millisecond).Should(BeNumerically(">=", 1))
	env.KillOperator()
	t.Logf("killed the operator with %d acknowledged deliveries pending (%d attempts refused)", pending, env.Echo.Failed())
	env.Echo.ClearFailures()
	g.Expect(env.StartOperator()).To(Succeed())
	g.Eventually(func() int { return len(env.Echo.Deliveries()) - before }, 60*time.Second, 200*time.Millisecond).Should(BeNumerically(">=", pending))

	// Nothing personal in Events, status or the operator's log.
	assertNoPersonalData(t, env)

	// The quota hand-over: a registered resource goes, late-comer gets its slot.
	kubectl("delete", "mgwh", "analytics", "-n", ns)
	g.Eventually(func() []string { return reasons()["Registered"] }, 15*time.Second, 100*time.Millisecond).Should(ContainElement("late-comer"))
	g.Eventually(matchRegistrations, 10*time.Second, 100*time.Millisecond).Should(Succeed())

	// Deleting everything leaves meetergo with no registration of ours.
	kubectl("delete", "mgwh", "--all", "-n", ns, "--wait=true", "--timeout=60s")
	g.Eventually(func() []fake.Webhook { return env.Meetergo.Webhooks(localenv.CompanyID) }, 30*time.Second, 100*time.Millisecond).Should(BeEmpty())
}

// assertNoPersonalData scans Events, resource status, the operator's log and
// its metrics for every name, email, phone number and appointment secret the
// fake sent, for the credential, and for unmasked receiver tokens.
func assertNoPersonalData(t *testing.T, env *localenv.Env) {
	t.Helper()
	var texts []string
	events, err := env.Kubectl("get", "events.events.k8s.io", "-A", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, events)
	status, err := env.Kubectl("get", "mgwh", "-A", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, status)
	log, _ := os.ReadFile(env.OperatorLog)
	texts = append(texts, string(log))
	resp, err := http.Get(env.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "meetergo_operator_") {
		t.Fatalf("the metrics endpoint has no operator metrics:\n%.500s", metrics)
	}
	texts = append(texts, string(metrics))
	for _, pd := range fake.PersonalData() {
		for i, text := range texts {
			if strings.Contains(text, pd) {
				t.Errorf("personal data %q found in %s", pd, []string{"Events", "MeetergoWebhooks", "the operator log", "the metrics"}[i])
			}
		}
	}
	all := strings.Join(texts, "\n")
	deriver, err := token.NewDeriver([]byte(localenv.TokenKey))
	if err != nil {
		t.Fatal(err)
	}
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if err := env.K8s.Client.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Items {
		if tok := deriver.Token(string(o.UID), o.Status.TokenGeneration); strings.Contains(all, tok) {
			t.Errorf("the receiver token of %s appears in Events, status, logs or metrics", o.Name)
		}
	}
	if strings.Contains(all, localenv.Token) {
		t.Error("the meetergo credential appears in Events, status or logs")
	}
	// Receiver URLs appear only with their token masked.
	for rest := all; ; {
		i := strings.Index(rest, "/hooks/")
		if i < 0 {
			break
		}
		rest = rest[i+len("/hooks/"):]
		if !strings.HasPrefix(rest, "********") {
			t.Errorf("a receiver token appears unmasked: /hooks/%.12s…", rest)
		}
	}
}
