// Package controller holds the MeetergoWebhook reconciler: it registers each
// resource's webhook at meetergo, keeps it in sync within the company's slot
// limit, and removes it when the resource is deleted.
package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// Finalizer keeps a MeetergoWebhook until its registration is removed.
const Finalizer = "webhooks.meetergo-operator.io/registration"

// Field indexes of the reconciler's cache.
const (
	indexCompany = "status.companyID"
	indexSecret  = "spec.credentials.secretRef.name"
	indexService = "spec.targets.service.name"
)

// Options tune the reconciler; the manager's flags set them.
type Options struct {
	// ReceiverURL is the receiver's public base URL (--receiver-public-url).
	ReceiverURL string
	// AllowHTTP permits plain http:// endpoints (local use and tests only).
	AllowHTTP bool
	// WebhookLimit is meetergo's limit of webhooks per company.
	WebhookLimit int
	// ResyncPeriod is how often a registration is compared with meetergo to
	// repair drift; each resource's wait carries ±10% jitter.
	ResyncPeriod time.Duration
	// QuotaPollInterval is how often a resource waiting for a slot looks
	// again (a slot freed inside the cluster wakes it at once).
	QuotaPollInterval time.Duration
	// ListMaxAge is how old the company's cached list may be when a
	// reconcile might create a registration.
	ListMaxAge time.Duration
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff after
	// failures (meetergo down, credential refused).
	RetryBaseDelay, RetryMaxDelay time.Duration
	// Concurrency is how many resources are reconciled at once; decisions
	// within one company stay serialised.
	Concurrency int
	// TargetsReady computes the TargetsReady condition from the cache (the
	// receiver's target resolution); nil leaves it Unknown.
	TargetsReady func(ctx context.Context, c client.Reader, obj *webhooksv1alpha1.MeetergoWebhook) (metav1.ConditionStatus, string, string)
}

func (o *Options) defaults() {
	if o.WebhookLimit == 0 {
		o.WebhookLimit = 6
	}
	if o.ResyncPeriod == 0 {
		o.ResyncPeriod = 10 * time.Minute
	}
	if o.QuotaPollInterval == 0 {
		o.QuotaPollInterval = 10 * time.Second
	}
	if o.ListMaxAge == 0 {
		o.ListMaxAge = 10 * time.Second
	}
	if o.RetryBaseDelay == 0 {
		o.RetryBaseDelay = time.Second
	}
	if o.RetryMaxDelay == 0 {
		o.RetryMaxDelay = 5 * time.Minute
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
}

// MeetergoWebhookReconciler reconciles MeetergoWebhook resources.
type MeetergoWebhookReconciler struct {
	client.Client
	// APIReader reads Secrets uncached.
	APIReader client.Reader
	Meetergo  meetergo.Client
	Tokens    *token.Deriver
	Recorder  events.EventRecorder
	Options   Options

	companies *companies
	inflight  inflight
	// wake carries resources to reconcile now: those waiting for a slot
	// that just freed.
	wake chan event.TypedGenericEvent[*webhooksv1alpha1.MeetergoWebhook]
}

// The reconciler patches metadata.finalizers and the status; it never
// updates the resource (and never writes spec).
// +kubebuilder:rbac:groups=webhooks.meetergo-operator.io,resources=meetergowebhooks,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=webhooks.meetergo-operator.io,resources=meetergowebhooks/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// Reconcile brings one MeetergoWebhook's registration at meetergo in line
// with its spec.
//
// The shape follows Flux's controllers: fetch; finalizer; then ordered steps
// while a deferred function patches the status once with what they found.
func (r *MeetergoWebhookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	if !r.inflight.enter() {
		return ctrl.Result{}, nil // the leader term is over (Drain)
	}
	defer r.inflight.leave()
	obj := &webhooksv1alpha1.MeetergoWebhook{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	if !obj.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, obj)
	}
	// The finalizer is in place before anything is created at meetergo.
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		// A merge patch replaces the whole list: with a stale copy it would
		// drop a finalizer another controller added meanwhile. The
		// resourceVersion in the patch makes the API server refuse that.
		patch := client.MergeFromWithOptions(obj.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(obj, Finalizer)
		if err := r.Patch(ctx, obj, patch); err != nil {
			return conflictRetry(err)
		}
	}

	base := obj.DeepCopy()
	defer func() {
		retErr = r.patchStatus(ctx, obj, base, retErr)
	}()

	r.setTargetsReady(ctx, obj)
	if obj.Spec.Suspend {
		r.setConditions(obj, metav1.ConditionFalse, ReasonSuspended, "spec.suspend is true: no calls are made to meetergo; events that arrive are kept")
		apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonSuspended, "suspended"))
		return ctrl.Result{}, nil
	}

	res, err := r.reconcileRegistration(ctx, obj)
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	return res, nil
}

