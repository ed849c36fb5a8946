package record

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

var ref = corev1.ObjectReference{APIVersion: "webhooks.meetergo-operator.io/v1alpha1", Kind: "MeetergoWebhook", Namespace: "team", Name: "crm", UID: "uid-1"}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)} }
func events(t *testing.T, c client.Reader) []eventsv1.Event {
	t.Helper()
	l := &eventsv1.EventList{}
	if err := c.List(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestFirstAtOnceThenOnePerInterval(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	clk := newClock()
	r := New(c, Options{Interval: 10 * time.Second, Controller: "meetergo-receiver", Instance: "meetergo-receiver-pod", Now: clk.now})
	ctx := context.Background()

	r.Event(ref, corev1.EventTypeNormal, "BookingCreated", "Received", "booking_created: appointment a0")
	r.flush(ctx, false)
	got := events(t, c)
	if len(got) != 1 || got[0].Note != "booking_created: appointment a0" || got[0].Series != nil {
		t.Fatalf("after the first event: %+v", got)
	}
	e := got[0]
	if e.Regarding != ref || e.Reason != "BookingCreated" || e.Action != "Received" || e.Type != corev1.EventTypeNormal ||
		e.ReportingController != "meetergo-receiver" || e.ReportingInstance != "meetergo-receiver-pod" || e.Namespace != "team" {
		t.Errorf("event fields: %+v", e)
	}

	// A burst inside the interval: nothing more until it ends.
	for i := 1; i <= 42; i++ {
		clk.add(100 * time.Millisecond)
		r.Event(ref, corev1.EventTypeNormal, "BookingCreated", "Received", fmt.Sprintf("booking_created: appointment a%d", i))
	}
	// Another reason is its own series.
	r.Event(ref, corev1.EventTypeNormal, "BookingCancelled", "Received", "booking_cancelled: appointment a1")
	r.flush(ctx, false)
	if got := events(t, c); len(got) != 2 {
		t.Fatalf("inside the interval: %d Events, want 2 (one per reason)", len(got))
	}
	clk.add(10 * time.Second)
	r.flush(ctx, false)
	got = events(t, c)
	if len(got) != 3 {
		t.Fatalf("after the interval: %d Events, want 3", len(got))
	}
	var summary *eventsv1.Event
	for i := range got {
		if strings.Contains(got[i].Note, "more since") {
			summary = &got[i]
		}
	}
	if summary == nil || summary.Note != "booking_created: appointment a42 (and 41 more since 2030-01-02T12:00:00Z)" ||
		summary.Series == nil || summary.Series.Count != 42 {
		t.Fatalf("summary Event: %+v", summary)
	}

	// Quiet for an interval: the series is forgotten, the next is at once.
	clk.add(10 * time.Second)
	r.flush(ctx, false)
	r.mu.Lock()
	left := len(r.series)
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("%d quiet series kept", left)
	}
}

func TestFailedWritesAreCountedInTheNext(t *testing.T) {
	fail := true
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if fail {
				return errors.New("apiserver down")
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	clk := newClock()
	var writes, failures int
	r := New(c, Options{Interval: time.Second, Now: clk.now, OnWrite: func(_ int, err error) {
		writes++
		if err != nil {
			failures++
		}
	}})
	ctx := context.Background()
	r.Event(ref, corev1.EventTypeWarning, "DeliveryFailed", "Forward", "first")
	r.flush(ctx, false)
	clk.add(500 * time.Millisecond)
	r.Event(ref, corev1.EventTypeWarning, "DeliveryFailed", "Forward", "second")
	fail = false
	r.flush(ctx, false) // not due yet: the failed write still counts for the interval
	if len(events(t, c)) != 0 {
		t.Fatal("retried inside the interval")
	}
	clk.add(time.Second)
	r.flush(ctx, false)
	got := events(t, c)
	if len(got) != 1 || got[0].Note != "second (and 1 more since 2030-01-02T12:00:00Z)" || got[0].Series.Count != 2 {
		t.Fatalf("after recovery: %+v", got)
	}
	if writes != 2 || failures != 1 {
		t.Errorf("OnWrite saw %d writes, %d failures; want 2, 1", writes, failures)
	}
}

func TestFinalFlushWritesWhatWaits(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	r := New(c, Options{Interval: time.Hour})
	other := ref
	other.UID, other.Name = "uid-2", "other"
	r.Event(other, corev1.EventTypeNormal, "BookingCreated", "Received", "b")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := events(t, c)
	if len(got) != 1 || got[0].Regarding.UID != "uid-2" {
		t.Fatalf("after the final flush: %+v", got)
	}
}

func TestLongNotesAndNamesFitTheAPI(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	r := New(c, Options{})
	long := ref
	long.Name = strings.Repeat("n", 253)
	r.Event(long, corev1.EventTypeNormal, "A", "Received", strings.Repeat("x", 2000))
	r.Event(long, corev1.EventTypeNormal, "B", "Received", "b")
	r.flush(context.Background(), true)
	got := events(t, c)
	if len(got) != 2 {
		t.Fatalf("%d Events, want 2 with distinct names", len(got))
	}
	for _, e := range got {
		if len(e.Note) > maxNote || len(e.Name) > 253 {
			t.Errorf("note of %d bytes, name of %d", len(e.Note), len(e.Name))
		}
	}
}
