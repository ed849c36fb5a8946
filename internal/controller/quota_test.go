package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// reasons counts the resources' Registered reasons.
func (w *world) reasons(names []string) map[string][]string {
	out := map[string][]string{}
	for _, n := range names {
		_, r, _ := cond(w.get(n), webhooksv1alpha1.ConditionRegistered)
		out[r] = append(out[r], n)
	}
	return out
}

// createInOrder creates resources one second apart, so their creation
// times (second resolution) give the queue order.
func (w *world) createInOrder(objs ...*webhooksv1alpha1.MeetergoWebhook) []string {
	var names []string
	for i, o := range objs {
		if i > 0 {
			prev := w.get(objs[i-1].Name).CreationTimestamp.Time
			// Wait for the clock to pass into the next second.
			NewWithT(w.t).Eventually(func() bool { return time.Now().Truncate(time.Second).After(prev) }, 2*time.Second, 10*time.Millisecond).Should(BeTrue())
		}
		w.create(o)
		names = append(names, o.Name)
	}
	return names
}

func TestSixPerCompanyQueueAndHandOver(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	_, err := meetergoFk.AddExternalWebhook(w.companyID, fake.WebhookSpec{Endpoint: "https://elsewhere.example.test/hook", Description: "made in the dashboard", EventTypes: []string{"booking_created"}})
	g.Expect(err).NotTo(HaveOccurred())
	w.startOperator(Options{})

	var objs []*webhooksv1alpha1.MeetergoWebhook
	for i := 1; i <= 8; i++ {
		objs = append(objs, w.webhook(fmt.Sprintf("team-%d", i)))
	}
	names := w.createInOrder(objs...)

	g.Eventually(func(g Gomega) {
		r := w.reasons(names)
		g.Expect(r[ReasonRegistered]).To(ConsistOf("team-1", "team-2", "team-3", "team-4", "team-5"))
		g.Expect(r[ReasonQuotaExceeded]).To(ConsistOf("team-6", "team-7", "team-8"))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(w.registrations()).To(HaveLen(6))

	_, _, msg := cond(w.get("team-7"), webhooksv1alpha1.ConditionRegistered)
	g.Expect(msg).To(ContainSubstring("6 of 6"))
	g.Expect(msg).To(ContainSubstring("5 by this cluster (" + w.ns + "/team-1, " + w.ns + "/team-2, " + w.ns + "/team-3, " + w.ns + "/team-4, " + w.ns + "/team-5)"))
	g.Expect(msg).To(ContainSubstring("1 by others"))
	g.Expect(msg).To(ContainSubstring("position 2"))
	g.Expect(condStatus(w.get("team-7"), webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionFalse))
	g.Eventually(func() []string { return w.events("team-8") }, wait).Should(ContainElement(ReasonQuotaExceeded))

	// A registered resource goes; the oldest waiting one takes its slot
	// within seconds, and the others keep waiting.
	start := time.Now()
	g.Expect(k8s.Delete(context.Background(), w.get("team-2"))).To(Succeed())
	g.Eventually(func() string { _, r, _ := cond(w.get("team-6"), webhooksv1alpha1.ConditionRegistered); return r }, 10*time.Second, 50*time.Millisecond).Should(Equal(ReasonRegistered))
	t.Logf("hand-over took %s", time.Since(start))
	g.Consistently(func(g Gomega) {
		r := w.reasons([]string{"team-7", "team-8"})
		g.Expect(r[ReasonQuotaExceeded]).To(HaveLen(2))
	}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(w.registrations()).To(HaveLen(6))

	// An external webhook removed in the dashboard frees a slot too.
	for _, h := range w.registrations() {
		if h.Description == "made in the dashboard" {
			g.Expect(meetergoFk.DeleteWebhook(h.ID)).To(Succeed())
		}
	}
	g.Eventually(func() string { _, r, _ := cond(w.get("team-7"), webhooksv1alpha1.ConditionRegistered); return r }, 10*time.Second, 50*time.Millisecond).Should(Equal(ReasonRegistered))

	g.Expect(w.statuses()).NotTo(ContainElement(406), "the operator never provokes meetergo's 406")
}

func TestCredentialsOfOneCompanyShareSlotsOtherCompaniesDoNot(t *testing.T) {
	w := newWorld(t)
	other := newWorld(t) // another company; resources live in w's namespace
	g := NewWithT(t)
	// A platform key of w's company, acting for its admin.
	platformKey := fmt.Sprintf("ak_live:%s:secret-of-%s", "4a1b7c2d-0000-4000-8000-00000000f00a", w.ns)
	g.Expect(meetergoFk.AddSeed(fake.Seed{Credentials: []fake.Credential{{Token: platformKey, CompanyID: w.companyID}}})).To(Succeed())
	w.secret("platform", map[string]string{SecretKeyToken: platformKey, SecretKeyUserID: w.userID})
	w.secret("other-company", map[string]string{SecretKeyToken: other.token})
	w.startOperator(Options{})

	var objs []*webhooksv1alpha1.MeetergoWebhook
	for i := 1; i <= 8; i++ {
		o := w.webhook(fmt.Sprintf("shared-%d", i))
		if i%2 == 0 {
			o.Spec.Credentials.SecretRef.Name = "platform"
		}
		objs = append(objs, o)
	}
	for i := 1; i <= 3; i++ {
		o := w.webhook(fmt.Sprintf("other-%d", i))
		o.Spec.Credentials.SecretRef.Name = "other-company"
		objs = append(objs, o)
	}
	var names []string
	for _, o := range objs {
		w.create(o)
		names = append(names, o.Name)
	}
	g.Eventually(func(g Gomega) {
		r := w.reasons(names)
		g.Expect(r[ReasonRegistered]).To(HaveLen(6 + 3))
		g.Expect(r[ReasonQuotaExceeded]).To(HaveLen(2))
		g.Expect(r[ReasonQuotaExceeded]).NotTo(ContainElement(HavePrefix("other-")))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(meetergoFk.Webhooks(w.companyID)).To(HaveLen(6))
	g.Expect(meetergoFk.Webhooks(other.companyID)).To(HaveLen(3))
	// The platform key sent its user header; the personal token never did.
	for _, r := range meetergoFk.Requests() {
		switch r.Credential {
		case platformKey:
			g.Expect(r.UserHeader).To(Equal(w.userID))
		case w.token:
			g.Expect(r.UserHeaderSent).To(BeFalse())
		}
	}
}

func TestCredentialProblemsAreShownAndRecover(t *testing.T) {
	w := newWorld(t)
	w.startOperator(Options{})
	g := NewWithT(t)
	reason := func(name string) string { _, r, _ := cond(w.get(name), webhooksv1alpha1.ConditionRegistered); return r }

	// Missing Secret: stalled until it appears (the Secret is watched).
	o := w.webhook("no-secret")
	o.Spec.Credentials.SecretRef.Name = "later"
	w.create(o)
	got := w.waitReason("no-secret", ReasonSecretNotFound)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
	_, _, msg := cond(got, webhooksv1alpha1.ConditionReady)
	g.Expect(msg).To(ContainSubstring(w.ns + "/later"))
	w.secret("later", map[string]string{SecretKeyToken: w.token})
	w.waitReason("no-secret", ReasonRegistered)

	// The Secret lacks the key.
	w.secret("wrong-key", map[string]string{"apiKey": w.token})
	o = w.webhook("wrong-key")
	o.Spec.Credentials.SecretRef.Name = "wrong-key"
	w.create(o)
	got = w.waitReason("wrong-key", ReasonSecretKeyMissing)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionTrue))

	// A platform key without userId.
	w.secret("no-user", map[string]string{SecretKeyToken: "ak_live:00000000-0000-4000-8000-000000000000:x"})
	o = w.webhook("no-user")
	o.Spec.Credentials.SecretRef.Name = "no-user"
	w.create(o)
	w.waitReason("no-user", ReasonSecretKeyMissing)

	// meetergo refuses the token (401): retried with backoff, not a hot
	// loop, and recovered when the Secret gets a good token.
	w.secret("bad-token", map[string]string{SecretKeyToken: "rgo-unknown-token-of-nobody-0000000"})
	o = w.webhook("bad-token")
	o.Spec.Credentials.SecretRef.Name = "bad-token"
	w.create(o)
	got = w.waitReason("bad-token", ReasonCredentialRejected)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionFalse))
	before := meetergoFk.Count("GET", "/v4/user/me", "rgo-unknown-token-of-nobody-0000000").Requests
	time.Sleep(3 * time.Second) // a window in which to count calls, not a wait for a result
	calls := meetergoFk.Count("GET", "/v4/user/me", "rgo-unknown-token-of-nobody-0000000").Requests - before
	g.Expect(calls).To(BeNumerically("<=", 6), "backoff (100ms doubling to 2s) allows a handful of calls in 3s, a hot loop hundreds")
	sec := &corev1.Secret{}
	g.Expect(k8s.Get(context.Background(), clientKey(w.ns, "bad-token"), sec)).To(Succeed())
	sec.Data = map[string][]byte{SecretKeyToken: []byte(w.token)}
	g.Expect(k8s.Update(context.Background(), sec)).To(Succeed())
	w.waitReason("bad-token", ReasonRegistered)

	// 403: the token lacks the permission to manage webhooks.
	noPerm := "rgo-no-permission-" + w.ns
	g.Expect(meetergoFk.AddSeed(fake.Seed{Credentials: []fake.Credential{{Token: noPerm, UserID: w.userID, NoWebhookPermission: true}}})).To(Succeed())
	w.secret("no-perm", map[string]string{SecretKeyToken: noPerm})
	o = w.webhook("no-perm")
	o.Spec.Credentials.SecretRef.Name = "no-perm"
	w.create(o)
	w.waitReason("no-perm", ReasonPermissionDenied)

	g.Expect(reason("no-secret")).To(Equal(ReasonRegistered))
}

func TestPlanWallAndRateLimitStorm(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	// The company's plan has no webhooks: shown, retried, and registered
	// once the plan allows it.
	meetergoFk.UpdateSettings(func(s *fake.Settings) { s.PlanWall = true })
	t.Cleanup(func() { meetergoFk.UpdateSettings(func(s *fake.Settings) { s.PlanWall = false }) })
	op := w.startOperator(Options{}, func(o *meetergo.Options) { o.MaxRetries = 1 })
	w.create(w.webhook("walled"))
	got := w.waitReason("walled", ReasonPlanLimitReached)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionFalse))
	meetergoFk.UpdateSettings(func(s *fake.Settings) { s.PlanWall = false })
	w.waitReason("walled", ReasonRegistered)
	op.stop()

	// A storm of 429s with Retry-After on every webhook route, then meetergo
	// recovers: the operator waits as asked and registers.
	id, err := meetergoFk.InjectFault(fake.Fault{Path: "/webhooks", Status: 429, RetryAfter: 1, Times: 8})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { meetergoFk.RemoveFault(id) })
	w.startOperator(Options{}, func(o *meetergo.Options) { o.MaxRetries = 1 })
	w.create(w.webhook("storm"))
	w.waitReason("storm", ReasonRegistered)
}

