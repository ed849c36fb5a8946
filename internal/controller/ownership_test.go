package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// withWatch lets the interceptor package wrap a manager's client.
type withWatch struct{ client.Client }

func (withWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, errors.New("not used")
}

// intercept wraps the next operator's client with funcs.
func (w *world) intercept(funcs interceptor.Funcs) {
	w.tweak = func(r *MeetergoWebhookReconciler) {
		r.Client = interceptor.NewClient(withWatch{r.Client}, funcs)
	}
}

// withFakeSettings changes the fake's settings for one test.
func withFakeSettings(t *testing.T, change func(*fake.Settings)) {
	before := meetergoFk.Settings()
	s := before
	change(&s)
	meetergoFk.SetSettings(s)
	t.Cleanup(func() { meetergoFk.SetSettings(before) })
}

// A status naming another resource's registration (a restored backup, a
// copied object) must not let this resource take it over.
func TestStatusNamingAnotherResourcesRegistrationDoesNotStealIt(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.startOperator(Options{})
	a := w.create(w.webhook("owner-a"))
	gotA := w.waitReason("owner-a", ReasonRegistered)
	regA := w.ownedBy(a)[0]

	// b's status claims a's registration before b is ever reconciled by an
	// operator that knows b (it is created suspended, then given the id).
	bObj := w.webhook("thief-b")
	bObj.Spec.Suspend = true
	b := w.create(bObj)
	w.waitReason("thief-b", ReasonSuspended)
	cur := w.get("thief-b")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Status.WebhookID = gotA.Status.WebhookID
	g.Expect(k8s.Status().Patch(context.Background(), cur, patch)).To(Succeed())
	cur = w.get("thief-b")
	cur.Spec.Suspend = false
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())

	gotB := w.waitReason("thief-b", ReasonRegistered)
	g.Expect(gotB.Status.WebhookID).NotTo(Equal(gotA.Status.WebhookID), "b must register its own webhook")
	g.Expect(w.ownedBy(b)).To(HaveLen(1))
	after := w.ownedBy(a)
	g.Expect(after).To(HaveLen(1), "a's registration is still there")
	g.Expect(after[0].ID).To(Equal(regA.ID))
	g.Expect(after[0].Endpoint).To(Equal(regA.Endpoint), "a's endpoint was not PATCHed to b's")
	g.Expect(w.registrations()).To(HaveLen(2))
}

// A registration made in the dashboard whose description starts with a
// resource's marker is not that resource's: it is neither adopted nor
// removed as a duplicate.
func TestMarkerTextInADashboardDescriptionBorrowsNothing(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.startOperator(Options{})
	a := w.create(w.webhook("real"))
	w.waitReason("real", ReasonRegistered)
	_, err := meetergoFk.AddExternalWebhook(w.companyID, fake.WebhookSpec{
		Endpoint: "https://elsewhere.example.test/hook", EventTypes: []string{"booking_created"},
		Description: registration.Marker(string(a.UID)) + " copied from the dashboard",
	})
	g.Expect(err).NotTo(HaveOccurred())

	// A reconcile-now request lists afresh.
	g.Expect(w.annotate("real", webhooksv1alpha1.ReconcileRequestedAtAnnotation, "2026-12-03T10:00:00Z")).To(Succeed())
	g.Eventually(func() string { return w.get("real").Status.LastHandledReconcileAt }, wait, 50*time.Millisecond).Should(Equal("2026-12-03T10:00:00Z"))
	g.Expect(w.registrations()).To(HaveLen(2), "the dashboard's registration is left alone")
	g.Expect(w.ownedBy(a)).To(HaveLen(1))
	g.Expect(w.events("real")).NotTo(ContainElement("DuplicateRemoved"))
}

// spec.description carrying marker text is refused at admission.
func TestMarkerTextInSpecDescriptionIsRefusedAtAdmission(t *testing.T) {
	w := newWorld(t)
	obj := w.webhook("imitator")
	obj.Spec.Description = "CRM " + registration.Marker("3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f")
	err := k8s.Create(context.Background(), obj)
	g := NewWithT(t)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("description must not contain '[k8s meetergo-operator uid='"))
}

