package forward

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// state is where a delivery is in its life.
type state int

const (
	waiting   state = iota // in the schedule, due at d.Due
	running                // a worker is attempting it
	suspended              // its resource is suspended; waits for a resume
	dead                   // a dead letter; waits for a replay
	gone                   // delivered or dropped; no longer tracked
)

func (s state) String() string {
	return [...]string{"waiting", "running", "suspended", "dead", "gone"}[s]
}

// item is the in-memory mirror of one stored delivery.
type item struct {
	d     store.Delivery
	ev    *store.Event
	state state
	// index in the schedule heap while waiting.
	index int
	// dropped is set when the resource went away while a worker held it.
	dropped bool
}

func (it *item) resource() types.NamespacedName {
	return types.NamespacedName{Namespace: it.ev.Namespace, Name: it.ev.Name}
}

// queue holds every delivery this replica knows of, by key and by
// resource, and schedules the waiting ones by due time. Its methods are safe
// for concurrent use.
type queue struct {
	mu    sync.Mutex
	items map[store.Key]*item
	byRes map[types.NamespacedName]map[*item]struct{}
	sched schedule
	// kept is, per resource UID, what its kept events (KeptTarget) and the
	// kept events being stored (ReserveKept) hold.
	kept map[string]keptUsage
	// wake is signalled when the earliest due time may have changed.
	wake chan struct{}
}

func newQueue() *queue {
	return &queue{items: map[store.Key]*item{}, byRes: map[types.NamespacedName]map[*item]struct{}{},
		kept: map[string]keptUsage{}, wake: make(chan struct{}, 1)}
}

// keptUsage counts kept events and their body bytes.
type keptUsage struct {
	events int
	bytes  int64
}

// addKept adds (or with sign -1 removes) one kept event of uid; q.mu is held.
func (q *queue) addKept(uid string, bytes int64, sign int) {
	u := q.kept[uid]
	u.events += sign
	u.bytes += int64(sign) * bytes
	if u.events <= 0 {
		delete(q.kept, uid)
		return
	}
	q.kept[uid] = u
}

// add tracks a delivery: a dead letter if d is dead, else waiting.
func (q *queue) add(ev *store.Event, d store.Delivery) {
	q.mu.Lock()
	q.addLocked(ev, d)
	q.mu.Unlock()
}

// addLocked is add with q.mu held.
func (q *queue) addLocked(ev *store.Event, d store.Delivery) {
	it := &item{d: d, ev: ev, state: gone, index: -1}
	q.items[d.Key] = it
	r := it.resource()
	if q.byRes[r] == nil {
		q.byRes[r] = map[*item]struct{}{}
	}
	q.byRes[r][it] = struct{}{}
	if d.Target == KeptTarget {
		q.addKept(ev.UID, int64(ev.BodySize), 1)
	}
	if d.Dead() {
		q.set(it, dead)
	} else {
		q.schedule(it)
	}
}

// next waits for the earliest waiting delivery to fall due and hands it
// out as running; false when ctx ends. One goroutine calls it (the
// dispatcher): a wake-up is meant for a single waiter.
func (q *queue) next(ctx context.Context, now func() time.Time) (*item, bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		var wait time.Duration = time.Hour
		if len(q.sched) > 0 {
			it := q.sched[0]
			if wait = it.d.Due.Sub(now()); wait <= 0 {
				heap.Pop(&q.sched)
				q.set(it, running)
				q.mu.Unlock()
				return it, true
			}
		}
		q.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// schedule puts an item in the schedule at its d.Due; q.mu is held.
func (q *queue) schedule(it *item) {
	q.set(it, waiting)
	heap.Push(&q.sched, it)
	if q.sched[0] == it {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// settle moves a running item on: to waiting (with its new state), to
// suspended, to dead, or gone. It returns false if the item was dropped
// while running: it stays gone, and the caller must delete it from the store.
func (q *queue) settle(it *item, to state, d store.Delivery) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.dropped {
		return false
	}
	it.d = d
	switch to {
	case waiting:
		q.schedule(it)
	case gone:
		q.forget(it)
	default:
		q.set(it, to)
	}
	return true
}

// forget stops tracking an item; q.mu is held.
func (q *queue) forget(it *item) {
	if it.state == waiting {
		heap.Remove(&q.sched, it.index)
	}
	q.set(it, gone)
	if it.d.Target == KeptTarget {
		q.addKept(it.ev.UID, int64(it.ev.BodySize), -1)
	}
	delete(q.items, it.d.Key)
	r := it.resource()
	delete(q.byRes[r], it)
	if len(q.byRes[r]) == 0 {
		delete(q.byRes, r)
	}
}

// set changes an item's state and keeps the gauges in step; q.mu is held.
func (q *queue) set(it *item, to state) {
	if it.state != gone {
		deliveriesInState.WithLabelValues(it.state.String()).Dec()
	}
	if to != gone {
		deliveriesInState.WithLabelValues(to.String()).Inc()
	}
	it.state = to
}

// take stops tracking r's items that match and returns those no worker
// holds; a running one is only marked dropped: its worker, the one writer of
// its stored state meanwhile, deletes it when its attempt ends.
func (q *queue) take(r types.NamespacedName, match func(*item) bool) []*item {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*item
	for it := range q.byRes[r] {
		if !match(it) {
			continue
		}
		if it.state == running {
			it.dropped = true
		} else {
			out = append(out, it)
		}
		q.forget(it)
	}
	return out
}

// resume schedules the suspended deliveries of resource uid, due now.
func (q *queue) resume(r types.NamespacedName, uid string, now time.Time) int {
	return q.reschedule(r, func(it *item) bool { return it.state == suspended && it.ev.UID == uid }, now)
}

// reschedule makes r's items that match due at now; it returns how many.
func (q *queue) reschedule(r types.NamespacedName, match func(*item) bool, now time.Time) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for it := range q.byRes[r] {
		if !match(it) {
			continue
		}
		if it.state == waiting {
			heap.Remove(&q.sched, it.index)
		}
		it.d.Due = now
		q.schedule(it)
		n++
	}
	return n
}

// deadLetter is a copy of a dead letter and of its event.
type deadLetter struct {
	d  store.Delivery
	ev store.Event
}

// deadLetters returns copies of the dead letters of resource uid.
func (q *queue) deadLetters(r types.NamespacedName, uid string) []deadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []deadLetter
	for it := range q.byRes[r] {
		if it.state == dead && it.ev.UID == uid {
			out = append(out, deadLetter{d: it.d, ev: *it.ev})
		}
	}
	return out
}

// reroute replaces the dead letter from with deliveries to of ev (none:
// the event is done), if from is still a dead letter here.
func (q *queue) reroute(from store.Key, ev *store.Event, to []store.Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.items[from]
	if it == nil || it.state != dead {
		return
	}
	q.forget(it)
	for _, d := range to {
		q.addLocked(ev, d)
	}
}

// revive schedules dead letters again with their new states.
func (q *queue) revive(ds []store.Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		if it := q.items[d.Key]; it != nil && it.state == dead {
			it.d = d
			q.schedule(it)
		}
	}
}

// resources returns every resource with deliveries here.
func (q *queue) resources() []types.NamespacedName {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(q.byRes))
	for r := range q.byRes {
		out = append(out, r)
	}
	return out
}

// schedule is a min-heap of waiting items by due time.
type schedule []*item

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].d.Due.Before(s[j].d.Due) }
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}
func (s *schedule) Push(x any) {
	it := x.(*item)
	it.index = len(*s)
	*s = append(*s, it)
}
func (s *schedule) Pop() any {
	old := *s
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	it.index = -1
	return it
}
