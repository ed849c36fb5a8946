package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// sharedCache lets every term use the always-on manager's informer cache
// instead of one of its own: the receiver already watches MeetergoWebhooks,
// Services and EndpointSlices, and a second cache would hold each of them
// twice on the leader (and open a second watch per type on the API
// server). Each term gets a termCache over it, which
//
//   - never starts or stops the shared cache (the always-on manager does);
//   - adds each field index once per process: the index functions are pure,
//     and an informer refuses a second index of the same name;
//   - removes the event handlers its controllers added when the term ends,
//     so an ended term's handlers neither run nor stay in memory.
type sharedCache struct {
	base   cache.Cache
	scheme *runtime.Scheme

	mu      sync.Mutex
	indexed map[string]bool // gvk + field
}

func newSharedCache(base cache.Cache, scheme *runtime.Scheme) *sharedCache {
	return &sharedCache{base: base, scheme: scheme, indexed: map[string]bool{}}
}

// term returns the cache of one term.
func (s *sharedCache) term() *termCache { return &termCache{Cache: s.base, shared: s} }

// termCache is one term's view of the shared cache.
type termCache struct {
	cache.Cache
	shared *sharedCache

	mu       sync.Mutex
	handlers []registration
	released bool
}

type registration struct {
	informer cache.Informer
	handle   toolscache.ResourceEventHandlerRegistration
}

// Start does not start the shared cache, which runs already; it returns
// when the term ends.
func (c *termCache) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// IndexField adds the index unless an earlier term did.
func (c *termCache) IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	gvk, err := apiutil.GVKForObject(obj, c.shared.scheme)
	if err != nil {
		return err
	}
	key := gvk.String() + "/" + field
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	if c.shared.indexed[key] {
		return nil
	}
	if err := c.Cache.IndexField(ctx, obj, field, extract); err != nil {
		return err
	}
	c.shared.indexed[key] = true
	return nil
}

func (c *termCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	inf, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: inf, term: c}, nil
}

func (c *termCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	inf, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: inf, term: c}, nil
}

// RemoveInformer is refused: the informer is the receiver's too.
func (c *termCache) RemoveInformer(context.Context, client.Object) error {
	return fmt.Errorf("a leader term cannot remove an informer of the shared cache")
}

func (c *termCache) add(inf cache.Informer, h toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err != nil {
		return h, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released { // the term ended while its controllers started
		_ = inf.RemoveEventHandler(h)
		return h, fmt.Errorf("the leader term has ended")
	}
	c.handlers = append(c.handlers, registration{inf, h})
	return h, nil
}

// release removes every event handler the term added; later additions
// are refused.
func (c *termCache) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	var first error
	for _, r := range c.handlers {
		if err := r.informer.RemoveEventHandler(r.handle); err != nil && first == nil {
			first = err
		}
	}
	c.handlers = nil
	return first
}

// termInformer records the handlers a term adds.
type termInformer struct {
	cache.Informer
	term *termCache
}

func (i *termInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandler(h)
	return i.term.add(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	return i.term.add(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, o toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithOptions(h, o)
	return i.term.add(i.Informer, r, err)
}
