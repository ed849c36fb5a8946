package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

func newWebhook(name string) *webhooksv1alpha1.MeetergoWebhook {
	return &webhooksv1alpha1.MeetergoWebhook{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes:  []webhooksv1alpha1.EventType{webhooksv1alpha1.EventBookingCreated},
			Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
			Targets: []webhooksv1alpha1.Target{{
				Service: webhooksv1alpha1.ServiceReference{Name: "crm", Port: intstr.FromString("http")},
			}},
		},
	}
}

// condition returns the condition of the given type, or nil.
func condition(obj *webhooksv1alpha1.MeetergoWebhook, t string) *metav1.Condition {
	return apimeta.FindStatusCondition(obj.Status.Conditions, t)
}

func TestStatusTracksGenerationAndSaysWhatIsNotDone(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	obj := newWebhook("status-honest")
	g.Expect(k8s.Create(ctx, obj)).To(Succeed())
	key := client.ObjectKeyFromObject(obj)

	got := &webhooksv1alpha1.MeetergoWebhook{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key, got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		for _, typ := range []string{webhooksv1alpha1.ConditionReady, webhooksv1alpha1.ConditionRegistered, webhooksv1alpha1.ConditionTargetsReady, webhooksv1alpha1.ConditionStalled} {
			g.Expect(condition(got, typ)).NotTo(BeNil(), "condition %s", typ)
		}
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

	g.Expect(condition(got, webhooksv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(condition(got, webhooksv1alpha1.ConditionRegistered).Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(condition(got, webhooksv1alpha1.ConditionRegistered).Reason).To(Equal(ReasonNotImplemented))
	g.Expect(condition(got, webhooksv1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(condition(got, webhooksv1alpha1.ConditionReady).ObservedGeneration).To(Equal(got.Generation))

	// A spec change is observed: the new generation and the suspension show.
	got.Spec.Suspend = true
	g.Expect(k8s.Update(ctx, got)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key, got)).To(Succeed())
		g.Expect(got.Generation).To(BeEquivalentTo(2))
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(condition(got, webhooksv1alpha1.ConditionReady).Reason).To(Equal(ReasonSuspended))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
}

func TestControllerNeverWritesSpec(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	obj := newWebhook("spec-untouched")
	g.Expect(k8s.Create(ctx, obj)).To(Succeed())
	created := obj.DeepCopy()

	got := &webhooksv1alpha1.MeetergoWebhook{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	g.Expect(got.Generation).To(BeEquivalentTo(1), "a spec write by the controller would raise the generation")
	g.Expect(got.Spec).To(Equal(created.Spec))
}
