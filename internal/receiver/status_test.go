package receiver

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// TestStatusFiguresAddUpAcrossReplicas has two replicas add to one
// resource's status.delivery while the reconciler patches its conditions,
// all at once: every figure is counted and no condition is lost.
func TestStatusFiguresAddUpAcrossReplicas(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}})
	ev := &store.Event{Namespace: ns, Name: "hook", UID: string(w.UID)}
	ctx := context.Background()
	const rounds = 15

	var wg sync.WaitGroup
	for replica := range 2 {
		wg.Go(func() {
			f := newStatusFlusher(k8s, k8s, 0, logr.Discard())
			for i := range rounds {
				f.add(ev, func(d *deliveryDelta) {
					d.received++
					d.forwarded += 2
					d.lastError = fmt.Sprintf("replica %d round %d", replica, i)
				})
				f.flush(ctx)
			}
		})
	}
	wg.Go(func() {
		for i := range rounds {
			cur := &webhooksv1alpha1.MeetergoWebhook{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(w), cur); err != nil {
				t.Error(err)
				return
			}
			// As the reconciler writes: a merge patch of what it changed.
			patch := client.MergeFrom(cur.DeepCopy())
			apimeta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{
				Type: webhooksv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: fmt.Sprintf("Round%d", i), Message: "m"})
			if err := k8s.Status().Patch(ctx, cur, patch); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()

	got := &webhooksv1alpha1.MeetergoWebhook{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
	g.Expect(got.Status.Delivery.Received).To(BeEquivalentTo(2 * rounds))
	g.Expect(got.Status.Delivery.Forwarded).To(BeEquivalentTo(4 * rounds))
	g.Expect(got.Status.Delivery.LastError).To(HaveSuffix(fmt.Sprintf("round %d", rounds-1)))
	ready := apimeta.FindStatusCondition(got.Status.Conditions, webhooksv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(fmt.Sprintf("Round%d", rounds-1)))
	g.Expect(got.Status.CompanyID).NotTo(BeEmpty(), "the receiver keeps the rest of status as it found it")
}
