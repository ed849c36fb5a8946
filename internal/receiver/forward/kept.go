package forward

import (
	"slices"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/payload"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// Kept events. The receiver acknowledges a body it cannot read (not a JSON
// object naming an event type, or a type it does not know) rather than
// give meetergo an error, and keeps it as one dead letter under
// KeptTarget, a key no target has (TargetKey always holds a ':'). It is
// never attempted. A replay reads its body again with the build then
// running: if it now is an event of a type the resource subscribes to, the
// dead letter is replaced by a delivery to each target that takes that
// type (none: the event is done); else it stays a dead letter, until the
// next replay or DeadLetterRetention.

// KeptTarget is the target key of a kept event's dead letter.
const KeptTarget = "(kept)"

// AddDeadLetter tracks a dead letter stored together with its event (see
// store.Incoming.DeadLetter), such as a kept event's, so a replay finds it.
func (f *Forwarder) AddDeadLetter(ev store.Event, d store.Delivery) {
	f.q.add(&ev, d)
}

// ReserveKept makes room for one more kept event of resource uid with a
// body of size bytes, if uid's kept events (those tracked here and those
// reserved and not yet released) stay within maxEvents and maxBytes; it
// says whether it did. A reservation is released with ReleaseKept once
// the event is stored and added (AddDeadLetter) or was not stored: it
// bounds kept events of concurrent requests too.
func (f *Forwarder) ReserveKept(uid string, size int, maxEvents int, maxBytes int64) bool {
	q := f.q
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.kept[uid]
	if u.events+1 > maxEvents || u.bytes+int64(size) > maxBytes {
		return false
	}
	q.addKept(uid, int64(size), 1)
	return true
}

// ReleaseKept releases a reservation of ReserveKept.
func (f *Forwarder) ReleaseKept(uid string, size int) {
	q := f.q
	q.mu.Lock()
	q.addKept(uid, int64(size), -1)
	q.mu.Unlock()
}

// ReplayReport is what one replay of a resource's dead letters did.
type ReplayReport struct {
	// Value is the value of the replay annotation handled.
	Value string
	// Revived is how many dead letters were queued again.
	Revived int
	// Reread are the kept events that now read as an event type the
	// resource subscribes to; their deliveries are queued.
	Reread []RereadEvent
	// Unread is how many kept events still do not, and stay dead letters.
	Unread int
}

// Deliveries is how many deliveries the replay queued.
func (r ReplayReport) Deliveries() int {
	n := r.Revived
	for _, e := range r.Reread {
		n += e.Targets
	}
	return n
}

// RereadEvent is a kept event that a replay could read.
type RereadEvent struct {
	// Event is its record from now on (Type set).
	Event store.Event
	// Payload is what its body reads as.
	Payload payload.Event
	// Targets is how many deliveries were queued for it (0: no target
	// takes its type; it is done).
	Targets int
}

// ReplayReporter is implemented by a Reporter that wants the whole of each
// replay, kept events included; Replayed is then not called.
type ReplayReporter interface {
	ReplayDone(w *webhooksv1alpha1.MeetergoWebhook, r ReplayReport)
}

// reread reads a kept event's body again: the event it is and the keys of
// w's targets that take it, or ok false if it is still no event w
// subscribes to (or names another company than w's, which the receiver
// answers 403).
func reread(w *webhooksv1alpha1.MeetergoWebhook, body []byte) (ev payload.Event, targets []string, ok bool) {
	ev, err := payload.Parse(body)
	switch {
	case err != nil:
		return ev, nil, false
	case ev.CompanyID != "" && w.Status.CompanyID != "" && ev.CompanyID != w.Status.CompanyID:
		return ev, nil, false
	case !slices.Contains(w.Spec.EventTypes, webhooksv1alpha1.EventType(ev.Type)):
		return ev, nil, false
	}
	return ev, Targets(w, ev.Type), true
}
