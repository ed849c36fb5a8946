package fake

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AcceptedEventTypes are the event types a subscription may name: the five
// documented ones and four the API accepts without documented payloads.
var AcceptedEventTypes = []string{
	"booking_created", "booking_cancelled", "booking_rescheduled", "new_employee", "form_submission",
	"credential_error", "review_submitted", "review_published", "signature_completed",
}

// Where a webhook was made: through the API, or outside it (the dashboard,
// another tool; the admin API and seeds make these).
const (
	sourceAPI       = "api"
	sourceDashboard = "dashboard"
)

// Webhook is a registration as the server stores it.
type Webhook struct {
	ID          int64     `json:"id"`
	Endpoint    string    `json:"endpoint"`
	Description string    `json:"description"`
	EventTypes  []string  `json:"eventTypes"`
	CompanyID   string    `json:"companyId"`
	CreatedAt   time.Time `json:"createdAt"`
	// Source is "api" or "dashboard"; it is never sent on the API routes.
	Source string `json:"source"`
	// DisabledBy, if set, marks the webhook disabled by meetergo and names
	// the field the API shows it with (one of DisabledFields). A disabled
	// webhook gets no deliveries; it still counts against the limit.
	DisabledBy string `json:"disabledBy,omitempty"`
	// DisabledAt is when it was disabled.
	DisabledAt time.Time `json:"disabledAt,omitzero"`
}

// The fields a disabled webhook can be shown with on the API routes:
// "active": false, "enabled": false, "isActive": false, or "disabledAt":
// the time. meetergo documents none of them.
const (
	DisabledByActive     = "active"
	DisabledByEnabled    = "enabled"
	DisabledByIsActive   = "isActive"
	DisabledByDisabledAt = "disabledAt"
)

// DisabledFields lists the values Webhook.DisabledBy may take.
var DisabledFields = []string{DisabledByActive, DisabledByEnabled, DisabledByIsActive, DisabledByDisabledAt}

// subscribes reports whether w gets events of type eventType.
func (w Webhook) subscribes(eventType string) bool { return slices.Contains(w.EventTypes, eventType) }

// WebhookSpec is a whole webhook, as given to AddExternalWebhook.
type WebhookSpec struct {
	Endpoint    string   `json:"endpoint"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"eventTypes"`
}

func (s WebhookSpec) change() WebhookChange {
	c := WebhookChange{Endpoint: &s.Endpoint, EventTypes: s.EventTypes}
	if s.EventTypes == nil {
		c.EventTypes = []string{}
	}
	if s.Description != "" {
		c.Description = &s.Description
	}
	return c
}

// WebhookChange is a partial webhook: nil fields are left alone. It is the
// body of PATCH /webhooks/{id} and of the admin edit.
type WebhookChange struct {
	Endpoint    *string  `json:"endpoint,omitempty"`
	Description *string  `json:"description,omitempty"`
	EventTypes  []string `json:"eventTypes,omitempty"`
}

// problems lists what is wrong with c, in class-validator's words. A
// create needs endpoint and eventTypes.
func (c WebhookChange) problems(create bool) []fieldError {
	var out []fieldError
	switch {
	case c.Endpoint == nil && create:
		out = append(out, fieldError{"endpoint", "endpoint should not be empty"}, fieldError{"endpoint", "endpoint must be a URL address"})
	case c.Endpoint != nil && !isURL(*c.Endpoint):
		out = append(out, fieldError{"endpoint", "endpoint must be a URL address"})
	}
	if (c.EventTypes == nil && create) || (c.EventTypes != nil && len(c.EventTypes) == 0) {
		out = append(out, fieldError{"eventTypes", "eventTypes should not be empty"})
	}
	for _, t := range c.EventTypes {
		if !slices.Contains(AcceptedEventTypes, t) {
			out = append(out, fieldError{"eventTypes", "each value in eventTypes must be one of the following values: " + strings.Join(AcceptedEventTypes, ", ")})
			break
		}
	}
	return out
}

// isURL accepts absolute http and https URLs; production's stance on http://
// and private addresses is unknown.
func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// apply copies the non-nil fields of c into w, the description cut at
// maxDescription runes if that is positive.
func (c WebhookChange) apply(w *Webhook, maxDescription int) {
	if c.Endpoint != nil {
		w.Endpoint = *c.Endpoint
	}
	if c.Description != nil {
		w.Description = cutRunes(*c.Description, maxDescription)
	}
	if c.EventTypes != nil {
		w.EventTypes = slices.Clone(c.EventTypes)
	}
}

