package forward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// Sync brings a resource's deliveries in line with the resource: w is nil
// when r no longer exists. Deliveries of a deleted resource (or of an
// earlier one of the same name) are dropped; those of a resumed resource are
// scheduled; a new value of the replay annotation replays its dead letters.
func (f *Forwarder) Sync(ctx context.Context, r types.NamespacedName, w *webhooksv1alpha1.MeetergoWebhook) error {
	uid := ""
	if w != nil {
		uid = string(w.UID)
	}
	gone := f.q.take(r, func(it *item) bool { return it.ev.UID != uid })
	f.forget(ctx, gone, "resource deleted")
	if err := f.forgetReplays(ctx, gone); err != nil {
		return err
	}
	if w == nil {
		return nil
	}
	if !w.Spec.Suspend {
		f.q.resume(r, uid, f.now())
	}
	return f.replay(ctx, w)
}

// forgetReplays deletes the replay values handled for the resources the
// items belonged to.
func (f *Forwarder) forgetReplays(ctx context.Context, items []*item) error {
	var names []string
	for _, it := range items {
		if n := replayMeta(it.ev.UID); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return f.cfg.Store.DeleteMeta(ctx, names...)
}

// replayMeta names the store value holding the last replay value handled
// for a resource.
func replayMeta(uid string) string { return "replay/" + uid }

// replay queues w's dead letters again if its replay annotation holds a
// value this replica has not handled yet.
func (f *Forwarder) replay(ctx context.Context, w *webhooksv1alpha1.MeetergoWebhook) error {
	value := w.Annotations[webhooksv1alpha1.ReplayDeadLettersAnnotation]
	if value == "" {
		return nil
	}
	handled, err := f.cfg.Store.Meta(replayMeta(string(w.UID)))
	if err != nil || handled == value {
		return err
	}
	r := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	ds := f.q.deadLetters(r, string(w.UID))
	now := f.now()
	for i := range ds {
		ds[i].Attempts, ds[i].Due, ds[i].DeadAt = 0, now, time.Time{}
	}
	if err := f.cfg.Store.Revive(ctx, ds, replayMeta(string(w.UID)), value); err != nil {
		return fmt.Errorf("replaying dead letters: %w", err)
	}
	f.q.revive(ds)
	if len(ds) > 0 {
		f.cfg.Log.Info("replaying dead letters", "resource", r, "count", len(ds))
		f.cfg.Reporter.Replayed(w, len(ds), value)
	}
	return nil
}

// maintain drops dead letters past their retention and deliveries whose
// resource is gone (deleted while this replica was down), at start and
// then every minute.
func (f *Forwarder) maintain(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		expiry := f.now().Add(-f.cfg.DeadLetterRetention)
		for _, r := range f.q.resources() {
			f.forget(ctx, f.q.take(r, func(it *item) bool { return it.state == dead && it.d.DeadAt.Before(expiry) }), "dead letter expired")
			w := &webhooksv1alpha1.MeetergoWebhook{}
			if err := f.cfg.Client.Get(ctx, r, w); apierrors.IsNotFound(err) {
				w = nil
			} else if err != nil {
				continue
			}
			if err := f.Sync(ctx, r, w); err != nil && !errors.Is(err, context.Canceled) {
				f.cfg.Log.Error(err, "syncing deliveries", "resource", r)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
