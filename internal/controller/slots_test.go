package controller

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// A company full, one resource waiting; a holder's registration is deleted
// in the dashboard. The holder gets its slot back, not the waiting one, and
// no status goes on naming the deleted registration.
func TestHolderWhoseRegistrationIsDeletedInTheDashboardKeepsItsSlot(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.startOperator(Options{QuotaPollInterval: 300 * time.Millisecond})

	var objs []*webhooksv1alpha1.MeetergoWebhook
	for i := 1; i <= 7; i++ {
		objs = append(objs, w.webhook(fmt.Sprintf("team-%d", i)))
	}
	names := w.createInOrder(objs...)
	g.Eventually(func(g Gomega) {
		r := w.reasons(names)
		g.Expect(r[ReasonRegistered]).To(HaveLen(6))
		g.Expect(r[ReasonQuotaExceeded]).To(ConsistOf("team-7"))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

	victim := w.get("team-3")
	gone := victim.Status.WebhookID
	id, _ := strconv.ParseInt(gone, 10, 64)
	g.Expect(meetergoFk.DeleteWebhook(id)).To(Succeed())

	// Within a few quota polls the holder is registered again.
	g.Eventually(func(g Gomega) {
		cur := w.get("team-3")
		_, r, _ := cond(cur, webhooksv1alpha1.ConditionRegistered)
		g.Expect(r).To(Equal(ReasonRegistered))
		g.Expect(cur.Status.WebhookID).NotTo(BeEmpty())
		g.Expect(cur.Status.WebhookID).NotTo(Equal(gone))
		g.Expect(w.ownedBy(cur)).To(HaveLen(1))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	g.Eventually(func() []string { return w.events("team-3") }, wait).Should(ContainElement("RegistrationVanished"))

	// The waiting resource still waits, and the company holds six.
	g.Consistently(func(g Gomega) {
		_, r, _ := cond(w.get("team-7"), webhooksv1alpha1.ConditionRegistered)
		g.Expect(r).To(Equal(ReasonQuotaExceeded))
		g.Expect(w.registrations()).To(HaveLen(6))
		for _, n := range names[:6] {
			g.Expect(w.ownedBy(w.get(n))).To(HaveLen(1))
		}
	}, 2*time.Second, 100*time.Millisecond).Should(Succeed())
}

// The reconcile-now annotation lists afresh (no cache), repairs drift, and
// records the value handled.
func TestReconcileNowAnnotationListsAfreshAndRepairsDrift(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.startOperator(Options{ResyncPeriod: time.Hour, ListMaxAge: time.Hour})
	obj := w.create(w.webhook("now", webhooksv1alpha1.EventBookingCreated))
	w.waitReason("now", ReasonRegistered)

	regs := w.ownedBy(obj)
	_, err := meetergoFk.EditWebhook(regs[0].ID, fake.WebhookChange{EventTypes: []string{"new_employee"}})
	g.Expect(err).NotTo(HaveOccurred())
	lists := w.count("GET", "/webhooks")

	g.Expect(w.annotate("now", webhooksv1alpha1.ReconcileRequestedAtAnnotation, "2026-12-03T11:00:00Z")).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(w.get("now").Status.LastHandledReconcileAt).To(Equal("2026-12-03T11:00:00Z"))
		g.Expect(w.ownedBy(obj)[0].EventTypes).To(ConsistOf("booking_created"))
	}, wait, 50*time.Millisecond).Should(Succeed())
	g.Expect(w.count("GET", "/webhooks")).To(BeNumerically(">", lists), "listed afresh")

	// The same value again changes nothing; a new one is handled again.
	lists = w.count("GET", "/webhooks")
	g.Expect(w.annotate("now", "example.com/touched", "yes")).To(Succeed())
	g.Consistently(func() int { return w.count("GET", "/webhooks") }, time.Second, 100*time.Millisecond).Should(Equal(lists))
}

// A company whose plan allows fewer webhooks than --webhook-limit: meetergo
// refuses the fourth create. The operator learns the limit, says so, shows
// it in the metric's limit, and sends no more creates meetergo would refuse.
func TestLowerCompanyLimitIsLearnedFromARefusedCreate(t *testing.T) {
	for _, shape := range []string{"406", "plan wall"} {
		t.Run(shape, func(t *testing.T) {
			w := newWorld(t)
			g := NewWithT(t)
			before := meetergoFk.Settings()
			s := before
			s.WebhookLimit = 3
			meetergoFk.SetSettings(s)
			t.Cleanup(func() { meetergoFk.SetSettings(before) })
			if shape == "plan wall" {
				// Three registrations exist; then the plan wall applies to
				// creates (answered 400 with the code, as a client saw).
				for i := 0; i < 3; i++ {
					_, err := meetergoFk.AddExternalWebhook(w.companyID, fake.WebhookSpec{Endpoint: fmt.Sprintf("https://elsewhere.example.test/%d", i), Description: "dashboard", EventTypes: []string{"booking_created"}})
					g.Expect(err).NotTo(HaveOccurred())
				}
				s.WebhookLimit = 6
				s.PlanWallOnCreate = true
				s.PlanWallStatus = 400
				meetergoFk.SetSettings(s)
			}
			w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond, ResyncPeriod: time.Hour})
			var objs []*webhooksv1alpha1.MeetergoWebhook
			n := 5
			if shape == "plan wall" {
				n = 2
			}
			for i := 1; i <= n; i++ {
				objs = append(objs, w.webhook(fmt.Sprintf("team-%d", i)))
			}
			names := w.createInOrder(objs...)
			g.Eventually(func(g Gomega) {
				r := w.reasons(names)
				g.Expect(r[ReasonQuotaExceeded]).To(HaveLen(2))
			}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
			// A second refusal at the same count teaches the limit.
			g.Eventually(func() string {
				_, _, msg := cond(w.get(names[len(names)-1]), webhooksv1alpha1.ConditionRegistered)
				return msg
			}, wait, 50*time.Millisecond).Should(ContainSubstring("this company's limit is 3, not the configured 6"))
			g.Expect(gaugeValue(t, w.companyID, "limit")).To(BeEquivalentTo(3))

			posts := w.count("POST", "/webhooks")
			g.Consistently(func() int { return w.count("POST", "/webhooks") }, 2*time.Second, 100*time.Millisecond).
				Should(Equal(posts), "no create is sent that meetergo would refuse")
		})
	}
}

// A registration meetergo lists as disabled is not Ready.
func TestRegistrationDisabledByMeetergoIsNotReady(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.startOperator(Options{})
	obj := w.create(w.webhook("switched-off"))
	w.waitReason("switched-off", ReasonRegistered)
	_, err := meetergoFk.DisableWebhook(w.ownedBy(obj)[0].ID, "isActive")
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(w.annotate("switched-off", webhooksv1alpha1.ReconcileRequestedAtAnnotation, "2026-12-03T12:00:00Z")).To(Succeed())
	got := w.waitReason("switched-off", ReasonDisabled)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionReady)).To(Equal(metav1.ConditionFalse))
	_, _, msg := cond(got, webhooksv1alpha1.ConditionReady)
	g.Expect(msg).To(ContainSubstring("isActive"))
	g.Expect(msg).To(ContainSubstring("dashboard"))
	g.Expect(got.Status.WebhookID).NotTo(BeEmpty(), "meetergo lists it: the slot is held")
	g.Eventually(func() []string { return w.events("switched-off") }, wait).Should(ContainElement(ReasonDisabled))
}