// reconcileRegistration is the ordered work of a live resource.
func (r *MeetergoWebhookReconciler) reconcileRegistration(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook) (ctrl.Result, error) {
	logger := log.FromContext(ctx)

	receiver, err := r.receiverURL(obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	cred, err := r.credential(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	ident, err := r.companies.identity(ctx, r.Meetergo, cred)
	if err != nil {
		if meetergo.IsUnauthorized(err) || meetergo.IsForbidden(err) {
			r.companies.forget(cred)
		}
		return ctrl.Result{}, err
	}
	if obj.Status.CompanyID != "" && obj.Status.CompanyID != ident.CompanyID {
		// The credential now belongs to another company. A registration
		// in the old one cannot be reached with it: say so, and start over
		// in the new company, where this resource never held a slot.
		if obj.Status.WebhookID != "" {
			r.event(obj, corev1.EventTypeWarning, "CompanyChanged", "Register",
				"the credential now belongs to company %s; meetergo webhook %s of company %s is left in place: remove it in that company's dashboard",
				ident.CompanyID, obj.Status.WebhookID, obj.Status.CompanyID)
		} else {
			r.event(obj, corev1.EventTypeWarning, "CompanyChanged", "Register",
				"the credential now belongs to company %s; if a registration of this resource was made in company %s (a create whose answer was lost), it is left in place: look in that company's dashboard for one whose description ends with %s",
				ident.CompanyID, obj.Status.CompanyID, registration.Marker(string(obj.UID)))
		}
		obj.Status.WebhookID = ""
		obj.Status.SlotHeld = false
	}
	if err := r.persistEarly(ctx, obj, ident.CompanyID); err != nil {
		return ctrl.Result{}, err
	}

	co := r.companies.get(ident.CompanyID)
	co.mu.Lock()
	defer co.mu.Unlock()

	// A reconcile-now request lists afresh; a resource without a
	// registration lists at most ListMaxAge old, one with a registration
	// trusts the list for a resync period.
	requested := obj.Annotations[webhooksv1alpha1.ReconcileRequestedAtAnnotation]
	forced := requested != "" && requested != obj.Status.LastHandledReconcileAt
	maxAge := r.Options.ResyncPeriod
	if obj.Status.WebhookID == "" {
		maxAge = r.Options.ListMaxAge
	}
	if forced {
		maxAge = 0
	}
	hooks, listed, err := co.list(ctx, r.Meetergo, cred, maxAge)
	if err != nil {
		return ctrl.Result{}, err
	}
	if forced {
		// Handled once the fresh list is made, whatever the later steps
		// bring (the conditions say that), as Flux does.
		obj.Status.LastHandledReconcileAt = requested
	}
	claimants := r.claimants(ctx, ident.CompanyID, obj, receiver)
	own := registration.NewOwnership(claimants)
	ours, dups := registration.Find(hooks, own, string(obj.UID), obj.Status.WebhookID)
	if ours == nil && !listed && !co.fresh(r.Options.ListMaxAge) {
		// Gone at meetergo since the last list? Look again before creating.
		if hooks, listed, err = co.list(ctx, r.Meetergo, cred, 0); err != nil {
			return ctrl.Result{}, err
		}
		ours, dups = registration.Find(hooks, own, string(obj.UID), obj.Status.WebhookID)
	}
	if listed {
		// Every list is compared with every holder of the company: one
		// whose registration vanished keeps its slot and is re-registered
		// now, before any waiting resource.
		r.wakeVanished(ctx, co, hooks, claimants, obj.UID)
	}
	for _, d := range dups {
		if err := r.Meetergo.DeleteWebhook(ctx, cred, d.ID); err != nil && !meetergo.IsNotFound(err) {
			co.invalidate()
			return ctrl.Result{}, err
		}
		co.remove(d.ID)
		r.event(obj, corev1.EventTypeNormal, "DuplicateRemoved", "Deregister", "removed duplicate registration %s at meetergo", d.ID)
	}

	currentEndpoint := func() string {
		return token.Endpoint(receiver, r.Tokens.Token(string(obj.UID), obj.Status.TokenGeneration))
	}
	rotationWaits, err := r.rotate(ctx, obj, ours, currentEndpoint())
	if err != nil {
		return ctrl.Result{}, err
	}
	desired := meetergo.WebhookInput{
		Endpoint:    currentEndpoint(),
		Description: registration.Description(obj.Spec.Description, string(obj.UID)),
		EventTypes:  eventTypes(obj.Spec.EventTypes),
	}

	var current meetergo.Webhook
	patchedEndpoint := false
	switch {
	case ours == nil:
		if obj.Status.WebhookID != "" {
			// No status claims a registration meetergo did not list.
			r.event(obj, corev1.EventTypeWarning, "RegistrationVanished", "Register",
				"meetergo no longer lists webhook %s (deleted in the dashboard?); this resource keeps its slot and registers again", obj.Status.WebhookID)
			obj.Status.WebhookID = ""
			obj.Status.SlotHeld = true
			claimants = r.claimants(ctx, ident.CompanyID, obj, receiver)
		}
		limit := co.limit(r.Options.WebhookLimit)
		decision := registration.DecideSlot(limit, hooks, claimants, string(obj.UID))
		r.recordSlots(ident.CompanyID, decision)
		if !decision.Allowed {
			return r.waitForSlot(obj, r.slotMessage(co, decision))
		}
		created, err := r.Meetergo.CreateWebhook(ctx, cred, desired)
		if err != nil {
			// An ambiguous create may have happened: the next reconcile
			// lists again and adopts it by its endpoint or marker instead
			// of creating.
			co.invalidate()
			if meetergo.IsQuotaExceeded(err) || meetergo.IsPlanLimit(err) {
				return r.refusedCreate(ctx, obj, co, cred, claimants, err)
			}
			return ctrl.Result{}, err
		}
		if created.ID == "" {
			// meetergo answered without the new webhook (an empty body):
			// the next list shows it, and it is adopted by its endpoint.
			co.invalidate()
			obj.Status.SlotHeld = true
			msg := "meetergo accepted the registration but did not answer with it; looking it up in meetergo's list"
			r.setConditions(obj, metav1.ConditionFalse, ReasonProgressing, msg)
			return ctrl.Result{RequeueAfter: r.Options.RetryBaseDelay}, nil
		}
		co.put(created)
		co.sawAnswer(created)
		current = created
		logger.Info("registered webhook at meetergo", "webhookID", created.ID, "company", ident.CompanyID)
		r.event(obj, corev1.EventTypeNormal, "Registered", "Register", "registered as meetergo webhook %s", created.ID)
		if !registration.HasMarker(created.Description, string(obj.UID)) {
			// meetergo shortened or changed the description: the
			// registration is still recognised by its endpoint.
			logger.Info("meetergo did not keep the ownership marker in the description", "webhookID", created.ID,
				"sentLength", len(desired.Description), "keptLength", len(created.Description))
			r.event(obj, corev1.EventTypeWarning, "MarkerNotKept", "Register",
				"meetergo kept %d of the %d characters of the description sent for webhook %s, without the ownership marker; the operator recognises the registration by its endpoint (shorten spec.description to keep the marker visible in the dashboard)",
				len(created.Description), len(desired.Description), created.ID)
		}
	default:
		current = *ours
		if obj.Status.WebhookID != current.ID {
			r.event(obj, corev1.EventTypeNormal, "Adopted", "Register", "adopted existing meetergo webhook %s carrying this resource's endpoint or marker", current.ID)
		}
		if patch, needed := registration.Diff(current, desired, co.descLimit); needed {
			updated, err := r.Meetergo.UpdateWebhook(ctx, cred, current.ID, patch)
			if err != nil {
				co.invalidate()
				return ctrl.Result{}, err
			}
			co.sawAnswer(updated)
			patchedEndpoint = patch.Endpoint != ""
			current = applied(current, updated)
			co.put(current)
			r.event(obj, corev1.EventTypeNormal, "Updated", "Update", "updated meetergo webhook %s to match the spec", current.ID)
		}
	}

	r.recordSlots(ident.CompanyID, registration.DecideSlot(co.limit(r.Options.WebhookLimit), co.webhooks, claimants, string(obj.UID)))

	obj.Status.WebhookID = current.ID
	obj.Status.SlotHeld = true
	obj.Status.Endpoint = token.Masked(receiver)
	obj.Status.EventTypes = confirmedTypes(current.EventTypes)
	now := metav1.Now()
	obj.Status.LastSyncTime = &now
	next := jitter(r.Options.ResyncPeriod)
	if rotationWaits && patchedEndpoint {
		// The PATCH to the current token went through just now: the
		// rotation asked for next is carried out at once.
		next = r.Options.RetryBaseDelay
	}
	apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonRegistered, "nothing blocks progress"))
	if current.Disabled {
		// Listed, so the slot is held, but meetergo delivers nothing to it.
		msg := fmt.Sprintf("meetergo lists webhook %s as disabled (%s): it delivers no events to it; re-enable it in meetergo's dashboard (the API has no way to), then set the annotation %s to check at once",
			current.ID, disabledHow(current), webhooksv1alpha1.ReconcileRequestedAtAnnotation)
		if c := apimeta.FindStatusCondition(obj.Status.Conditions, webhooksv1alpha1.ConditionRegistered); c == nil || c.Reason != ReasonDisabled {
			r.event(obj, corev1.EventTypeWarning, ReasonDisabled, "Register", "%s", msg)
		}
		r.setConditions(obj, metav1.ConditionFalse, ReasonDisabled, msg)
		return ctrl.Result{RequeueAfter: next}, nil
	}
	msg := fmt.Sprintf("registered at meetergo as webhook %s", current.ID)
	apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionRegistered, metav1.ConditionTrue, ReasonRegistered, msg))
	if tc := apimeta.FindStatusCondition(obj.Status.Conditions, webhooksv1alpha1.ConditionTargetsReady); tc != nil && tc.Status == metav1.ConditionFalse {
		// Registered, but events cannot reach a target yet: they are kept
		// and forwarded once it is ready.
		apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionReady, metav1.ConditionFalse, tc.Reason, msg+"; "+tc.Message))
	} else {
		apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionReady, metav1.ConditionTrue, ReasonRegistered, msg))
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// applied is the registration after a PATCH: what was listed, with what
// meetergo answered laid over it. An answer may be empty or partial (the
// client then fills in only the fields sent), so a field it lacks keeps
// its listed value.
func applied(before, answer meetergo.Webhook) meetergo.Webhook {
	out := before
	if answer.Endpoint != "" {
		out.Endpoint = answer.Endpoint
	}
	if answer.Description != "" {
		out.Description = answer.Description
	}
	if answer.EventTypes != nil {
		out.EventTypes = answer.EventTypes
	}
	out.Disabled = before.Disabled || answer.Disabled
	if answer.DisabledReason != "" {
		out.DisabledReason = answer.DisabledReason
	}
	return out
}

