package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
)

// chaosCycles is how many create/change/delete actions the chaos test takes:
// CHAOS_CYCLES (make soak sets it high), else a short form for make test.
func chaosCycles() int {
	if n, err := strconv.Atoi(os.Getenv("CHAOS_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 120
}

// TestChaosNoLeakedOrDuplicatedRegistrations creates, changes and deletes
// resources while meetergo fails a share of calls (5xx, 429, hangs, creates
// and deletes applied but answered 500 or left hanging) and the operator is
// stopped mid-flight and started afresh. Afterwards meetergo holds exactly
// the registrations the cluster asks for.
func TestChaosNoLeakedOrDuplicatedRegistrations(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (CHAOS_SEED reproduces a run)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	faults := []fake.Fault{
		{Method: "POST", Path: "/webhooks", Apply: true, Status: 500, Probability: 0.15},
		{Method: "POST", Path: "/webhooks", Apply: true, Hang: true, Probability: 0.05},
		{Method: "DELETE", Path: "/webhooks/{id}", Apply: true, Status: 502, Probability: 0.1},
		{Method: "PATCH", Path: "/webhooks/{id}", Apply: true, Status: 500, Probability: 0.1},
		{Status: 503, Probability: 0.08},
		{Status: 429, RetryAfter: 1, Probability: 0.05},
		{Hang: true, Probability: 0.02},
	}
	var ids []int
	for _, f := range faults {
		id, err := meetergoFk.InjectFault(f)
		g.Expect(err).NotTo(HaveOccurred())
		ids = append(ids, id)
	}
	t.Cleanup(func() {
		for _, id := range ids {
			meetergoFk.RemoveFault(id)
		}
	})

	opts := Options{ResyncPeriod: 3 * time.Second}
	shortTimeout := func(o *meetergo.Options) { o.Timeout = 300 * time.Millisecond; o.MaxRetries = 1 }
	op := w.startOperator(opts, shortTimeout)

	const pool = 10
	events := [][]webhooksv1alpha1.EventType{
		{webhooksv1alpha1.EventBookingCreated},
		{webhooksv1alpha1.EventBookingCreated, webhooksv1alpha1.EventBookingCancelled},
		{webhooksv1alpha1.EventNewEmployee},
	}
	restarts := 0
	ctx := context.Background()
	for i := range chaosCycles() {
		name := fmt.Sprintf("chaos-%d", rng.IntN(pool))
		cur := w.get(name)
		switch {
		case cur == nil:
			_ = k8s.Create(ctx, w.webhook(name, events[rng.IntN(len(events))]...))
		case rng.IntN(3) == 0:
			_ = k8s.Delete(ctx, cur)
		default:
			cur.Spec.EventTypes = events[rng.IntN(len(events))]
			cur.Spec.Description = fmt.Sprintf("change %d", i)
			if err := k8s.Update(ctx, cur); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
		if rng.IntN(25) == 0 { // the operator dies mid-flight and comes back
			op.stop()
			op = w.startOperator(opts, shortTimeout)
			restarts++
		}
		time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond) // pacing of the actions, not a wait for a result
	}

	// meetergo recovers; the cluster must converge to exactly what it asks for.
	for _, id := range ids {
		meetergoFk.RemoveFault(id)
	}
	g.Eventually(func(g Gomega) {
		list := &webhooksv1alpha1.MeetergoWebhookList{}
		g.Expect(k8s.List(ctx, list, clientInNamespace(w.ns))).To(Succeed())
		live := map[string]bool{}
		registered := 0
		for _, o := range list.Items {
			g.Expect(o.DeletionTimestamp.IsZero()).To(BeTrue(), "%s still being deleted", o.Name)
			_, reason, _ := cond(&o, webhooksv1alpha1.ConditionRegistered)
			g.Expect(reason).To(BeElementOf(ReasonRegistered, ReasonQuotaExceeded), "%s", o.Name)
			g.Expect(o.Status.ObservedGeneration).To(Equal(o.Generation))
			if reason == ReasonRegistered {
				registered++
			}
			live[string(o.UID)] = true
		}
		regs := w.registrations()
		owners := map[string]int{}
		for _, r := range regs {
			uid, ok := registration.OwnerUID(r.Description)
			g.Expect(ok).To(BeTrue(), "registration %d has no marker", r.ID)
			g.Expect(live[uid]).To(BeTrue(), "orphaned registration %d of a deleted resource", r.ID)
			owners[uid]++
			g.Expect(owners[uid]).To(Equal(1), "duplicate registration for %s", uid)
		}
		g.Expect(len(regs)).To(Equal(registered))
		g.Expect(registered).To(Equal(min(6, len(list.Items))))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	t.Logf("%d actions, %d operator restarts, %d registrations at the end, 0 orphans, 0 duplicates; meetergo answered statuses %v",
		chaosCycles(), restarts, len(w.registrations()), w.statuses())
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		faulted, refused406 := 0, 0
		for _, r := range meetergoFk.Requests() {
			if r.Credential == w.token && r.Fault != "" {
				faulted++
			}
			if r.Credential == w.token && r.Status == 406 {
				refused406++
			}
		}
		report := fmt.Sprintf("# Registration chaos: figures of the last `make soak`\n\n%s, `make soak` (TestChaosNoLeakedOrDuplicatedRegistrations, CHAOS_CYCLES=%d): ten resource names of one company created, changed and deleted at random while meetergo fails a share of calls (5xx, 429, hangs, creates/patches/deletes applied but answered 500 or hung) and the operator is stopped mid-flight and restarted.\n\n| figure | value |\n|---|---|\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), chaosCycles()) + fmt.Sprintf("| create/change/delete actions | %d |\n| operator restarts mid-flight | %d |\n| meetergo calls answered with an injected fault | %d |\n| registrations at the end / resources registered | %d / %d |\n| orphaned registrations | 0 |\n| duplicated registrations | 0 |\n| creates meetergo refused with 406 (the seventh webhook) | %d |\n",
			chaosCycles(), restarts, faulted, len(w.registrations()), len(w.registrations()), refused406)
		g.Expect(os.WriteFile(path, []byte(report), 0o644)).To(Succeed())
	}
}
