package receiver

import (
	"context"
	"net/http"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// TestAReplayRequestedWhileTheReplicaWasDownIsCarriedOut: a replica has a
// dead letter and is stopped; the replay annotation is set while it is
// down; it starts again on the same store. Its controller's first
// reconciles may come before the store is loaded (they did here: the
// hook holds Load until the resource has been reconciled, or until the
// controller is seen waiting for the load). The dead letter must still be
// replayed and delivered. (The controller used to sync against an empty
// queue, find no dead letters and record the replay as handled, so the
// dead letter stayed dead on that replica.)
func TestAReplayRequestedWhileTheReplicaWasDownIsCarriedOut(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	ns := namespace(t)
	strict := newTarget(t, always(http.StatusBadRequest))
	service(t, ns, "strict", strict)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("strict", "/in")},
	})

	x1 := startExtraReceiver(t, Options{DataDir: dir})
	x1.sees(t, w)
	body := booking(t)
	g.Expect(post(x1.endpoint(w, 0), body, "application/json")).To(Equal(http.StatusOK))
	g.Eventually(delivery(w)).Should(HaveField("DeadLettered", BeEquivalentTo(1)))
	g.Expect(strict.got()).To(HaveLen(1), "a 400 is not retried")
	g.Expect(x1.stop()).To(Succeed())

	// While the replica is down: the target is fixed and a replay asked for.
	strict.setAnswer(always(http.StatusAccepted))
	annotate(t, w, webhooksv1alpha1.ReplayDeadLettersAnnotation, "2030-01-01T00:00:00Z")

	r := client.ObjectKeyFromObject(w)
	gate := make(chan struct{})
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	x2 := startExtraReceiver(t, Options{DataDir: dir, hooks: &hooks{
		beforeLoad: func(ctx context.Context) {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		},
		// The controller has synced the resource before the load…
		reconciled: func(n types.NamespacedName, _ error) {
			if n == r {
				release()
			}
		},
		// … or it waits for the load (then it will sync after it).
		waitingForLoad: func(types.NamespacedName) { release() },
	}})
	_ = x2
	g.Eventually(strict.accepted).Should(Equal([][]byte{body}), "the dead letter is replayed after the restart")
	g.Eventually(delivery(w)).Should(HaveField("Forwarded", BeEquivalentTo(1)))
	g.Eventually(func() string { return noteOf(t, w, "DeadLettersReplayed") }).Should(Equal("sending 1 dead letter(s) again"))
}
