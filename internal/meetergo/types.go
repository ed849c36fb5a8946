package meetergo

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
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
	// Disabled reports that meetergo says it switched the registration off
	// (it then delivers nothing to it). meetergo documents no such field;
	// the client reads any of "active": false, "enabled": false,
	// "isActive": false or a non-null "disabledAt". Absent fields mean
	// enabled. DisabledReason names the field that said so: "active",
	// "enabled", "isActive" or "disabledAt" ("" when enabled).
	Disabled       bool
	DisabledReason string
	// DescriptionTruncated is set on the answer of CreateWebhook and
	// UpdateWebhook when meetergo stored a shorter description than the
	// one sent, cut at its end (a server that silently truncates). An
	// ownership marker at the end of the description is then lost.
	DescriptionTruncated bool
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

// flexBool decodes true and false, also written as a string ("false") or
// a number (0, 1). Anything else (null, another value) leaves it unset
// rather than failing the whole answer.
type flexBool struct{ set, value bool }

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		s = string(bytes.TrimSpace(b))
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		*f = flexBool{set: true, value: true}
	case "false", "0":
		*f = flexBool{set: true}
	}
	return nil
}

// isFalse reports a field present and false.
func (f flexBool) isFalse() bool { return f.set && !f.value }

// present records whether a field was sent with a value: not absent, not
// null and not an empty string.
type present bool

// UnmarshalJSON implements json.Unmarshaler.
func (p *present) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*p = present(!bytes.Equal(b, []byte("null")) && !bytes.Equal(b, []byte(`""`)))
	return nil
}

// webhookJSON is the webhook object as meetergo sends it; unknown fields
// are ignored. Active, Enabled, IsActive and DisabledAt are not documented:
// they are read in case meetergo marks disabled registrations.
type webhookJSON struct {
	ID          flexString `json:"id"`
	Endpoint    string     `json:"endpoint"`
	Description *string    `json:"description"`
	EventTypes  []string   `json:"eventTypes"`
	CompanyID   flexString `json:"companyId"`
	CreatedAt   flexTime   `json:"createdAt"`
	Active      flexBool   `json:"active"`
	Enabled     flexBool   `json:"enabled"`
	IsActive    flexBool   `json:"isActive"`
	DisabledAt  present    `json:"disabledAt"`
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
	switch {
	case w.Active.isFalse():
		out.DisabledReason = "active"
	case w.Enabled.isFalse():
		out.DisabledReason = "enabled"
	case w.IsActive.isFalse():
		out.DisabledReason = "isActive"
	case bool(w.DisabledAt):
		out.DisabledReason = "disabledAt"
	}
	out.Disabled = out.DisabledReason != ""
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