// persistEarly records the company before any call that changes
// meetergo, so that the slot queue sees this resource and a deletion knows
// where to look even if the reconcile dies right after that call.
func (r *MeetergoWebhookReconciler) persistEarly(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook, companyID string) error {
	if obj.Status.CompanyID == companyID {
		return nil
	}
	early := obj.DeepCopy()
	patch := client.MergeFrom(early.DeepCopy())
	early.Status.CompanyID = companyID
	if err := r.Status().Patch(ctx, early, patch); err != nil {
		return err
	}
	obj.Status.CompanyID = companyID
	return nil
}

// rotate raises the token generation for a new value of the rotate-token
// annotation, and writes it to status before meetergo is PATCHed to the new
// token: receivers then accept the new token, and still the previous one,
// before meetergo posts to it. A rotation waits while meetergo still holds
// the token before the current one (the previous rotation's PATCH has not
// gone through): receivers accept only the current and the previous
// generation. It reports whether a rotation is left waiting.
func (r *MeetergoWebhookReconciler) rotate(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook, ours *meetergo.Webhook, currentEndpoint string) (waiting bool, err error) {
	v := obj.Annotations[webhooksv1alpha1.RotateTokenAnnotation]
	if v == "" || v == obj.Status.LastHandledRotateToken {
		return false, nil
	}
	if ours != nil && !registration.SameEndpoint(ours.Endpoint, currentEndpoint) {
		return true, nil
	}
	early := obj.DeepCopy()
	patch := client.MergeFrom(early.DeepCopy())
	early.Status.TokenGeneration++
	now := metav1.Now()
	early.Status.TokenRotatedAt = &now
	early.Status.LastHandledRotateToken = v
	if err := r.Status().Patch(ctx, early, patch); err != nil {
		return false, err
	}
	obj.Status.TokenGeneration = early.Status.TokenGeneration
	obj.Status.TokenRotatedAt = early.Status.TokenRotatedAt
	obj.Status.LastHandledRotateToken = v
	r.event(obj, corev1.EventTypeNormal, "TokenRotated", "Rotate", "receiver token rotated to generation %d; the previous token is accepted for a grace period", obj.Status.TokenGeneration)
	return false, nil
}

