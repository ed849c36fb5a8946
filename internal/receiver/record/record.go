// Package record writes the receiver's Kubernetes Events (events.k8s.io/v1),
// aggregated on purpose: at most one Event per object, type and reason per
// interval. The first event of a quiet spell is written at once with its
// own note; the ones that follow within the interval are counted and
// written together when it ends, as one Event whose note shows the latest
// and says "(and 41 more since …)", with series.count set.
//
// client-go's events broadcaster (behind the manager's GetEventRecorder) is
// not used for these: it folds every Event with the same object, type,
// reason and action into one series for six minutes or more and keeps only
// the first note (the note of an events.k8s.io Event is immutable), so a
// second booking within minutes would never show; and it hands each Event
// to a goroutine and a 1000-slot queue that drops when full, so a burst
// costs goroutines or Events. Here a burst costs one map entry per object
// and reason, and one write per interval, made by one goroutine.
package record

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxNote is the API server's limit on an Event's note.
const maxNote = 1024

// Options tune a Recorder.
type Options struct {
	// Interval is the shortest time between two Events of the same object,
	// type and reason. 0 means 10 s.
	Interval time.Duration
	// Controller and Instance are the Events' reportingController and
	// reportingInstance.
	Controller, Instance string
	// OnWrite, if set, is told the outcome of every write and how many
	// occurrences it carried (for metrics).
	OnWrite func(occurrences int, err error)
	// Log receives write failures.
	Log logr.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Recorder aggregates and writes Events. Create one with New and run it
// with Run.
type Recorder struct {
	c    client.Writer
	opts Options

	mu     sync.Mutex
	series map[seriesKey]*series
	// lastName is the time part of the last Event name, kept increasing so
	// two Events written in one flush never share a name.
	lastName int64
	kick     chan struct{}
}

type seriesKey struct {
	uid                 types.UID
	typ, reason, action string
}

// series is what is waiting to be written for one key.
type series struct {
	ref         corev1.ObjectReference
	lastWritten time.Time
	// count occurrences since the last write, the first at first, the
	// latest at last with note.
	count       int
	first, last time.Time
	note        string
}

// New returns a Recorder that creates Events through c.
func New(c client.Writer, opts Options) *Recorder {
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Recorder{c: c, opts: opts, series: map[seriesKey]*series{}, kick: make(chan struct{}, 1)}
}

// Event records one occurrence about the object ref. typ is
// corev1.EventTypeNormal or Warning; reason and action are CamelCase
// machine words; note must hold no personal data.
func (r *Recorder) Event(ref corev1.ObjectReference, typ, reason, action, note string) {
	now := r.opts.Now()
	k := seriesKey{uid: ref.UID, typ: typ, reason: reason, action: action}
	r.mu.Lock()
	s := r.series[k]
	if s == nil {
		s = &series{ref: ref}
		r.series[k] = s
	}
	if s.count == 0 {
		s.first = now
	}
	s.count++
	s.last, s.note = now, note
	due := now.Sub(s.lastWritten) >= r.opts.Interval
	r.mu.Unlock()
	if due {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// Run writes due Events until ctx ends, then writes what is still waiting
// (for at most a few seconds) and returns.
func (r *Recorder) Run(ctx context.Context) error {
	tick := time.NewTicker(max(r.opts.Interval/5, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			r.flush(final, true)
			return nil
		case <-tick.C:
		case <-r.kick:
		}
		r.flush(ctx, false)
	}
}

// pendingWrite is one Event to create and the series it came from.
type pendingWrite struct {
	key   seriesKey
	event *eventsv1.Event
	taken series
}

// flush writes every due series (every waiting one if all) and drops
// series that have been quiet for an interval.
func (r *Recorder) flush(ctx context.Context, all bool) {
	now := r.opts.Now()
	var writes []pendingWrite
	r.mu.Lock()
	for k, s := range r.series {
		switch {
		case s.count > 0 && (all || now.Sub(s.lastWritten) >= r.opts.Interval):
			writes = append(writes, pendingWrite{key: k, event: r.build(k, s, now), taken: *s})
			s.count, s.lastWritten = 0, now
		case s.count == 0 && now.Sub(s.lastWritten) >= r.opts.Interval:
			delete(r.series, k)
		}
	}
	r.mu.Unlock()
	for _, w := range writes {
		err := r.c.Create(ctx, w.event)
		if r.opts.OnWrite != nil {
			r.opts.OnWrite(w.taken.count, err)
		}
		if err != nil {
			r.opts.Log.Error(err, "writing a Kubernetes Event; its occurrences go into the next one", "object", w.taken.ref.Namespace+"/"+w.taken.ref.Name, "reason", w.key.reason)
			r.restore(w)
		}
	}
}

// restore puts a failed write's occurrences back, so the next Event counts
// them; the interval still applies, so a failing API is not hammered.
func (r *Recorder) restore(w pendingWrite) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.series[w.key]
	if s == nil {
		return // forgotten meanwhile
	}
	if s.count == 0 {
		s.last, s.note = w.taken.last, w.taken.note
	}
	s.count += w.taken.count
	s.first = w.taken.first
}

// build makes the Event for a series' waiting occurrences; r.mu is held.
func (r *Recorder) build(k seriesKey, s *series, now time.Time) *eventsv1.Event {
	note := s.note
	var ser *eventsv1.EventSeries
	if s.count > 1 {
		note = fmt.Sprintf("%s (and %d more since %s)", s.note, s.count-1, s.first.UTC().Format(time.RFC3339))
		ser = &eventsv1.EventSeries{Count: int32(min(s.count, 1<<30)), LastObservedTime: metav1.NewMicroTime(s.last)}
	}
	if len(note) > maxNote {
		note = note[:maxNote-3] + "..."
	}
	prefix := s.ref.Name
	if len(prefix) > 200 {
		prefix = prefix[:200]
	}
	r.lastName = max(now.UnixNano(), r.lastName+1)
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: s.ref.Namespace, Name: fmt.Sprintf("%s.%x", prefix, r.lastName)},
		EventTime:           metav1.NewMicroTime(s.first),
		Series:              ser,
		ReportingController: r.opts.Controller,
		ReportingInstance:   r.opts.Instance,
		Action:              k.action,
		Reason:              k.reason,
		Regarding:           s.ref,
		Note:                note,
		Type:                k.typ,
	}
}
