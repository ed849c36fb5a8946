package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/record"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// intake takes an event in: stores it durably with its deliveries, then
// hands it to the forwarder, the Event recorder and the status figures.
type intake struct {
	log         logr.Logger
	store       *store.Store
	forwarder   *forward.Forwarder
	recorder    *record.Recorder
	status      *statusFlusher
	dedupWindow time.Duration
	now         func() time.Time
}

// accept stores an event of hook and says whether it was a duplicate. When
// it returns without error the event is on disk and may be acknowledged.
func (in *intake) accept(ctx context.Context, hook *webhooksv1alpha1.MeetergoWebhook, ev payload.Event, body []byte) (duplicate bool, err error) {
	now := in.now()
	key := ev.DedupKey(body)
	targets := forward.Targets(hook, ev.Type)
	acc, err := in.store.Accept(ctx, store.Incoming{
		Event: store.Event{
			UID: string(hook.UID), Namespace: hook.Namespace, Name: hook.Name,
			Type: ev.Type, ID: deliveryID(string(hook.UID), key), ReceivedAt: now,
		},
		Body:       body,
		DedupScope: string(hook.UID),
		DedupKey:   key[:],
		DedupUntil: now.Add(in.dedupWindow),
		Targets:    targets,
	})
	if err != nil || acc.Duplicate {
		return acc.Duplicate, err
	}
	if l := in.log.V(1); l.Enabled() { // its arguments cost allocations even when disabled
		l.Info("event accepted", "resource", hook.Namespace+"/"+hook.Name, "type", ev.Type, "webhookID", acc.Event.ID, "targets", len(targets))
	}
	if len(targets) > 0 {
		in.forwarder.Enqueue(acc.Event, targets)
	}
	in.recorder.Event(objectRef(hook.Namespace, hook.Name, string(hook.UID)), corev1.EventTypeNormal,
		payload.Reason(ev.Type), "Received", ev.Note())
	in.status.add(&acc.Event, func(d *deliveryDelta) {
		d.received++
		d.lastEvent = now
	})
	return false, nil
}

// deliveryID is the webhook-id sent to targets: derived from the resource
// and the event's duplicate key, so every replica that receives the same
// event (meetergo may send it to another replica after a failed answer)
// forwards it under the same id, and targets can deduplicate across them.
func deliveryID(uid string, key [sha256.Size]byte) string {
	var in [128]byte // a UID is 36 bytes; longer ones take the heap
	sum := sha256.Sum256(append(append(in[:0], uid...), key[:]...))
	var out [4 + 24]byte // "msg_" and 18 bytes in base64
	copy(out[:], "msg_")
	base64.RawURLEncoding.Encode(out[4:], sum[:18])
	return string(out[:])
}

// apiVersion of MeetergoWebhooks, computed once.
var apiVersion = webhooksv1alpha1.GroupVersion.String()

// objectRef refers to a MeetergoWebhook in Kubernetes Events.
func objectRef(namespace, name, uid string) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion: apiVersion, Kind: "MeetergoWebhook",
		Namespace: namespace, Name: name, UID: types.UID(uid),
	}
}