// refusedCreate handles meetergo refusing a create for want of a slot (406)
// or by a plan wall. With fewer registrations listed than --webhook-limit,
// the company's limit is lower than configured: it is learned, shown, and
// no create meetergo would refuse is sent until it expires.
func (r *MeetergoWebhookReconciler) refusedCreate(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook, co *company, cred meetergo.Credential, claimants []registration.Claimant, refusal error) (ctrl.Result, error) {
	hooks, _, err := co.list(ctx, r.Meetergo, cred, 0)
	if err != nil {
		return ctrl.Result{}, errors.Join(refusal, err)
	}
	n := len(hooks)
	switch {
	case n > 0 && n < r.Options.WebhookLimit:
		// One refusal could be a race with a create and a delete in the
		// dashboard; a second at the same count is the limit.
		if !co.refusal(n, 2*r.Options.ResyncPeriod) {
			msg := fmt.Sprintf("meetergo refused a new webhook with %d of %d slots used; trying once more to tell a lower limit of this company from a change in the dashboard", n, r.Options.WebhookLimit)
			return r.waitForSlot(obj, msg)
		}
		co.learn(n, r.Options.ResyncPeriod)
	case meetergo.IsPlanLimit(refusal):
		// A plan without webhooks at all (or a wall unrelated to the
		// count): no slot will free up.
		return ctrl.Result{}, refusal
	}
	d := registration.DecideSlot(co.limit(r.Options.WebhookLimit), hooks, claimants, string(obj.UID))
	r.recordSlots(obj.Status.CompanyID, d)
	msg := r.slotMessage(co, d)
	if co.learned(r.Options.WebhookLimit) == 0 {
		msg = "meetergo refused a new webhook: the company has no free slot (someone registered one outside this cluster); " + msg
	}
	return r.waitForSlot(obj, msg)
}

