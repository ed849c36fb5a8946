package forward

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/receiver/store"
)

// TestAReplayRacingADeletionLeavesAStoreThatLoads: a replay (maintain's or
// the controller's Sync of a resource whose replay annotation changed)
// runs while the resource is deleted (the other one's Sync with nil). A
// replay used to copy the dead letters, then write Store.Replay; a
// deletion in between deleted them (and their events and bodies), and
// Store.Replay wrote pending deliveries back for events that no longer
// existed: the next start failed in Load ("delivery ... has no event"),
// every time. Now Sync is serialised per resource, the store revives only
// what is still dead, and the replica restarts.
func TestAReplayRacingADeletionLeavesAStoreThatLoads(t *testing.T) {
	r := types.NamespacedName{Namespace: ns, Name: "hook"}
	for i := range 300 {
		dir := t.TempDir()
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fx := &fixture{t: t, st: st, rep: &reporter{}}
		hook := &webhooksv1alpha1.MeetergoWebhook{}
		hook.Namespace, hook.Name, hook.UID = ns, "hook", "uid-1"
		hook.Spec.EventTypes = []webhooksv1alpha1.EventType{"booking_created"}
		hook.Spec.Targets = []webhooksv1alpha1.Target{{Path: "/in"}}
		hook.Spec.Targets[0].Service.Name = "crm"
		fx.hook = hook
		fx.f = New(Config{Store: st, Reporter: fx.rep})
		if err := fx.f.Load(); err != nil { // an empty store; Sync waits for it
			t.Fatal(err)
		}
		// One ordinary dead letter and one kept event that now reads.
		now := time.Now()
		for j, tk := range []string{TargetKey(hook.Spec.Targets[0]), KeptTarget} {
			body := fmt.Sprintf(`{"webhookType":"booking_created","id":"a%d"}`, j)
			dl := store.Delivery{Key: store.Key{Target: tk}, Due: now, DeadAt: now, LastError: "x"}
			acc, err := st.Accept(context.Background(), store.Incoming{
				Event: store.Event{UID: "uid-1", Namespace: ns, Name: "hook", Type: "booking_created", ID: fmt.Sprintf("msg_%d", j), ReceivedAt: now},
				Body:  []byte(body), DedupScope: "uid-1", DedupKey: []byte(body), DedupUntil: now.Add(time.Hour),
				DeadLetter: &dl,
			})
			if err != nil {
				t.Fatal(err)
			}
			dl.Seq = acc.Event.Seq
			fx.f.AddDeadLetter(acc.Event, dl)
		}
		annotated := hook.DeepCopy()
		annotated.Annotations = map[string]string{webhooksv1alpha1.ReplayDeadLettersAnnotation: "1"}
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; _ = fx.f.Sync(context.Background(), r, annotated) }) // the replay
		wg.Go(func() { <-start; _ = fx.f.Sync(context.Background(), r, nil) })       // the deletion
		close(start)
		wg.Wait()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		// The replica restarts.
		st2, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f2 := New(Config{Store: st2, Reporter: &reporter{}})
		err = f2.Load()
		_ = st2.Close()
		if err != nil {
			t.Fatalf("iteration %d: after a replay raced the resource's deletion, the receiver cannot start: Load: %v", i, err)
		}
	}
}

// TestNothingIsSyncedBeforeTheStoreIsLoaded: after a restart, the
// receiver's controller may sync a resource whose replay annotation
// changed while the replica was down before Load has filled the queue. A
// Sync then used to find no dead letters and record the replay value as
// handled; the dead letter loaded next was never replayed. Now Sync waits
// for Load (here its context ends first: nothing is recorded), and the
// replay, after Load, revives the dead letter and only then records it.
func TestNothingIsSyncedBeforeTheStoreIsLoaded(t *testing.T) {
	r := types.NamespacedName{Namespace: ns, Name: "hook"}
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	hook := &webhooksv1alpha1.MeetergoWebhook{}
	hook.Namespace, hook.Name, hook.UID = ns, "hook", "uid-1"
	hook.Spec.EventTypes = []webhooksv1alpha1.EventType{"booking_created"}
	hook.Spec.Targets = []webhooksv1alpha1.Target{{Path: "/in"}}
	hook.Spec.Targets[0].Service.Name = "crm"
	hook.Annotations = map[string]string{webhooksv1alpha1.ReplayDeadLettersAnnotation: "1"}
	// A dead letter the replica left in its store.
	now := time.Now()
	body := `{"webhookType":"booking_created","id":"a1"}`
	dl := store.Delivery{Key: store.Key{Target: TargetKey(hook.Spec.Targets[0])}, Due: now, DeadAt: now, LastError: "x"}
	if _, err := st.Accept(context.Background(), store.Incoming{
		Event: store.Event{UID: "uid-1", Namespace: ns, Name: "hook", Type: "booking_created", ID: "msg_1", ReceivedAt: now},
		Body:  []byte(body), DedupScope: "uid-1", DedupKey: []byte(body), DedupUntil: now.Add(time.Hour),
		DeadLetter: &dl,
	}); err != nil {
		t.Fatal(err)
	}

	// The replica starts again; the controller comes first.
	f := New(Config{Store: st, Reporter: &reporter{}})
	// Its context has ended by the time it gets to wait: Sync must give
	// up rather than sync against the empty queue.
	early, cancel := context.WithCancel(context.Background())
	cancel()
	_ = f.Sync(early, r, hook)
	if v, err := st.Meta(replayMeta("uid-1")); err != nil || v != "" {
		t.Fatalf("a replay was recorded before the store was loaded: %q, %v", v, err)
	}

	if err := f.Load(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(context.Background(), r, hook); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Meta(replayMeta("uid-1")); err != nil || v != "1" {
		t.Fatalf("the replay was not recorded once carried out: %q, %v", v, err)
	}
	if dead := f.q.deadLetters(r, "uid-1"); len(dead) != 0 {
		t.Fatalf("the dead letter was not replayed: %d dead letter(s) left", len(dead))
	}
	n := 0
	if err := st.Load(func(_ store.Event, d store.Delivery) {
		if d.DeadAt.IsZero() {
			n++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("pending deliveries in the store after the replay: %d, want 1", n)
	}
}
