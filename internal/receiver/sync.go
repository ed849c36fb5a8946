package receiver

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
)

// resourceSync tells this replica's forwarder when a MeetergoWebhook
// changes in a way that matters to its deliveries: deleted (drop them),
// spec changed (resume after suspend; targets may be gone), replay
// annotation set. It runs on every replica, since each has its own store,
// and syncs nothing before the store is loaded (forward.Forwarder.Sync
// waits for Load).
type resourceSync struct {
	reader    client.Reader
	forwarder *forward.Forwarder
	hooks     *hooks // tests only
}

func (s *resourceSync) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	if s.hooks != nil && s.hooks.reconciled != nil {
		defer func() { s.hooks.reconciled(req.NamespacedName, err) }()
	}
	// Nothing is synced before the store is loaded (the controller may
	// start first): the queue would not show the dead letters a replay
	// is for. The resource is read once it is.
	select {
	case <-s.forwarder.Loaded():
	default:
		if s.hooks != nil && s.hooks.waitingForLoad != nil {
			s.hooks.waitingForLoad(req.NamespacedName)
		}
		select {
		case <-s.forwarder.Loaded():
		case <-ctx.Done():
			return ctrl.Result{}, ctx.Err()
		}
	}
	w := &webhooksv1alpha1.MeetergoWebhook{}
	if err := s.reader.Get(ctx, req.NamespacedName, w); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		w = nil
	}
	return ctrl.Result{}, s.forwarder.Sync(ctx, req.NamespacedName, w)
}

// setup registers the controller; status writes do not wake it.
func (s *resourceSync) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("meetergo-receiver").
		For(&webhooksv1alpha1.MeetergoWebhook{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(s)
}