// slotMessage explains a refused slot, naming a learned limit.
func (r *MeetergoWebhookReconciler) slotMessage(co *company, d registration.SlotDecision) string {
	msg := d.Message()
	if l := co.learned(r.Options.WebhookLimit); l > 0 {
		msg += fmt.Sprintf("; meetergo refused a create with %d registrations listed, so this company's limit is %d, not the configured %d (its plan may allow fewer webhooks); the operator sends no create beyond it and tries once more after %s",
			l, l, r.Options.WebhookLimit, r.Options.ResyncPeriod)
	}
	return msg
}

// disabledHow names the field by which meetergo said a webhook is off.
func disabledHow(w meetergo.Webhook) string {
	if w.DisabledReason != "" {
		return w.DisabledReason
	}
	return "disabled"
}

// waitForSlot marks a resource as queued for one of the company's slots.
func (r *MeetergoWebhookReconciler) waitForSlot(obj *webhooksv1alpha1.MeetergoWebhook, msg string) (ctrl.Result, error) {
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, webhooksv1alpha1.ConditionRegistered); c == nil || c.Reason != ReasonQuotaExceeded {
		r.event(obj, corev1.EventTypeWarning, ReasonQuotaExceeded, "Register", "%s", msg)
	}
	obj.Status.WebhookID = ""
	r.setConditions(obj, metav1.ConditionFalse, ReasonQuotaExceeded, msg)
	apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionStalled, metav1.ConditionFalse, ReasonQuotaExceeded, "waiting for a free slot"))
	return ctrl.Result{RequeueAfter: r.Options.QuotaPollInterval}, nil
}