// createWebhook validates c and adds a webhook to the company, within the
// limit. s.mu must be held.
func (s *Server) createWebhook(companyID string, c WebhookChange, source string) (Webhook, error) {
	if _, ok := s.companies[companyID]; !ok {
		return Webhook{}, newError(http.StatusNotFound, "Company not found")
	}
	if p := c.problems(true); len(p) > 0 {
		return Webhook{}, validationError(p)
	}
	if len(s.companyWebhooks(companyID)) >= s.settings.WebhookLimit {
		return Webhook{}, limitError(s.settings.WebhookLimit)
	}
	w := Webhook{ID: s.nextID, CompanyID: companyID, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Source: source}
	c.apply(&w, s.settings.DescriptionMaxLength)
	s.nextID++
	s.webhooks[w.ID] = w
	return w, nil
}

// updateWebhook changes webhook id of companyID ("" for any company).
// s.mu must be held.
func (s *Server) updateWebhook(companyID string, id int64, c WebhookChange) (Webhook, error) {
	if p := c.problems(false); len(p) > 0 {
		return Webhook{}, validationError(p) // validation comes first in NestJS
	}
	w, ok := s.webhooks[id]
	if !ok || (companyID != "" && w.CompanyID != companyID) {
		return Webhook{}, webhookNotFound()
	}
	c.apply(&w, s.settings.DescriptionMaxLength)
	s.webhooks[id] = w
	return w, nil
}

// cutRunes returns s cut at n runes; n <= 0 means no limit.
func cutRunes(s string, n int) string {
	if n <= 0 {
		return s
	}
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// DisableWebhook marks webhook id disabled, as meetergo might after
// failed deliveries: the API shows it with field (one of DisabledFields;
// "" means "active") and deliveries to it stop. Updates through the API
// leave it disabled.
func (s *Server) DisableWebhook(id int64, field string) (Webhook, error) {
	if field == "" {
		field = DisabledByActive
	}
	if !slices.Contains(DisabledFields, field) {
		return Webhook{}, newError(http.StatusBadRequest, "field must be one of "+strings.Join(DisabledFields, ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[id]
	if !ok {
		return Webhook{}, webhookNotFound()
	}
	w.DisabledBy, w.DisabledAt = field, time.Now().UTC().Truncate(time.Millisecond)
	s.webhooks[id] = w
	return w, nil
}

// EnableWebhook undoes DisableWebhook.
func (s *Server) EnableWebhook(id int64) (Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[id]
	if !ok {
		return Webhook{}, webhookNotFound()
	}
	w.DisabledBy, w.DisabledAt = "", time.Time{}
	s.webhooks[id] = w
	return w, nil
}

// deleteWebhook removes webhook id of companyID ("" for any company).
// s.mu must be held.
func (s *Server) deleteWebhook(companyID string, id int64) error {
	w, ok := s.webhooks[id]
	if !ok || (companyID != "" && w.CompanyID != companyID) {
		return webhookNotFound()
	}
	delete(s.webhooks, id)
	return nil
}

// companyWebhooks returns the webhooks of companyID ("" for all), by id.
// s.mu must be held.
func (s *Server) companyWebhooks(companyID string) []Webhook {
	var out []Webhook
	for _, w := range s.webhooks {
		if companyID == "" || w.CompanyID == companyID {
			w.EventTypes = slices.Clone(w.EventTypes)
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b Webhook) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Webhooks returns the webhooks of a company, or of every company if
// companyID is empty, ordered by id.
func (s *Server) Webhooks(companyID string) []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.companyWebhooks(companyID)
}

// AddExternalWebhook creates a webhook as if made in meetergo's dashboard,
// not through the API: validation and the limit apply.
func (s *Server) AddExternalWebhook(companyID string, spec WebhookSpec) (Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createWebhook(companyID, spec.change(), sourceDashboard)
}

// EditWebhook changes a webhook as if edited in the dashboard.
func (s *Server) EditWebhook(id int64, c WebhookChange) (Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateWebhook("", id, c)
}

// DeleteWebhook deletes a webhook as if deleted in the dashboard.
func (s *Server) DeleteWebhook(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteWebhook("", id)
}
