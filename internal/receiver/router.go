package receiver

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// tokenIndex is the cache field index of MeetergoWebhooks by receiver token:
// the current one and, after a rotation, the previous one.
const tokenIndex = "receiver.meetergo-operator.io/token"

// tokensOf is the index function: no token is stored anywhere, each is
// derived from the UID and status.tokenGeneration whenever the cache sees
// the object change.
func tokensOf(d *token.Deriver) client.IndexerFunc {
	return func(o client.Object) []string {
		w := o.(*webhooksv1alpha1.MeetergoWebhook)
		toks := []string{d.Token(string(w.UID), w.Status.TokenGeneration)}
		if w.Status.TokenGeneration > 0 {
			toks = append(toks, d.Token(string(w.UID), w.Status.TokenGeneration-1))
		}
		return toks
	}
}

// router finds the MeetergoWebhook a token belongs to.
type router struct {
	cache  client.Reader
	tokens *token.Deriver
	grace  time.Duration
	now    func() time.Time
}

// lookup returns the resource whose current token is tok, or whose previous
// token is tok while its grace period lasts; nil if none. The index lookup
// is a map access; the match is then confirmed in constant time. The
// returned object is the cache's own: read it, never change it.
func (r *router) lookup(ctx context.Context, tok string) (*webhooksv1alpha1.MeetergoWebhook, error) {
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if err := r.cache.List(ctx, list, client.MatchingFields{tokenIndex: tok}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if w := &list.Items[i]; r.accepts(w, tok) {
			return w, nil
		}
	}
	return nil, nil
}

// accepts says whether tok opens w now.
func (r *router) accepts(w *webhooksv1alpha1.MeetergoWebhook, tok string) bool {
	gen := w.Status.TokenGeneration
	if token.Equal(tok, r.tokens.Token(string(w.UID), gen)) {
		return true
	}
	rotated := w.Status.TokenRotatedAt
	return gen > 0 && rotated != nil && r.now().Before(rotated.Add(r.grace)) &&
		token.Equal(tok, r.tokens.Token(string(w.UID), gen-1))
}