// finalize removes the registration (deletionPolicy Delete) and then the
// finalizer. It never hangs in silence: what blocks it is in the conditions.
func (r *MeetergoWebhookReconciler) finalize(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook) (result ctrl.Result, retErr error) {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	if obj.Spec.DeletionPolicy != webhooksv1alpha1.DeletionPolicyOrphan {
		if err := r.deregister(ctx, obj); err != nil {
			base := obj.DeepCopy()
			f := classify(err)
			msg := fmt.Sprintf("cannot remove the registration at meetergo (%s: %s); fix the credential, or set spec.deletionPolicy to Orphan to leave it there and finish the deletion", f.reason, f.message)
			r.setConditions(obj, metav1.ConditionFalse, ReasonDeletionBlocked, msg)
			r.event(obj, corev1.EventTypeWarning, ReasonDeletionBlocked, "Deregister", "%s", msg)
			res, err := r.outcome(f)
			return res, r.patchStatus(ctx, obj, base, err)
		}
	} else if obj.Status.WebhookID != "" {
		r.event(obj, corev1.EventTypeNormal, "Orphaned", "Deregister", "left meetergo webhook %s in place (deletionPolicy Orphan)", obj.Status.WebhookID)
	}
	patch := client.MergeFromWithOptions(obj.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Patch(ctx, obj, patch); err != nil {
		return conflictRetry(err)
	}
	r.wakeWaiting(ctx, obj.Status.CompanyID, obj.UID)
	return ctrl.Result{}, nil
}

// conflictRetry turns a refused optimistic-lock patch into a quick retry
// (the cache is about to see the newer object); a resource already gone is
// done.
func conflictRetry(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// deregister deletes every registration of the resource at meetergo; a 404
// counts as deleted.
func (r *MeetergoWebhookReconciler) deregister(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook) error {
	if obj.Status.CompanyID == "" && obj.Status.WebhookID == "" {
		// The cached copy may predate the status patch that recorded the
		// company just before a create: ask the API server.
		latest := &webhooksv1alpha1.MeetergoWebhook{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), latest); err != nil {
			return client.IgnoreNotFound(err)
		}
		if latest.Status.CompanyID == "" && latest.Status.WebhookID == "" {
			// The company is recorded before any create: none was made.
			return nil
		}
		obj.Status = latest.Status
	}
	cred, err := r.credential(ctx, obj)
	if err != nil {
		return err
	}
	ident, err := r.companies.identity(ctx, r.Meetergo, cred)
	if err != nil {
		return err
	}
	co := r.companies.get(ident.CompanyID)
	co.mu.Lock()
	defer co.mu.Unlock()
	hooks, _, err := co.list(ctx, r.Meetergo, cred, r.Options.ListMaxAge)
	if err != nil {
		return err
	}
	receiver, _ := r.receiverURL(obj)
	own := registration.NewOwnership([]registration.Claimant{r.claimant(obj, receiver)})
	ours, dups := registration.Find(hooks, own, string(obj.UID), obj.Status.WebhookID)
	if ours != nil {
		dups = append(dups, *ours)
	}
	for _, w := range dups {
		if err := r.Meetergo.DeleteWebhook(ctx, cred, w.ID); err != nil && !meetergo.IsNotFound(err) {
			co.invalidate()
			return err
		}
		co.remove(w.ID)
		r.event(obj, corev1.EventTypeNormal, "Deregistered", "Deregister", "removed meetergo webhook %s", w.ID)
	}
	return nil
}

// fail records a failed step in the conditions and says how to go on.
func (r *MeetergoWebhookReconciler) fail(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook, err error) (ctrl.Result, error) {
	f := classify(err)
	log.FromContext(ctx).Info("reconcile failed", "reason", f.reason, "message", f.message)
	reconcileErrors.WithLabelValues(f.reason).Inc()
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, webhooksv1alpha1.ConditionReady); c == nil || c.Reason != f.reason {
		r.event(obj, corev1.EventTypeWarning, f.reason, "Reconcile", "%s", f.message)
	}
	r.setConditions(obj, metav1.ConditionFalse, f.reason, f.message)
	stalled := metav1.ConditionFalse
	if f.stalled {
		stalled = metav1.ConditionTrue
	}
	if waitsForAPerson(f.reason) && obj.Status.WebhookID == "" {
		// It cannot use a slot until a person acts: its claim to one
		// ends, so it does not keep a free slot from waiting resources.
		obj.Status.SlotHeld = false
	}
	apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionStalled, stalled, f.reason, f.message))
	return r.outcome(f)
}

// outcome turns a failure into what the workqueue should do: nothing for a
// stalled resource (a spec or Secret change wakes it), the wait meetergo
// asked for, or the exponential backoff of the workqueue's rate limiter.
func (r *MeetergoWebhookReconciler) outcome(f *failure) (ctrl.Result, error) {
	switch {
	case f.stalled:
		return ctrl.Result{}, reconcile.TerminalError(f)
	case f.retryAfter > 0:
		return ctrl.Result{RequeueAfter: f.retryAfter}, nil
	default:
		return ctrl.Result{}, f
	}
}

// setConditions sets Ready and Registered alike.
func (r *MeetergoWebhookReconciler) setConditions(obj *webhooksv1alpha1.MeetergoWebhook, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionReady, status, reason, msg))
	apimeta.SetStatusCondition(&obj.Status.Conditions, condition(webhooksv1alpha1.ConditionRegistered, status, reason, msg))
}

// setTargetsReady says whether every target Service can be reached. It
// reads the cache only, so it runs on every reconcile at no cost to meetergo.
func (r *MeetergoWebhookReconciler) setTargetsReady(ctx context.Context, obj *webhooksv1alpha1.MeetergoWebhook) {
	c := condition(webhooksv1alpha1.ConditionTargetsReady, metav1.ConditionUnknown, ReasonNotImplemented, "forwarding to targets is not wired into this build")
	if r.Options.TargetsReady != nil {
		c.Status, c.Reason, c.Message = r.Options.TargetsReady(ctx, r.Client, obj)
	}
	apimeta.SetStatusCondition(&obj.Status.Conditions, c)
}

