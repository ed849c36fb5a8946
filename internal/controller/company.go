package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// companies serialises the decisions about each meetergo company's webhook
// slots and caches what meetergo said, so that two reconciles can never both
// take the last slot and a thousand resources do not list a thousand times.
type companies struct {
	mu         sync.Mutex
	byID       map[string]*company
	identities map[string]meetergo.Identity // by credential fingerprint
}

func newCompanies() *companies {
	return &companies{byID: map[string]*company{}, identities: map[string]meetergo.Identity{}}
}

// company is one company's registrations as last listed, plus what this
// process changed since. Hold mu while deciding.
type company struct {
	mu       sync.Mutex
	webhooks []meetergo.Webhook
	listedAt time.Time // zero: must list
}

func (c *companies) get(id string) *company {
	c.mu.Lock()
	defer c.mu.Unlock()
	co, ok := c.byID[id]
	if !ok {
		co = &company{}
		c.byID[id] = co
	}
	return co
}

// identity learns a credential's company once and remembers it.
func (c *companies) identity(ctx context.Context, api meetergo.Client, cred meetergo.Credential) (meetergo.Identity, error) {
	fp := cred.Fingerprint()
	c.mu.Lock()
	id, ok := c.identities[fp]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := api.WhoAmI(ctx, cred)
	if err != nil {
		return id, err
	}
	c.mu.Lock()
	c.identities[fp] = id
	c.mu.Unlock()
	return id, nil
}

// forget drops a credential meetergo refused, so a fixed one is asked anew.
func (c *companies) forget(cred meetergo.Credential) {
	c.mu.Lock()
	delete(c.identities, cred.Fingerprint())
	c.mu.Unlock()
}

// list returns the company's registrations, listing at meetergo when what is
// cached is older than maxAge. The caller holds co.mu.
func (co *company) list(ctx context.Context, api meetergo.Client, cred meetergo.Credential, maxAge time.Duration) ([]meetergo.Webhook, error) {
	if !co.listedAt.IsZero() && time.Since(co.listedAt) <= maxAge {
		return co.webhooks, nil
	}
	hooks, err := api.ListWebhooks(ctx, cred)
	if err != nil {
		return nil, err
	}
	co.webhooks, co.listedAt = hooks, time.Now()
	return hooks, nil
}

// fresh reports whether the cache was listed within maxAge.
func (co *company) fresh(maxAge time.Duration) bool {
	return !co.listedAt.IsZero() && time.Since(co.listedAt) <= maxAge
}

// invalidate makes the next decision list again: after an ambiguous call or
// a refusal that contradicts the cache.
func (co *company) invalidate() { co.listedAt = time.Time{} }

// put records a registration this process created or updated.
func (co *company) put(w meetergo.Webhook) {
	for i := range co.webhooks {
		if co.webhooks[i].ID == w.ID {
			co.webhooks[i] = w
			return
		}
	}
	co.webhooks = append(co.webhooks, w)
}

// remove records a registration this process deleted.
func (co *company) remove(id string) {
	co.webhooks = slices.DeleteFunc(slices.Clone(co.webhooks), func(w meetergo.Webhook) bool { return w.ID == id })
}
