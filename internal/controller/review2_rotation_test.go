package controller

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// normalisingMeetergo stores endpoints the way a URL parser prints them
// (host in lower case), as a server that runs every URL through
// new URL(...).toString() does.
type normalisingMeetergo struct{ meetergo.Client }

func normaliseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.Host = strings.ToLower(u.Host)
	return u.String()
}

func (n normalisingMeetergo) CreateWebhook(ctx context.Context, c meetergo.Credential, in meetergo.WebhookInput) (meetergo.Webhook, error) {
	in.Endpoint = normaliseURL(in.Endpoint)
	return n.Client.CreateWebhook(ctx, c, in)
}

func (n normalisingMeetergo) UpdateWebhook(ctx context.Context, c meetergo.Credential, id string, in meetergo.WebhookInput) (meetergo.Webhook, error) {
	if in.Endpoint != "" {
		in.Endpoint = normaliseURL(in.Endpoint)
	}
	return n.Client.UpdateWebhook(ctx, c, id, in)
}

// Attack: the receiver URL is configured with capitals in its host
// (--receiver-public-url=https://Hooks.Example.test/meetergo) and meetergo
// keeps the endpoint normalised (host in lower case). Deliveries work (hosts
// are case-insensitive), but the registered endpoint never equals the one
// the operator computes. A rotation "waits until meetergo holds the
// current token", which it never does by string equality: the token is
// never rotated (a leaked token stays valid for ever), the request is never
// marked handled, and every RetryBaseDelay the same endpoint PATCH is sent
// again (about 60 a minute per resource with the default 1 s, out of the
// credential's 100).
func TestRotationIsCarriedOutWhenMeetergoNormalisesTheEndpoint(t *testing.T) {
	w := newWorld(t)
	g := NewWithT(t)
	w.tweak = func(r *MeetergoWebhookReconciler) { r.Meetergo = normalisingMeetergo{r.Meetergo} }
	w.startOperator(Options{ReceiverURL: "https://Hooks.Example.test/meetergo"})
	w.create(w.webhook("normalised"))
	w.waitReason("normalised", ReasonRegistered)

	cur := w.get("normalised")
	cur.Annotations = map[string]string{webhooksv1alpha1.RotateTokenAnnotation: "2026-12-03T10:00:00Z"}
	g.Expect(k8s.Update(context.Background(), cur)).To(Succeed())
	patches := w.count("PATCH", "/webhooks/{id}")

	g.Eventually(func(g Gomega) {
		obj := w.get("normalised")
		g.Expect(obj.Status.LastHandledRotateToken).To(Equal("2026-12-03T10:00:00Z"))
		g.Expect(obj.Status.TokenGeneration).To(BeEquivalentTo(1))
	}, 5*time.Second, 50*time.Millisecond).Should(Succeed(), func() string {
		return "the rotation was never carried out; PATCH requests sent meanwhile: " + itoa(int64(w.count("PATCH", "/webhooks/{id}")-patches))
	})
}