// patchStatus writes the status once, with observedGeneration and every
// condition's observedGeneration set to the generation just reconciled.
func (r *MeetergoWebhookReconciler) patchStatus(ctx context.Context, obj, base *webhooksv1alpha1.MeetergoWebhook, retErr error) error {
	obj.Status.ObservedGeneration = obj.Generation
	for i := range obj.Status.Conditions {
		obj.Status.Conditions[i].ObservedGeneration = obj.Generation
	}
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
		return errors.Join(retErr, fmt.Errorf("patching status: %w", err))
	}
	return retErr
}

// receiverURL is the base URL meetergo posts to for this resource.
func (r *MeetergoWebhookReconciler) receiverURL(obj *webhooksv1alpha1.MeetergoWebhook) (string, error) {
	raw := obj.Spec.ReceiverURL
	if raw == "" {
		raw = r.Options.ReceiverURL
	}
	if raw == "" {
		return "", stalledf(ReasonInvalidEndpoint, "no receiver URL: start the operator with --receiver-public-url or set spec.receiverURL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", stalledf(ReasonInvalidEndpoint, "receiver URL %q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && !r.Options.AllowHTTP {
		return "", stalledf(ReasonInvalidEndpoint, "receiver URL %q is plain http: meetergo must post over https (the operator's --allow-insecure-http is for local use only)", raw)
	}
	return raw, nil
}

// claimants are the resources of this cluster in a company's slot queue,
// from the cache, with self as this reconcile knows it.
func (r *MeetergoWebhookReconciler) claimants(ctx context.Context, companyID string, self *webhooksv1alpha1.MeetergoWebhook, receiver string) []registration.Claimant {
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if err := r.List(ctx, list, client.MatchingFields{indexCompany: companyID}); err != nil {
		log.FromContext(ctx).Error(err, "listing the company's resources from the cache")
	}
	out := make([]registration.Claimant, 0, len(list.Items)+1)
	out = append(out, r.claimant(self, receiver))
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == self.UID {
			continue
		}
		base, err := r.receiverURL(o)
		if err != nil {
			base = ""
		}
		c := r.claimant(o, base)
		if ready := apimeta.FindStatusCondition(o.Status.Conditions, webhooksv1alpha1.ConditionReady); apimeta.IsStatusConditionTrue(o.Status.Conditions, webhooksv1alpha1.ConditionStalled) ||
			(ready != nil && waitsForAPerson(ready.Reason)) {
			// A resource that waits for a person (stalled, or its
			// credential refused) waits for no slot: it does not keep a
			// free slot from those queued behind it. It queues again when
			// its spec or Secret changes.
			c.Wants = false
		}
		out = append(out, c)
	}
	return out
}

// claimant describes one resource for the slot queue and for recognising
// its registrations.
func (r *MeetergoWebhookReconciler) claimant(o *webhooksv1alpha1.MeetergoWebhook, receiver string) registration.Claimant {
	c := registration.Claimant{
		UID:       string(o.UID),
		Key:       o.Namespace + "/" + o.Name,
		CreatedAt: o.CreationTimestamp.Time,
		Wants:     !o.Spec.Suspend && o.DeletionTimestamp.IsZero(),
		Holds:     o.Status.WebhookID != "" || o.Status.SlotHeld,
	}
	bases := []string{}
	if receiver != "" {
		bases = append(bases, receiver)
	}
	// The receiver URL of the last registration, from the masked endpoint.
	if last, ok := strings.CutSuffix(o.Status.Endpoint, token.Masked("")); ok && last != "" && last != strings.TrimRight(receiver, "/") {
		bases = append(bases, last)
	}
	for _, base := range bases {
		for _, gen := range []int64{o.Status.TokenGeneration, o.Status.TokenGeneration - 1} {
			if gen >= 0 {
				c.Endpoints = append(c.Endpoints, token.Endpoint(base, r.Tokens.Token(string(o.UID), gen)))
			}
		}
	}
	return c
}

// wakeVanished reconciles at once the company's holders whose status names
// a registration the list just read does not show; their status keeps their
// priority for a slot (status.slotHeld).
func (r *MeetergoWebhookReconciler) wakeVanished(ctx context.Context, co *company, hooks []meetergo.Webhook, claimants []registration.Claimant, self types.UID) {
	d := registration.DecideSlot(co.limit(r.Options.WebhookLimit), hooks, claimants, string(self))
	if len(d.Vanished) == 0 {
		return
	}
	vanished := map[types.UID]bool{}
	for _, uid := range d.Vanished {
		vanished[types.UID(uid)] = true
	}
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if len(claimants) > 0 {
		_ = r.List(ctx, list, client.MatchingFields{indexCompany: co.id})
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == self || !vanished[o.UID] || o.Status.WebhookID == "" {
			continue
		}
		select {
		case r.wake <- event.TypedGenericEvent[*webhooksv1alpha1.MeetergoWebhook]{Object: o}:
		default: // the queue is full; the holder's resync catches up
		}
	}
}

// wakeWaiting reconciles the company's resources that wait for a slot, now
// that one freed up.
func (r *MeetergoWebhookReconciler) wakeWaiting(ctx context.Context, companyID string, except types.UID) {
	if companyID == "" {
		return
	}
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if err := r.List(ctx, list, client.MatchingFields{indexCompany: companyID}); err != nil {
		return
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == except || apimeta.IsStatusConditionTrue(o.Status.Conditions, webhooksv1alpha1.ConditionRegistered) {
			continue
		}
		select {
		case r.wake <- event.TypedGenericEvent[*webhooksv1alpha1.MeetergoWebhook]{Object: o}:
		default: // the queue is full; the poll interval catches up
		}
	}
}

func (r *MeetergoWebhookReconciler) event(obj *webhooksv1alpha1.MeetergoWebhook, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, typ, reason, action, note, args...)
	}
}

