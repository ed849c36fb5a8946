package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
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

// Reasons of the Warning Event for a kept event: one the receiver could
// not read, acknowledged and kept as a dead letter for a replay.
const (
	reasonUnparseable = "UnparseableEvent"
	reasonUnknownType = "UnknownEventType"
)

// keptWhy says, per reason, why an event was kept (for status.lastError
// and the dead letter). Nothing in it comes from the body.
var keptWhy = map[string]string{
	reasonUnparseable: "not a JSON object naming an event type",
	reasonUnknownType: "an event type this operator version does not know",
}

// keptNote is the Warning Event's note for a kept event. It names no
// payload content at all (not even the unknown type): the body may hold
// personal data and the appointment secret.
func keptNote(reason, id string) string {
	what, when := "received a body that is not a JSON object naming an event type (webhookType)", "an operator version can read it"
	if reason == reasonUnknownType {
		what, when = "received an event of a type this operator version does not know", "an operator version knows its type and this resource subscribes to it"
	}
	return fmt.Sprintf("%s; answered 200 and kept it as dead letter %s. Once %s, set the annotation %s to a new value to deliver it",
		what, id, when, webhooksv1alpha1.ReplayDeadLettersAnnotation)
}

// keep stores a body the receiver cannot read (reason says why; ev is
// what was read of it, if anything) as one dead letter of hook, and says
// whether it was a duplicate. As with accept, when it returns without
// error the body is on disk and may be acknowledged. A replay reads it
// again (package forward, KeptTarget).
func (in *intake) keep(ctx context.Context, hook *webhooksv1alpha1.MeetergoWebhook, ev payload.Event, body []byte, reason string) (duplicate bool, err error) {
	now := in.now()
	key := ev.DedupKey(body) // of the body, unless it has a type, id and updatedAt
	id := deliveryID(string(hook.UID), key)
	dl := store.Delivery{Key: store.Key{Target: forward.KeptTarget}, Due: now, DeadAt: now, LastError: "kept unread: " + keptWhy[reason]}
	acc, err := in.store.Accept(ctx, store.Incoming{
		// No type: nothing read from the body is stored beside it.
		Event:      store.Event{UID: string(hook.UID), Namespace: hook.Namespace, Name: hook.Name, ID: id, ReceivedAt: now},
		Body:       body,
		DedupScope: string(hook.UID),
		DedupKey:   key[:],
		DedupUntil: now.Add(in.dedupWindow),
		DeadLetter: &dl,
	})
	if err != nil || acc.Duplicate {
		return acc.Duplicate, err
	}
	dl.Seq = acc.Event.Seq
	in.log.Info("event kept unread as a dead letter", "resource", hook.Namespace+"/"+hook.Name, "reason", reason, "webhookID", id)
	in.forwarder.AddDeadLetter(acc.Event, dl)
	in.recorder.Event(objectRef(hook.Namespace, hook.Name, string(hook.UID)), corev1.EventTypeWarning, reason, "Received", keptNote(reason, id))
	in.status.add(&acc.Event, func(d *deliveryDelta) {
		d.received++
		d.deadLettered++
		d.lastEvent = now
		d.lastError = "event " + id + " " + dl.LastError
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