// meetergo may cut descriptions; the registration is then recognised by its
// endpoint, across a crash between create and status write, a spec change
// and a deletion, and no PATCH loop starts.
func TestLifecycleWithDescriptionsCutByMeetergo(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	withFakeSettings(t, func(s *fake.Settings) { s.DescriptionMaxLength = 24 })

	// The create is applied but answered 500, and the operator dies before
	// it looks again: the marker is gone, only the endpoint can tell.
	id, err := meetergoFk.InjectFault(fake.Fault{Method: "POST", Path: "/webhooks", Apply: true, Status: 500, Times: 1})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(id) })
	first := w.startOperator(Options{RetryBaseDelay: time.Hour, RetryMaxDelay: time.Hour})
	obj := w.create(w.webhook("cut-short"))
	g.Eventually(func() []fake.Webhook { return w.registrations() }, wait, 20*time.Millisecond).Should(HaveLen(1))
	g.Expect(w.registrations()[0].Description).NotTo(ContainSubstring("uid="), "the fake cut the marker off")
	g.Eventually(func() string { _, r, _ := cond(w.get("cut-short"), webhooksv1alpha1.ConditionRegistered); return r }, wait).Should(Equal(ReasonMeetergoUnavailable))
	first.stop()

	w.startOperator(Options{ResyncPeriod: time.Second})
	got := w.waitReason("cut-short", ReasonRegistered)
	g.Expect(w.registrations()).To(HaveLen(1), "adopted by its endpoint, not created twice")
	g.Expect(got.Status.WebhookID).To(Equal(fmt.Sprint(w.registrations()[0].ID)))
	g.Expect(w.count("POST", "/webhooks")).To(Equal(1))

	// A spec change is a PATCH; then resyncs send nothing more.
	got.Spec.EventTypes = append(got.Spec.EventTypes, webhooksv1alpha1.EventBookingCancelled)
	got.Spec.Description = "a description well over twenty-four characters"
	g.Expect(k8s.Update(context.Background(), got)).To(Succeed())
	g.Eventually(func(g Gomega) {
		regs := w.ownedBy(obj)
		g.Expect(regs).To(HaveLen(1))
		g.Expect(regs[0].EventTypes).To(ConsistOf("booking_created", "booking_cancelled"))
		g.Expect(regs[0].Description).To(Equal("a description well over "))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Eventually(func() []string { return w.events("cut-short") }, wait).Should(ContainElement("Adopted"))
	patches := w.count("PATCH", "/webhooks/{id}")
	g.Consistently(func() int { return w.count("PATCH", "/webhooks/{id}") }, 3500*time.Millisecond, 250*time.Millisecond).
		Should(BeNumerically("<=", patches+1), "at most one PATCH to learn the cut, then none")

	// A new resource is told its marker was not kept.
	w.create(w.webhook("second"))
	w.waitReason("second", ReasonRegistered)
	g.Eventually(func() []string { return w.events("second") }, wait).Should(ContainElement("MarkerNotKept"))

	// Deletion finds both by their endpoints.
	g.Expect(k8s.Delete(context.Background(), w.get("cut-short"))).To(Succeed())
	g.Expect(k8s.Delete(context.Background(), w.get("second"))).To(Succeed())
	g.Eventually(func() []fake.Webhook { return w.registrations() }, wait, 50*time.Millisecond).Should(BeEmpty())
}

// A resource deleted right after its company was recorded, while the
// operator's cache still shows the status without it, must not lose its
// registration's removal.
func TestDeleteRightAfterCreateLeaksNoRegistration(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	// The operator's cached reads of a resource being deleted lack the
	// status, as a cache that has not yet seen the status patch would.
	w.intercept(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := c.Get(ctx, key, obj, opts...); err != nil {
			return err
		}
		if m, ok := obj.(*webhooksv1alpha1.MeetergoWebhook); ok && !m.DeletionTimestamp.IsZero() {
			m.Status = webhooksv1alpha1.MeetergoWebhookStatus{}
		}
		return nil
	}})
	w.startOperator(Options{})
	obj := w.create(w.webhook("short-lived"))
	w.waitReason("short-lived", ReasonRegistered)
	g.Expect(w.ownedBy(obj)).To(HaveLen(1))

	g.Expect(k8s.Delete(context.Background(), w.get("short-lived"))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), clientKey(w.ns, "short-lived"), &webhooksv1alpha1.MeetergoWebhook{}))
	}, wait, 50*time.Millisecond).Should(BeTrue())
	g.Expect(w.registrations()).To(BeEmpty(), "the registration was removed before the finalizer")
}