func TestTwoHundredResourcesOnOneCredentialWithoutA429(t *testing.T) {
	if testing.Short() {
		t.Skip("200 resources: skipped with -short")
	}
	w := newWorld(t)
	g := NewWithT(t)
	// meetergo's limit, scaled 30x so the test takes seconds, not minutes;
	// the operator's budget is scaled alike, with the same margin as in
	// production (100/min of meetergo's 100/min burst 200).
	meetergoFk.UpdateSettings(func(s *fake.Settings) { s.WebhookLimit = 1000; s.RequestsPerMinute = 3000; s.Burst = 100 })
	t.Cleanup(func() { meetergoFk.UpdateSettings(func(s *fake.Settings) { *s = fake.Settings{} }) })
	w.startOperator(Options{WebhookLimit: 1000}, func(o *meetergo.Options) { o.RequestsPerMinute = 2700; o.Burst = 50 })

	var names []string
	for i := range 200 {
		o := w.webhook(fmt.Sprintf("wh-%03d", i))
		g.Expect(k8s.Create(context.Background(), o)).To(Succeed())
		names = append(names, o.Name)
	}
	g.Eventually(func() int { return len(w.reasons(names)[ReasonRegistered]) }, 60*time.Second, 200*time.Millisecond).Should(Equal(200))
	g.Expect(w.registrations()).To(HaveLen(200))
	for _, c := range meetergoFk.Counts() {
		if c.Credential == w.token {
			g.Expect(c.RateLimited).To(BeZero(), "%s %s was answered 429", c.Method, c.Route)
		}
	}
	t.Logf("meetergo calls for 200 resources: %d", w.totalRequests())
}
