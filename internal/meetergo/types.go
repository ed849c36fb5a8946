package meetergo

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// Identity is who a credential acts as, from GET /v4/user/me. It
// deliberately carries no e-mail address or name: the operator needs the
// company (the six-webhook limit is per company), not personal data.
type Identity struct {
	UserID    string
	CompanyID string
	IsAdmin   bool
}

// Webhook is a registration at meetergo. ID is kept as a string although
// production sends a JSON number.
type Webhook struct {
	ID          string
	Endpoint    string
	Description string
	EventTypes  []string
	CompanyID   string
	// CreatedAt is zero if meetergo did not send a readable time.
	CreatedAt time.Time
}

// WebhookInput is what CreateWebhook and UpdateWebhook send. A create sends
// Endpoint and EventTypes (both required) and Description unless it is
// empty. An update sends only the non-zero fields, so a description cannot
// be cleared through it, and an empty EventTypes is never sent.
type WebhookInput struct {
	Endpoint    string
	Description string
	EventTypes  []string
}

// webhookBody is WebhookInput on the wire; omitempty gives both the create
// and the update shape.
type webhookBody struct {
	Endpoint    string   `json:"endpoint,omitempty"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"eventTypes,omitempty"`
}

// flexString decodes a JSON string, number or null into a string, so an id
// sent as 1492 or "1492" reads the same.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*s = flexString(n.String())
	return nil
}

// flexTime decodes an RFC 3339 string; anything else (null, a number, an
// unreadable string) becomes the zero time rather than an error, since no
// decision depends on it.
type flexTime time.Time

// UnmarshalJSON implements json.Unmarshaler.
func (t *flexTime) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			*t = flexTime(v)
		}
	}
	return nil
}

// webhookJSON is the webhook object as meetergo sends it; unknown fields
// are ignored.
type webhookJSON struct {
	ID          flexString `json:"id"`
	Endpoint    string     `json:"endpoint"`
	Description *string    `json:"description"`
	EventTypes  []string   `json:"eventTypes"`
	CompanyID   flexString `json:"companyId"`
	CreatedAt   flexTime   `json:"createdAt"`
}

func (w webhookJSON) webhook() Webhook {
	out := Webhook{
		ID:         string(w.ID),
		Endpoint:   w.Endpoint,
		EventTypes: w.EventTypes,
		CompanyID:  string(w.CompanyID),
		CreatedAt:  time.Time(w.CreatedAt),
	}
	if w.Description != nil {
		out.Description = *w.Description
	}
	return out
}

// identityJSON is the part of GET /v4/user/me the client reads.
type identityJSON struct {
	ID        flexString `json:"id"`
	CompanyID flexString `json:"companyId"`
	IsAdmin   bool       `json:"isAdmin"`
}

// errorJSON is a NestJS error body. message may be a string or an array.
type errorJSON struct {
	Message json.RawMessage `json:"message"`
	Errors  []FieldError    `json:"errors"`
	Code    string          `json:"code"`
	Feature string          `json:"feature"`
}

// messages returns message as a list, whichever shape it had.
func (e errorJSON) messages() []string {
	var one string
	if json.Unmarshal(e.Message, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(e.Message, &many)
	return many
}
