package controller

import (
	"context"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

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
	id       string
	mu       sync.Mutex
	webhooks []meetergo.Webhook
	listedAt time.Time // zero: must list
	// learnedLimit is the company's webhook limit as meetergo showed it by
	// refusing a create (406 or a plan wall) with fewer registrations than
	// --webhook-limit listed; 0 while none was learned. It is forgotten at
	// learnedUntil, so that a raised plan is noticed by one more create.
	learnedLimit int
	learnedUntil time.Time
	// refusedAt is the number of registrations listed after meetergo last
	// refused a create, and when: a second refusal at the same count
	// teaches the limit (one could be a race with the dashboard).
	refusedCount int
	refusedAt    time.Time
	// descLimit is the length at which meetergo was seen to cut a
	// description (0: never seen).
	descLimit int
}

// sawAnswer learns from a create or update answer whether meetergo cuts
// descriptions (the client compares what it sent with what came back).
func (co *company) sawAnswer(got meetergo.Webhook) {
	if got.DescriptionTruncated {
		co.descLimit = utf8.RuneCountInString(got.Description)
	}
}

// limit is the company's webhook limit: the learned one while it holds,
// else the configured one.
func (co *company) limit(configured int) int {
	if co.learnedLimit > 0 && time.Now().Before(co.learnedUntil) && co.learnedLimit < configured {
		return co.learnedLimit
	}
	return configured
}

// learn records that meetergo refused a create with n registrations.
func (co *company) learn(n int, keep time.Duration) {
	co.learnedLimit, co.learnedUntil = n, time.Now().Add(keep)
}

// learned reports the learned limit, 0 if none holds.
func (co *company) learned(configured int) int {
	if l := co.limit(configured); l < configured {
		return l
	}
	return 0
}

func (c *companies) get(id string) *company {
	c.mu.Lock()
	defer c.mu.Unlock()
	co, ok := c.byID[id]
	if !ok {
		co = &company{id: id}
		c.byID[id] = co
	}
	return co
}

// identityKey keys the identity cache. A platform key acts for the user
// named beside it, and one key may act for users of several companies: the
// user is part of the key.
func identityKey(cred meetergo.Credential) string {
	return cred.Fingerprint() + "/" + cred.UserID
}

// identity learns a credential's company once and remembers it.
func (c *companies) identity(ctx context.Context, api meetergo.Client, cred meetergo.Credential) (meetergo.Identity, error) {
	fp := identityKey(cred)
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
	delete(c.identities, identityKey(cred))
	c.mu.Unlock()
}

// list returns the company's registrations, listing at meetergo when what is
// cached is older than maxAge (0: always). listed says whether meetergo was
// asked. The caller holds co.mu.
func (co *company) list(ctx context.Context, api meetergo.Client, cred meetergo.Credential, maxAge time.Duration) (hooks []meetergo.Webhook, listed bool, err error) {
	if maxAge > 0 && !co.listedAt.IsZero() && time.Since(co.listedAt) <= maxAge {
		return co.webhooks, false, nil
	}
	hooks, err = api.ListWebhooks(ctx, cred)
	if err != nil {
		return nil, false, err
	}
	co.webhooks, co.listedAt = hooks, time.Now()
	return hooks, true, nil
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

// refusal records that meetergo refused a create with n registrations
// listed, and reports whether the refusal before it saw the same count
// within window: only then is n the company's limit.
func (co *company) refusal(n int, window time.Duration) bool {
	again := co.refusedCount == n && !co.refusedAt.IsZero() && time.Since(co.refusedAt) <= window
	co.refusedCount, co.refusedAt = n, time.Now()
	return again
}
