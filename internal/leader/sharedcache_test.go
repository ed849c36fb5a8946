package leader

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// TestTermsShareOneCache runs two terms over one informer cache on a real
// API server: the second term's field index (same name as the first's) is
// accepted and answers; the first term's event handler stops being called
// once that term is released, while the second's is.
func TestTermsShareOneCache(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	base, err := cache.New(env.Config, cache.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = base.Start(ctx) }()
	if !base.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	shared := newSharedCache(base, clientgoscheme.Scheme)
	byColour := func(o client.Object) []string { return []string{o.(*corev1.ConfigMap).Data["colour"]} }

	var calls [2]atomic.Int32
	term := func(n int) *termCache {
		tc := shared.term()
		if err := tc.IndexField(ctx, &corev1.ConfigMap{}, "colour", byColour); err != nil {
			t.Fatalf("term %d: IndexField: %v", n, err)
		}
		inf, err := tc.GetInformer(ctx, &corev1.ConfigMap{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { calls[n].Add(1) },
		}); err != nil {
			t.Fatal(err)
		}
		return tc
	}
	create := func(name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"colour": name}}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := term(0)
	base0 := calls[0].Load()
	create("red")
	waitFor("term 1's handler to see red", func() bool { return calls[0].Load() > base0 })
	if err := first.release(); err != nil {
		t.Fatal(err)
	}
	afterRelease := calls[0].Load()

	second := term(1)
	t.Cleanup(func() { _ = second.release() })
	base1 := calls[1].Load()
	create("blue")
	waitFor("term 2's handler to see blue", func() bool { return calls[1].Load() > base1 })
	waitFor("the index to find blue", func() bool {
		var l corev1.ConfigMapList
		err := second.List(ctx, &l, client.MatchingFields{"colour": "blue"})
		return err == nil && len(l.Items) == 1
	})
	if got := calls[0].Load(); got != afterRelease {
		t.Errorf("the released term's handler was called %d more times", got-afterRelease)
	}
	if err := second.RemoveInformer(ctx, &corev1.ConfigMap{}); err == nil {
		t.Error("a term removed a shared informer")
	}
}
