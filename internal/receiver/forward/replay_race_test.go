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