// Another controller's finalizer, added between the operator's read and
// its finalizer patch, survives.
func TestFinalizerOfAnotherWriterSurvivesOurFinalizerPatch(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	const other = "example.com/keep-me"
	var once sync.Once
	w.intercept(interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		if m, ok := obj.(*webhooksv1alpha1.MeetergoWebhook); ok && m.Name == "shared" {
			once.Do(func() {
				// The other writer, just before our patch, on the live object.
				cur := &webhooksv1alpha1.MeetergoWebhook{}
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(m), cur)).To(Succeed())
				cur.Finalizers = append(cur.Finalizers, other)
				g.Expect(k8s.Update(ctx, cur)).To(Succeed())
			})
		}
		return c.Patch(ctx, obj, patch, opts...)
	}})
	w.startOperator(Options{})
	w.create(w.webhook("shared"))
	got := w.waitReason("shared", ReasonRegistered)
	g.Expect(got.Finalizers).To(ContainElements(Finalizer, other))

	// Let it go, so the namespace can be cleaned up.
	g.Expect(k8s.Delete(context.Background(), got)).To(Succeed())
	g.Eventually(func() []fake.Webhook { return w.registrations() }, wait, 50*time.Millisecond).Should(BeEmpty())
	g.Eventually(func(g Gomega) {
		cur := w.get("shared")
		g.Expect(cur).NotTo(BeNil())
		g.Expect(cur.Finalizers).To(Equal([]string{other}), "ours is removed, the other's kept")
	}, wait, 50*time.Millisecond).Should(Succeed())
	cur := w.get("shared")
	cur.Finalizers = nil
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
}

// rotationSpy checks, at each PATCH of an endpoint at meetergo, that the
// token generation in the new endpoint is already in the API server: only
// then do receivers accept the new token before meetergo posts to it.
type rotationSpy struct {
	meetergo.Client
	t       *testing.T
	ns      string
	mu      sync.Mutex
	checked int
	early   []string
}

func (s *rotationSpy) UpdateWebhook(ctx context.Context, c meetergo.Credential, id string, in meetergo.WebhookInput) (meetergo.Webhook, error) {
	if in.Endpoint != "" {
		list := &webhooksv1alpha1.MeetergoWebhookList{}
		if err := k8s.List(ctx, list, client.InNamespace(s.ns)); err == nil {
			d, _ := token.NewDeriver(tokenKey)
			s.mu.Lock()
			s.checked++
			for _, o := range list.Items {
				if o.Status.WebhookID != id {
					continue
				}
				if !strings.HasSuffix(in.Endpoint, d.Token(string(o.UID), o.Status.TokenGeneration)) {
					s.early = append(s.early, fmt.Sprintf("%s: meetergo PATCHed before generation was persisted (stored %d)", o.Name, o.Status.TokenGeneration))
				}
			}
			s.mu.Unlock()
		}
	}
	return s.Client.UpdateWebhook(ctx, c, id, in)
}

func TestRotatedTokenIsPersistedBeforeMeetergoIsPatched(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	spy := &rotationSpy{t: t, ns: w.ns}
	w.tweak = func(r *MeetergoWebhookReconciler) {
		spy.Client = r.Meetergo
		r.Meetergo = spy
	}
	w.startOperator(Options{})
	obj := w.create(w.webhook("rotating"))
	w.waitReason("rotating", ReasonRegistered)
	d, _ := token.NewDeriver(tokenKey)
	for i := 1; i <= 3; i++ {
		g.Expect(w.annotate("rotating", webhooksv1alpha1.RotateTokenAnnotation, fmt.Sprintf("2026-12-03T10:0%d:00Z", i))).To(Succeed())
		g.Eventually(func() string { return w.ownedBy(obj)[0].Endpoint }, wait, 20*time.Millisecond).
			Should(HaveSuffix(d.Token(string(obj.UID), int64(i))))
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	g.Expect(spy.checked).To(BeNumerically(">=", 3))
	g.Expect(spy.early).To(BeEmpty())
	g.Expect(w.get("rotating").Status.TokenGeneration).To(BeEquivalentTo(3))
}

// The lifecycle tests again, against a meetergo that cuts every description
// at 24 characters, so that no marker survives: the endpoint carries them.
func TestLifecycleTestsPassWithDescriptionsCutByMeetergo(t *testing.T) {
	withFakeSettings(t, func(s *fake.Settings) { s.DescriptionMaxLength = 24 })
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"RegisterUpdateDeregister", TestRegisterUpdateDeregister},
		{"OrphanLeavesRegistration", TestOrphanLeavesRegistration},
		{"AmbiguousCreateAndRestartYieldOneRegistration", TestAmbiguousCreateAndRestartYieldOneRegistration},
		{"DriftAtMeetergoIsRepairedOnResync", TestDriftAtMeetergoIsRepairedOnResync},
		{"TokenRotationUpdatesEndpoint", TestTokenRotationUpdatesEndpoint},
		{"SuspendMakesNoCalls", TestSuspendMakesNoCalls},
		{"DeletionBlockedByCredentialSaysWhyAndOrphanFinishesIt", TestDeletionBlockedByCredentialSaysWhyAndOrphanFinishesIt},
		{"CredentialMovedToAnotherCompanyIsSaid", TestCredentialMovedToAnotherCompanyIsSaid},
	} {
		t.Run(tc.name, tc.test)
	}
}
