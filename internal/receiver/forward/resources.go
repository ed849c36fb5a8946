package forward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// Sync brings a resource's deliveries in line with the resource: w is nil
// when r no longer exists. Deliveries of a deleted resource (or of an
// earlier one of the same name) are dropped; those of a resumed resource are
// scheduled; a new value of the replay annotation replays its dead letters.
//
// Sync, the expiry sweep and replays of one resource run one at a time
// (the receiver's controller and maintain both call Sync): each reads the
// resource's deliveries and then changes them, and one that ran in the
// middle of another would undo it (a replay writing back dead letters a
// deletion had just removed, with their events).
//
// Sync waits until Load has filled the queue (or ctx ends): before it, a
// replay would find no dead letters and record its value as handled, and
// the dead letters loaded next would never be replayed.
func (f *Forwarder) Sync(ctx context.Context, r types.NamespacedName, w *webhooksv1alpha1.MeetergoWebhook) error {
	select {
	case <-f.loaded:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.loadErr != nil {
		return fmt.Errorf("syncing deliveries: the store was not loaded: %w", f.loadErr)
	}
	defer f.locks.lock(r)()
	return f.sync(ctx, r, w)
}

// sync is Sync with r's lock held.
func (f *Forwarder) sync(ctx context.Context, r types.NamespacedName, w *webhooksv1alpha1.MeetergoWebhook) error {
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
// value this replica has not handled yet. Kept events are read again (see
// KeptTarget): queued to their targets if they now can be, else left dead.
// It runs with the resource's lock held (see Sync): the controller and
// maintain may both see a new value, a kept event must be rerouted once,
// and the dead letters read here must not be deleted before the store
// writes what the replay decided (the store checks that too).
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
	now := f.now()
	var revive []store.Delivery
	var reroutes []store.Reroute
	report := ReplayReport{Value: value}
	for _, dl := range f.q.deadLetters(r, string(w.UID)) {
		d := dl.d
		if d.Target != KeptTarget {
			d.Attempts, d.Due, d.DeadAt = 0, now, time.Time{}
			revive = append(revive, d)
			continue
		}
		body, err := f.cfg.Store.Body(d.Seq)
		if err != nil {
			return fmt.Errorf("replaying dead letters: reading a kept event: %w", err)
		}
		ev, targets, ok := reread(w, body)
		if !ok {
			report.Unread++
			continue
		}
		rec := dl.ev
		rec.Type = ev.Type
		rr := store.Reroute{Dead: d.Key, Event: rec}
		for _, t := range targets {
			rr.To = append(rr.To, store.Delivery{Key: store.Key{Seq: d.Seq, Target: t}, Due: now})
		}
		reroutes = append(reroutes, rr)
		report.Reread = append(report.Reread, RereadEvent{Event: rec, Payload: ev, Targets: len(targets)})
	}
	if err := f.cfg.Store.Replay(ctx, revive, reroutes, replayMeta(string(w.UID)), value); err != nil {
		return fmt.Errorf("replaying dead letters: %w", err)
	}
	f.q.revive(revive)
	for _, rr := range reroutes {
		ev := rr.Event
		f.q.reroute(rr.Dead, &ev, rr.To)
	}
	report.Revived = len(revive)
	if report.Revived+len(report.Reread)+report.Unread == 0 {
		return nil
	}
	f.cfg.Log.Info("replaying dead letters", "resource", r, "count", report.Deliveries(),
		"keptRead", len(report.Reread), "keptUnread", report.Unread)
	if rr, ok := f.cfg.Reporter.(ReplayReporter); ok {
		rr.ReplayDone(w, report)
	} else if n := report.Deliveries(); n > 0 {
		f.cfg.Reporter.Replayed(w, n, value)
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
			w := &webhooksv1alpha1.MeetergoWebhook{}
			err := f.cfg.Client.Get(ctx, r, w)
			if apierrors.IsNotFound(err) {
				w, err = nil, nil
			}
			unlock := f.locks.lock(r)
			f.forget(ctx, f.q.take(r, func(it *item) bool { return it.state == dead && it.d.DeadAt.Before(expiry) }), "dead letter expired")
			if err == nil {
				err = f.sync(ctx, r, w)
				if err != nil && !errors.Is(err, context.Canceled) {
					f.cfg.Log.Error(err, "syncing deliveries", "resource", r)
				}
			}
			unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// resourceLocks holds a mutex per resource while it is wanted.
type resourceLocks struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*resourceLock
}

type resourceLock struct {
	mu      sync.Mutex
	holders int // those holding or waiting for mu
}

// lock locks r and returns its unlock.
func (l *resourceLocks) lock(r types.NamespacedName) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[types.NamespacedName]*resourceLock{}
	}
	rl := l.m[r]
	if rl == nil {
		rl = &resourceLock{}
		l.m[r] = rl
	}
	rl.holders++
	l.mu.Unlock()
	rl.mu.Lock()
	return func() {
		rl.mu.Unlock()
		l.mu.Lock()
		if rl.holders--; rl.holders == 0 {
			delete(l.m, r)
		}
		l.mu.Unlock()
	}
}
