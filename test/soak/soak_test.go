// Package soak proves that no acknowledged event is lost: meetergo sends
// events at a varying rate while the target flaps (500, 503, too slow for
// the delivery timeout) and the operator is killed with SIGKILL at random
// moments. Every event the receiver acknowledged must reach every matching
// target at least once. `make test` runs a short form; `make soak` a long
// one (SOAK_EVENTS, SOAK_KILLS) and writes the figures to SOAK_REPORT.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

const ns = "soak"

// The resources: three subscribers of booking_created, two targets each.
const manifest = `
apiVersion: v1
kind: Secret
metadata: {name: meetergo-api}
stringData: {token: %s}
---
%s`

func resource(name string) string {
	return fmt.Sprintf(`apiVersion: webhooks.meetergo-operator.io/v1alpha1
kind: MeetergoWebhook
metadata: {name: %[1]s}
spec:
  eventTypes: [booking_created]
  credentials: {secretRef: {name: meetergo-api}}
  targets:
  - service: {name: echo, port: http}
    path: /%[1]s/a
  - service: {name: echo, port: http}
    path: /%[1]s/b
  delivery: {timeout: 1s, maxAttempts: 50}
`, name)
}

type ack struct {
	appointment string
	resource    string
	at          time.Time
}

func TestNoAcknowledgedEventIsLost(t *testing.T) {
	events, kills := envInt("SOAK_EVENTS", 300), envInt("SOAK_KILLS", 2)
	g := NewWithT(t)
	bin := os.Getenv("OPERATOR_BIN")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "manager")
	}
	env, err := localenv.Start(localenv.Options{Manager: bin, Namespace: ns,
		// Retries come quickly so a soak run takes minutes, not hours.
		ExtraArgs: []string{"--zap-log-level=error"}})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator log:\n%s", localenv.Tail(env.OperatorLog, 40))
		}
		env.Stop()
	})
	g.Expect(env.StartOperator()).To(Succeed())

	names := []string{"crm", "billing", "analytics"}
	var docs []string
	for _, n := range names {
		docs = append(docs, resource(n))
	}
	f := filepath.Join(t.TempDir(), "soak.yaml")
	g.Expect(os.WriteFile(f, []byte(fmt.Sprintf(manifest, localenv.Token, strings.Join(docs, "---\n"))), 0o600)).To(Succeed())
	_, err = env.Kubectl("apply", "--server-side", "-n", ns, "-f", f)
	g.Expect(err).NotTo(HaveOccurred())

	ctx := context.Background()
	byWebhookID := map[string]string{} // meetergo webhook id -> resource name
	g.Eventually(func(g Gomega) {
		list := &webhooksv1alpha1.MeetergoWebhookList{}
		g.Expect(env.K8s.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(len(names)))
		for _, o := range list.Items {
			g.Expect(apimeta.IsStatusConditionTrue(o.Status.Conditions, webhooksv1alpha1.ConditionReady)).To(BeTrue(), o.Name)
			byWebhookID[o.Status.WebhookID] = o.Name
		}
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var (
		mu       sync.Mutex
		acks     []ack
		refused  int
		sent     int
		start    = time.Now()
		killedAt []time.Duration
	)
	// The killer: SIGKILL at random moments while events flow, restart.
	done := make(chan struct{})
	killerDone := make(chan error, 1)
	killerRng := rand.New(rand.NewPCG(rng.Uint64(), 9)) // a rand.Rand is not safe for two goroutines
	go func() {
		defer close(killerDone)
		for range kills {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(1000+killerRng.IntN(3000)) * time.Millisecond):
			}
			env.KillOperator()
			mu.Lock()
			killedAt = append(killedAt, time.Since(start))
			mu.Unlock()
			if err := env.StartOperator(); err != nil {
				killerDone <- err
				return
			}
		}
	}()
	for range events {
		// The target flaps.
		switch rng.IntN(20) {
		case 0:
			env.Echo.FailNext(500, 503, 500)
		case 1:
			env.Echo.SlowNext(2, 1500*time.Millisecond) // longer than the 1s delivery timeout
		}
		res, err := env.Meetergo.Deliver(ctx, "booking_created", fake.DeliverOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		mu.Lock()
		for _, r := range res {
			sent++
			if r.StatusCode != 200 {
				refused++ // meetergo would retry; not acknowledged, so not owed
				continue
			}
			acks = append(acks, ack{appointment: r.AppointmentID, resource: byWebhookID[strconv.FormatInt(r.WebhookID, 10)], at: time.Now()})
		}
		mu.Unlock()
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // a varying offered rate
	}
	close(done)
	g.Expect(<-killerDone).To(Succeed())
	mu.Lock()
	defer mu.Unlock()
	env.Echo.ClearFailures()

	// Every acknowledged event reaches both targets of its resource.
	type key struct{ appointment, path string }
	firstSeen := map[key]time.Time{}
	ids := map[string]int{} // webhook-id and target path
	collect := func() {
		for _, d := range env.Echo.Deliveries() {
			var body struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(d.Body, &body)
			k := key{body.ID, d.Path}
			if _, ok := firstSeen[k]; !ok {
				firstSeen[k] = d.At
			}
		}
	}
	g.Eventually(func() []string {
		firstSeen = map[key]time.Time{}
		collect()
		var missing []string
		for _, a := range acks {
			for _, p := range []string{"/" + a.resource + "/a", "/" + a.resource + "/b"} {
				if _, ok := firstSeen[key{a.appointment, p}]; !ok {
					missing = append(missing, a.appointment+" "+p)
				}
			}
		}
		sort.Strings(missing)
		return missing[:min(len(missing), 5)]
	}, 5*time.Minute, time.Second).Should(BeEmpty(), "acknowledged events not delivered")

	var worst time.Duration
	for _, a := range acks {
		for _, p := range []string{"/" + a.resource + "/a", "/" + a.resource + "/b"} {
			worst = max(worst, firstSeen[key{a.appointment, p}].Sub(a.at))
		}
	}
	for _, d := range env.Echo.Deliveries() {
		ids[d.ID+" "+d.Path]++ // one delivery id per event, the same for each target
	}
	dups := 0
	for _, n := range ids {
		dups += n - 1
	}
	delivered := len(env.Echo.Deliveries())
	t.Logf("sent %d, acknowledged %d, refused while down %d; owed %d deliveries, received %d (%d duplicates: same webhook-id to the same target); worst delay %s; %d SIGKILLs at %v",
		sent, len(acks), refused, 2*len(acks), delivered, dups, worst.Round(time.Millisecond), len(killedAt), killedAt)
	if path := os.Getenv("SOAK_REPORT"); path != "" {
		report := fmt.Sprintf("# Event soak: figures of the last `make soak`\n\n%s, `make soak` (test/soak, SOAK_EVENTS=%d, SOAK_KILLS=%d): three resources with two targets each, a target that fails (500/503) or answers too slowly now and then, and SIGKILLs of the operator at random moments.\n\n| figure | value |\n|---|---|\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), events, kills) + fmt.Sprintf("| events sent (POSTs by meetergo) | %d |\n| acknowledged by the receiver | %d |\n| refused while the operator was down (meetergo retries those) | %d |\n| deliveries owed to targets | %d |\n| deliveries owed but missing | 0 |\n| deliveries received (at least once each) | %d |\n| duplicates forwarded (same webhook-id to the same target) | %d |\n| worst delay, acknowledgement to first receipt | %s |\n| SIGKILLs of the operator | %d |\n",
			sent, len(acks), refused, 2*len(acks), delivered, dups, worst.Round(time.Millisecond), len(killedAt))
		g.Expect(os.WriteFile(path, []byte(report), 0o644)).To(Succeed())
	}
}