func eventTypes(in []webhooksv1alpha1.EventType) []string {
	out := make([]string, len(in))
	for i, t := range in {
		out[i] = string(t)
	}
	return out
}

func confirmedTypes(in []string) []webhooksv1alpha1.EventType {
	out := make([]webhooksv1alpha1.EventType, len(in))
	for i, t := range in {
		out[i] = webhooksv1alpha1.EventType(t)
	}
	return out
}

// jitter spreads periodic work by ±10%.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// SetupWithManager registers the reconciler, its indexes and watches.
func (r *MeetergoWebhookReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.Options.defaults()
	r.companies = newCompanies()
	r.wake = make(chan event.TypedGenericEvent[*webhooksv1alpha1.MeetergoWebhook], 1024)
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &webhooksv1alpha1.MeetergoWebhook{}, indexCompany, func(o client.Object) []string {
		if c := o.(*webhooksv1alpha1.MeetergoWebhook).Status.CompanyID; c != "" {
			return []string{c}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &webhooksv1alpha1.MeetergoWebhook{}, indexSecret, func(o client.Object) []string {
		return []string{o.(*webhooksv1alpha1.MeetergoWebhook).Spec.Credentials.SecretRef.Name}
	}); err != nil {
		return err
	}

	if err := idx.IndexField(ctx, &webhooksv1alpha1.MeetergoWebhook{}, indexService, func(o client.Object) []string {
		var names []string
		for _, t := range o.(*webhooksv1alpha1.MeetergoWebhook).Spec.Targets {
			names = append(names, t.Service.Name)
		}
		return names
	}); err != nil {
		return err
	}

	b := ctrl.NewControllerManagedBy(mgr)
	if r.Options.TargetsReady != nil {
		// Target Services and their endpoints decide TargetsReady.
		b = b.Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.resourcesForService)).
			Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.resourcesForService))
	}
	return b.
		// Status writes do not wake the reconciler; spec changes and the
		// rotate-token and replay annotations do.
		For(&webhooksv1alpha1.MeetergoWebhook{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Secrets are watched by metadata only: their contents are read
		// uncached, and only where a resource names them.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.resourcesForSecret)).
		WatchesRawSource(source.Channel(r.wake, &handler.TypedEnqueueRequestForObject[*webhooksv1alpha1.MeetergoWebhook]{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: r.Options.Concurrency,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](r.Options.RetryBaseDelay, r.Options.RetryMaxDelay),
		}).
		Named("meetergowebhook").
		Complete(r)
}

// resourcesForSecret maps a Secret to the resources that name it.
func (r *MeetergoWebhookReconciler) resourcesForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	return r.requestsFor(ctx, secret.GetNamespace(), indexSecret, secret.GetName())
}

// resourcesForService maps a Service, or one of its EndpointSlices, to the
// resources that target it.
func (r *MeetergoWebhookReconciler) resourcesForService(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetName()
	if _, ok := o.(*discoveryv1.EndpointSlice); ok {
		name = o.GetLabels()[discoveryv1.LabelServiceName]
	}
	if name == "" {
		return nil
	}
	return r.requestsFor(ctx, o.GetNamespace(), indexService, name)
}

func (r *MeetergoWebhookReconciler) requestsFor(ctx context.Context, namespace, index, value string) []reconcile.Request {
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if err := r.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{index: value}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return reqs
}
