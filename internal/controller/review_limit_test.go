package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// racingDashboard makes the first create race two dashboard actions: one
// webhook is added just before it (so meetergo answers 406) and another is
// deleted just after (so the list read after the refusal shows five).
type racingDashboard struct {
	meetergo.Client
	w    *world
	once sync.Once
}

func (r *racingDashboard) CreateWebhook(ctx context.Context, c meetergo.Credential, in meetergo.WebhookInput) (meetergo.Webhook, error) {
	var (
		out meetergo.Webhook
		err error
		hit bool
	)
	r.once.Do(func() {
		hit = true
		// (In the reconciler's goroutine: report with Errorf, never FailNow.)
		if _, aerr := meetergoFk.AddExternalWebhook(r.w.companyID, fake.WebhookSpec{Endpoint: "https://elsewhere.example.test/racing", Description: "dashboard", EventTypes: []string{"booking_created"}}); aerr != nil {
			r.w.t.Errorf("dashboard create: %v", aerr)
		}
		out, err = r.Client.CreateWebhook(ctx, c, in)
		if !meetergo.IsQuotaExceeded(err) {
			r.w.t.Errorf("the racing create should be refused 406, got %v", err)
		}
		if derr := meetergoFk.DeleteWebhook(r.w.registrations()[0].ID); derr != nil {
			r.w.t.Errorf("dashboard delete: %v", derr)
		}
	})
	if hit {
		return out, err
	}
	return r.Client.CreateWebhook(ctx, c, in)
}

// Found by review: a 406 caused by a dashboard create racing ours, with a dashboard
// deletion right after it. The operator lists once after the refusal, sees
// five, and "learns" that the company's limit is 5 for a whole resync
// period: the waiting resource is told its plan allows only five webhooks
// and is not registered although meetergo has a free slot (for 10 minutes
// with the default --resync-period).
func TestARacing406TeachesNoLimit(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.fillWithDashboardWebhooks(5)
	w.tweak = func(r *MeetergoWebhookReconciler) { r.Meetergo = &racingDashboard{Client: r.Meetergo, w: w} }
	w.startOperator(Options{QuotaPollInterval: 200 * time.Millisecond})
	w.create(w.webhook("unlucky"))

	g.Eventually(func() string {
		_, r, msg := cond(w.get("unlucky"), webhooksv1alpha1.ConditionRegistered)
		return r + ": " + msg
	}, 5*time.Second, 100*time.Millisecond).Should(HavePrefix(ReasonRegistered), "meetergo lists five of six and accepts a sixth")
}
