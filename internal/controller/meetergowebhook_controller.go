// Package controller holds the MeetergoWebhook reconciler.
package controller

import (
	"context"
	"errors"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// Reasons used on the MeetergoWebhook's conditions.
const (
	// ReasonNotImplemented marks a condition whose work this version of the
	// operator does not do yet.
	ReasonNotImplemented = "NotImplemented"
	// ReasonSuspended marks conditions while spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonReconciling marks a condition the reconciler is working towards.
	ReasonReconciling = "Reconciling"
)

// MeetergoWebhookReconciler reconciles MeetergoWebhook resources.
type MeetergoWebhookReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=webhooks.meetergo-operator.io,resources=meetergowebhooks,verbs=get;list;watch
// +kubebuilder:rbac:groups=webhooks.meetergo-operator.io,resources=meetergowebhooks/status,verbs=get;update;patch

// Reconcile brings one MeetergoWebhook's status up to date with its spec.
//
// The shape follows Flux's controllers: fetch, then do the ordered steps
// while a deferred function patches the status once with what they found.
func (r *MeetergoWebhookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	logger := log.FromContext(ctx)

	obj := &webhooksv1alpha1.MeetergoWebhook{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	base := obj.DeepCopy()
	defer func() {
		obj.Status.ObservedGeneration = obj.Generation
		if err := r.Status().Patch(ctx, obj, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status: %w", err))
		}
	}()

	desired := desiredConditions(obj)
	for _, c := range desired {
		c.ObservedGeneration = obj.Generation
		apimeta.SetStatusCondition(&obj.Status.Conditions, c)
	}
	logger.V(1).Info("reconciled", "generation", obj.Generation)
	return ctrl.Result{}, nil
}

// desiredConditions says, for this version of the operator, which conditions
// a resource has. Registration with meetergo is not wired in yet, so
// Registered and TargetsReady are Unknown and Ready is False: nothing claims
// to work that does not.
func desiredConditions(obj *webhooksv1alpha1.MeetergoWebhook) []metav1.Condition {
	if obj.Spec.Suspend {
		return []metav1.Condition{
			{Type: webhooksv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonSuspended, Message: "spec.suspend is true: no calls are made to meetergo"},
			{Type: webhooksv1alpha1.ConditionRegistered, Status: metav1.ConditionUnknown, Reason: ReasonSuspended, Message: "spec.suspend is true"},
			{Type: webhooksv1alpha1.ConditionTargetsReady, Status: metav1.ConditionUnknown, Reason: ReasonSuspended, Message: "spec.suspend is true"},
			{Type: webhooksv1alpha1.ConditionStalled, Status: metav1.ConditionFalse, Reason: ReasonSuspended, Message: "spec.suspend is true"},
		}
	}
	return []metav1.Condition{
		{Type: webhooksv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonNotImplemented, Message: "registration at meetergo is not implemented in this version"},
		{Type: webhooksv1alpha1.ConditionRegistered, Status: metav1.ConditionUnknown, Reason: ReasonNotImplemented, Message: "registration at meetergo is not implemented in this version"},
		{Type: webhooksv1alpha1.ConditionTargetsReady, Status: metav1.ConditionUnknown, Reason: ReasonNotImplemented, Message: "target resolution is not implemented in this version"},
		{Type: webhooksv1alpha1.ConditionStalled, Status: metav1.ConditionFalse, Reason: ReasonReconciling, Message: "nothing blocks progress"},
	}
}

// SetupWithManager registers the reconciler with a manager.
func (r *MeetergoWebhookReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&webhooksv1alpha1.MeetergoWebhook{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("meetergowebhook").
		Complete(r)
}
