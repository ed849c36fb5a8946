package receiver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
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
//
// Once a write is handed to the store its outcome is carried out whatever
// the client does: if the request ends first (the client hung up, or
// storeAnswerTimeout passed), the request is answered 503 and the write
// goes on; if it commits, the forwarder, the Event and the status figures
// learn of it as if the client had waited. meetergo's retry is then a
// duplicate of an event that is queued.
type intake struct {
	log         logr.Logger
	store       *store.Store
	forwarder   *forward.Forwarder
	recorder    *record.Recorder
	status      *statusFlusher
	dedupWindow time.Duration
	now         func() time.Time
	// keptMaxEvents and keptMaxBytes bound each resource's kept events
	// (and their bodies' bytes); 0 means the default.
	keptMaxEvents int
	keptMaxBytes  int64
}

// storeAnswerTimeout bounds how long a request waits for the store's
// answer (well within the server's WriteTimeout); the write goes on.
const storeAnswerTimeout = 20 * time.Second

// errKeptFull: a body the receiver cannot read was not kept because its
// resource keeps as many as it may (answered 200, outcome kept_dropped).
var errKeptFull = errors.New("receiver: the resource keeps as many unread events as it may")

// accept stores an event of hook and says whether it was a duplicate. When
// it returns without error the event is on disk and may be acknowledged.
func (in *intake) accept(ctx context.Context, hook *webhooksv1alpha1.MeetergoWebhook, ev payload.Event, body []byte) (duplicate bool, err error) {
	now := in.now()
	key := ev.DedupKey(body)
	targets := forward.Targets(hook, ev.Type)
	a, err := in.store.StartAccept(store.Incoming{
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
	if err != nil {
		return false, err
	}
	return in.await(ctx, a, func(acc store.Accepted) { in.accepted(hook, ev, targets, acc) }, nil)
}

// accepted tells the forwarder, the Event recorder and status of an event
// just stored.
func (in *intake) accepted(hook *webhooksv1alpha1.MeetergoWebhook, ev payload.Event, targets []string, acc store.Accepted) {
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
		d.lastEvent = acc.Event.ReceivedAt
	})
}

// await waits for a write handed to the store and, if it stored the
// event (not a duplicate), carries out then; done, if set, runs after
// that in every case. If ctx ends first (or storeAnswerTimeout passes),
// await returns ctx's error at once and both run when the store answers.
func (in *intake) await(ctx context.Context, a *store.Accepting, then func(store.Accepted), done func()) (duplicate bool, err error) {
	finish := func(acc store.Accepted, err error) {
		if err == nil && !acc.Duplicate {
			then(acc)
		}
		if done != nil {
			done()
		}
	}
	wait, cancel := context.WithTimeout(ctx, storeAnswerTimeout)
	defer cancel()
	acc, err := a.Wait(wait)
	if err != nil && wait.Err() != nil && errors.Is(err, wait.Err()) {
		go func() { finish(a.Wait(context.Background())) }()
		return false, err
	}
	finish(acc, err)
	return acc.Duplicate, err
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
// again (package forward, KeptTarget). When hook already keeps as many
// kept events (or their bytes) as it may, the body is not stored: keep
// returns errKeptFull and a Warning Event says bodies are dropped.
func (in *intake) keep(ctx context.Context, hook *webhooksv1alpha1.MeetergoWebhook, ev payload.Event, body []byte, reason string) (duplicate bool, err error) {
	uid, size := string(hook.UID), len(body)
	maxEvents, maxBytes := cmp.Or(in.keptMaxEvents, DefaultKeptMaxEvents), cmp.Or(in.keptMaxBytes, DefaultKeptMaxBytes)
	if !in.forwarder.ReserveKept(uid, size, maxEvents, maxBytes) {
		in.dropKept(hook, maxEvents, maxBytes)
		return false, errKeptFull
	}
	release := func() { in.forwarder.ReleaseKept(uid, size) }
	now := in.now()
	key := ev.DedupKey(body) // of the body, unless it has a type, id and updatedAt
	id := deliveryID(uid, key)
	dl := store.Delivery{Key: store.Key{Target: forward.KeptTarget}, Due: now, DeadAt: now, LastError: "kept unread: " + keptWhy[reason]}
	a, err := in.store.StartAccept(store.Incoming{
		// No type: nothing read from the body is stored beside it.
		Event:      store.Event{UID: uid, Namespace: hook.Namespace, Name: hook.Name, ID: id, ReceivedAt: now},
		Body:       body,
		DedupScope: uid,
		DedupKey:   key[:],
		DedupUntil: now.Add(in.dedupWindow),
		DeadLetter: &dl,
	})
	if err != nil {
		release()
		return false, err
	}
	return in.await(ctx, a, func(acc store.Accepted) { in.kept(hook, reason, dl, acc) }, release)
}

// kept tells the forwarder, the Event recorder and status of a kept event
// just stored.
func (in *intake) kept(hook *webhooksv1alpha1.MeetergoWebhook, reason string, dl store.Delivery, acc store.Accepted) {
	dl.Seq = acc.Event.Seq
	id := acc.Event.ID
	in.log.Info("event kept unread as a dead letter", "resource", hook.Namespace+"/"+hook.Name, "reason", reason, "webhookID", id)
	in.forwarder.AddDeadLetter(acc.Event, dl)
	in.recorder.Event(objectRef(hook.Namespace, hook.Name, string(hook.UID)), corev1.EventTypeWarning, reason, "Received", keptNote(reason, id))
	in.status.add(&acc.Event, func(d *deliveryDelta) {
		d.received++
		d.deadLettered++
		d.lastEvent = acc.Event.ReceivedAt
		d.lastError = "event " + id + " " + dl.LastError
	})
}

// reasonKeptDropped is the Warning Event's reason when a resource keeps
// as many unread bodies as it may and drops further ones.
const reasonKeptDropped = "UnreadableEventsDropped"

// dropKept records a body that was not kept because hook keeps as many as
// it may. The Event recorder writes at most one Event per resource and
// reason per interval, counting the rest into it; nothing of the body is
// shown.
func (in *intake) dropKept(hook *webhooksv1alpha1.MeetergoWebhook, maxEvents int, maxBytes int64) {
	if l := in.log.V(1); l.Enabled() {
		l.Info("unreadable body dropped: the resource keeps as many as it may", "resource", hook.Namespace+"/"+hook.Name)
	}
	in.recorder.Event(objectRef(hook.Namespace, hook.Name, string(hook.UID)), corev1.EventTypeWarning, reasonKeptDropped, "Received",
		fmt.Sprintf("received a body this operator version cannot read and dropped it (answered 200, not stored): this resource already keeps "+
			"as many unread events as it may (%d events, %d bytes of bodies: --receiver-kept-max-events, --receiver-kept-max-bytes). "+
			"Kept events wait as dead letters until a replay (annotation %s) can read them or they expire",
			maxEvents, maxBytes, webhooksv1alpha1.ReplayDeadLettersAnnotation))
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