// A token that is neither a personal token nor a platform key is refused
// before anything is sent.
func TestUnsupportedCredentialIsRefusedWithoutACall(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.secret("login-token", map[string]string{SecretKeyToken: "eyJhbGciOiJIUzI1NiJ9.session.token"})
	w.startOperator(Options{})
	obj := w.webhook("session")
	obj.Spec.Credentials.SecretRef.Name = "login-token"
	w.create(obj)
	got := w.waitReason("session", ReasonUnsupportedCredential)
	g.Expect(condStatus(got, webhooksv1alpha1.ConditionStalled)).To(Equal(metav1.ConditionTrue))
	_, _, msg := cond(got, webhooksv1alpha1.ConditionReady)
	g.Expect(msg).To(ContainSubstring("rgo-"))
	g.Expect(msg).To(ContainSubstring("ak_live:"))
	g.Expect(msg).NotTo(ContainSubstring("eyJhbGci"))
	for _, r := range meetergoFk.Requests() {
		g.Expect(r.Credential).NotTo(HavePrefix("eyJ"), "no request was sent with it")
	}
}

// One platform key acting for users of two companies: each resource gets
// its user's company, and the two companies' slots stay apart.
func TestOnePlatformKeyForUsersOfTwoCompanies(t *testing.T) {
	a := newWorld(t)
	b := newWorld(t)
	g := NewWithT(t)
	key := fmt.Sprintf("ak_live:%s:multisecret%d", "4a1b7c2d-0000-4000-8000-0000000ff001", counter.Add(1))
	g.Expect(meetergoFk.AddSeed(fake.Seed{Credentials: []fake.Credential{{Token: key, CompanyIDs: []string{a.companyID, b.companyID}}}})).To(Succeed())
	a.secret("platform", map[string]string{SecretKeyToken: key, SecretKeyUserID: a.userID})
	b.secret("platform", map[string]string{SecretKeyToken: key, SecretKeyUserID: b.userID})

	// One operator for both namespaces, as in a cluster.
	a.alsoWatch = []string{b.ns}
	a.startOperator(Options{})
	oa := a.webhook("via-key")
	oa.Spec.Credentials.SecretRef.Name = "platform"
	ob := b.webhook("via-key")
	ob.Spec.Credentials.SecretRef.Name = "platform"
	a.create(oa)
	b.create(ob)
	ga := a.waitReason("via-key", ReasonRegistered)
	gb := b.waitReason("via-key", ReasonRegistered)
	g.Expect(ga.Status.CompanyID).To(Equal(a.companyID))
	g.Expect(gb.Status.CompanyID).To(Equal(b.companyID))
	g.Expect(a.ownedBy(ga)).To(HaveLen(1))
	g.Expect(b.ownedBy(gb)).To(HaveLen(1))
}

// gaugeValue reads meetergo_operator_company_webhook_slots.
func gaugeValue(t *testing.T, company, holder string) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := companySlots.WithLabelValues(company, holder).Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
