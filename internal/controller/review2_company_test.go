package controller

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// outageAfterCreate makes the first create an ambiguous one (applied, answered
// 503) and meetergo's list unavailable from then on, until the test lifts it.
type outageAfterCreate struct {
	meetergo.Client
	t        *testing.T
	once     sync.Once
	listFail atomic.Int64
}

func (o *outageAfterCreate) CreateWebhook(ctx context.Context, c meetergo.Credential, in meetergo.WebhookInput) (meetergo.Webhook, error) {
	o.once.Do(func() {
		id, err := meetergoFk.InjectFault(fake.Fault{Method: "GET", Path: "/webhooks", Status: 503})
		if err != nil {
			o.t.Errorf("fault: %v", err)
		}
		o.listFail.Store(int64(id))
		if _, err = meetergoFk.InjectFault(fake.Fault{Method: "POST", Path: "/webhooks", Status: 503, Apply: true, Times: 1}); err != nil {
			o.t.Errorf("fault: %v", err)
		}
	})
	return o.Client.CreateWebhook(ctx, c, in)
}

// Attack: a create is applied at meetergo but answered 503, and meetergo's
// list stays unavailable for a while, so the registration is not adopted
// yet (status.webhookID empty). Meanwhile the resource's Secret is switched
// to a credential of another company. The CompanyChanged branch runs only
// when status.webhookID is set: no Warning Event names the registration
// left behind, and since deregistration looks only in the new company, it
// stays in the old company for ever, silently taking one of its six slots.
// README: "a Warning Event CompanyChanged names the webhook left behind in
// the old one".
func TestAmbiguousCreateLeftInTheOldCompanyIsReported(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	otherID, _ := w.otherCompany("other-api")
	spy := &outageAfterCreate{t: t}
	w.tweak = func(r *MeetergoWebhookReconciler) { spy.Client = r.Meetergo; r.Meetergo = spy }
	t.Cleanup(func() { meetergoFk.RemoveFault(int(spy.listFail.Load())) })
	w.startOperator(Options{})

	obj := w.create(w.webhook("switcher"))
	w.waitReason("switcher", ReasonMeetergoUnavailable)
	g.Expect(w.ownedBy(obj)).To(HaveLen(1), "the ambiguous create was applied in the first company")

	cur := w.get("switcher")
	cur.Spec.Credentials.SecretRef.Name = "other-api"
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	g.Eventually(func() string { return w.get("switcher").Status.CompanyID }, wait, 20*time.Millisecond).Should(Equal(otherID))
	meetergoFk.RemoveFault(int(spy.listFail.Load()))
	w.waitReason("switcher", ReasonRegistered)

	g.Expect(w.ownedBy(obj)).To(HaveLen(1), "the registration left in the first company")
	g.Expect(w.events("switcher")).To(ContainElement("CompanyChanged"),
		"a registration of this resource is left in company %s and nothing says so", w.companyID)
}
