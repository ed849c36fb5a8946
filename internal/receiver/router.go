package receiver

import (
	"context"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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

	// indexer is the informer's own index, when cache is the manager's
	// informer cache: asked directly, a lookup is one map access instead
	// of a List (options, selectors, a list and reflection: some 30
	// allocations per request).
	indexOnce sync.Once
	indexer   toolscache.Indexer
}

// The informer cache's names for a field index and for its cluster-wide
// values (controller-runtime's FieldIndexName and KeyToNamespacedKey). If
// they ever differ, lookups miss the index and take the List below.
const (
	tokenIndexName   = "field:" + tokenIndex
	tokenIndexPrefix = "__all_namespaces/"
)

func (r *router) index(ctx context.Context) toolscache.Indexer {
	r.indexOnce.Do(func() {
		c, ok := r.cache.(interface {
			GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error)
		})
		if !ok {
			return
		}
		inf, err := c.GetInformer(ctx, &webhooksv1alpha1.MeetergoWebhook{}, cache.BlockUntilSynced(false))
		if err != nil {
			return
		}
		i, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
		if !ok {
			return
		}
		if _, ok := i.GetIndexer().GetIndexers()[tokenIndexName]; ok {
			r.indexer = i.GetIndexer()
		}
	})
	return r.indexer
}

// lookup returns the resource whose current token is tok, or whose previous
// token is tok while its grace period lasts; nil if none. The index lookup
// is a map access; the match is then confirmed in constant time. The
// returned object is the cache's own: read it, never change it.
func (r *router) lookup(ctx context.Context, tok string) (*webhooksv1alpha1.MeetergoWebhook, error) {
	if idx := r.index(ctx); idx != nil {
		if objs, err := idx.ByIndex(tokenIndexName, tokenIndexPrefix+tok); err == nil {
			for _, o := range objs {
				if w, ok := o.(*webhooksv1alpha1.MeetergoWebhook); ok && r.accepts(w, tok) {
					return w, nil
				}
			}
		}
		// A miss (an unknown token) is confirmed by the List, which is
		// what decides.
	}
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
