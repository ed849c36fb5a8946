package receiver

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/forward"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/record"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// reporter turns delivery outcomes into status figures and Events.
type reporter struct {
	recorder *record.Recorder
	status   *statusFlusher
}

func (r *reporter) Forwarded(ev *store.Event, _ string) {
	r.status.add(ev, func(d *deliveryDelta) { d.forwarded++ })
}

func (r *reporter) Failed(ev *store.Event, lastError string) {
	r.status.add(ev, func(d *deliveryDelta) {
		d.failed++
		d.lastError = lastError
	})
}

func (r *reporter) DeadLettered(ev *store.Event, lastError string, attempts int) {
	r.status.add(ev, func(d *deliveryDelta) { d.deadLettered++ })
	r.recorder.Event(objectRef(ev.Namespace, ev.Name, ev.UID), corev1.EventTypeWarning, "DeliveryFailed", "Forward",
		fmt.Sprintf("%s %s: %s after %d attempt(s); kept as a dead letter: set the annotation %s to a new value to send it again",
			ev.Type, ev.ID, lastError, attempts, webhooksv1alpha1.ReplayDeadLettersAnnotation))
}

// ReplayDone records a replay: a Received Event for each kept event that
// could now be read (it was counted as received when kept), and one
// DeadLettersReplayed Event, a Warning when kept events stay unread.
func (r *reporter) ReplayDone(w *webhooksv1alpha1.MeetergoWebhook, rep forward.ReplayReport) {
	ref := objectRef(w.Namespace, w.Name, string(w.UID))
	for _, e := range rep.Reread {
		r.recorder.Event(ref, corev1.EventTypeNormal, payload.Reason(e.Payload.Type), "Received", e.Payload.Note())
	}
	typ, note := corev1.EventTypeNormal, fmt.Sprintf("sending %d dead letter(s) again", rep.Deliveries())
	if n := len(rep.Reread); n > 0 {
		note += fmt.Sprintf("; %d kept event(s) could be read now and are delivered as any event", n)
	}
	if rep.Unread > 0 {
		typ = corev1.EventTypeWarning
		note += fmt.Sprintf("; %d kept event(s) still cannot be read as an event type this resource subscribes to and stay dead letters", rep.Unread)
	}
	r.recorder.Event(ref, typ, "DeadLettersReplayed", "Replay", note)
}

func (r *reporter) Replayed(w *webhooksv1alpha1.MeetergoWebhook, n int, _ string) {
	r.recorder.Event(objectRef(w.Namespace, w.Name, string(w.UID)), corev1.EventTypeNormal, "DeadLettersReplayed", "Replay",
		fmt.Sprintf("sending %d dead letter(s) again", n))
}
