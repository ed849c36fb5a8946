// Package payload reads what the receiver needs from a meetergo delivery:
// the event type, the ids that identify it, and the few fields a Kubernetes
// Event may show. It never keeps or returns personal data: names, e-mail
// addresses, phone numbers and the appointment secret are not even decoded.
package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
)

// Errors of Parse; both mean the request is malformed (400).
var (
	ErrNotJSON = errors.New("body is not a JSON object")
	ErrNoType  = errors.New("body names no event type (webhookType, or event in the older shape)")
)

// Event is what the receiver reads from a payload. Every field is an
// identifier or a timestamp, never personal data.
type Event struct {
	// Type is the event type: webhookType, or event in the older
	// {"event", "data"} shape.
	Type string
	// Legacy is true for the older shape.
	Legacy bool
	// ID is the payload's id (for booking events, the appointment's).
	ID string
	// CompanyID is the company the event belongs to, if the payload says.
	CompanyID string
	// UpdatedAt is the payload's updatedAt, if any.
	UpdatedAt string
	// Start is a booking's start time as sent.
	Start string
	// MeetingTypeID is a booking's meeting type id.
	MeetingTypeID string
	// FormID is a form submission's form id.
	FormID string
}

// fields are the decoded members of an event object; anything else in the
// payload is skipped by the decoder without being kept.
type fields struct {
	ID            scalar `json:"id"`
	CompanyID     scalar `json:"companyId"`
	UpdatedAt     scalar `json:"updatedAt"`
	Start         scalar `json:"start"`
	MeetingTypeID scalar `json:"meetingTypeId"`
	FormID        scalar `json:"formId"`
}

// wire is both shapes at once: the flat production shape (webhookType next
// to the fields) and the older {"event": type, "data": {fields}}.
type wire struct {
	WebhookType scalar  `json:"webhookType"`
	EventName   scalar  `json:"event"`
	Data        *fields `json:"data"`
	fields
}

// Parse reads a delivery body. It fails only when the body is not a JSON
// object or names no event type; unexpected field types are ignored.
func Parse(body []byte) (Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Event{}, ErrNotJSON
	}
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Event{}, ErrNotJSON
	}
	f, ev := w.fields, Event{Type: string(w.WebhookType)}
	if ev.Type == "" && w.EventName != "" {
		ev.Type, ev.Legacy = string(w.EventName), true
		if w.Data != nil {
			f = *w.Data
		}
	}
	if ev.Type == "" {
		return Event{}, ErrNoType
	}
	ev.ID, ev.CompanyID, ev.UpdatedAt = string(f.ID), string(f.CompanyID), string(f.UpdatedAt)
	ev.Start, ev.MeetingTypeID, ev.FormID = string(f.Start), string(f.MeetingTypeID), string(f.FormID)
	return ev, nil
}

// DedupKey identifies the event for duplicate detection: a digest of its
// type, id and updatedAt when it has both, else of the whole body. meetergo
// sends no delivery id, so this is the only way to recognise a repeat.
// The fields are joined with NUL, so a field holding a NUL (JSON \u0000)
// could make two different events one key: such an event is keyed by its
// body instead (FuzzDedupKey).
func (e Event) DedupKey(body []byte) [sha256.Size]byte {
	if e.ID == "" || e.UpdatedAt == "" || strings.ContainsRune(e.Type+e.ID+e.UpdatedAt, 0) {
		h := sha256.New()
		h.Write([]byte("body\x00"))
		h.Write(body)
		return [sha256.Size]byte(h.Sum(nil))
	}
	return sha256.Sum256([]byte("event\x00" + e.Type + "\x00" + e.ID + "\x00" + e.UpdatedAt))
}

// scalar decodes a JSON string, number or boolean as text, and null, objects
// and arrays as "" without failing: a payload whose id is a number, or whose
// undocumented fields differ from the guess, still parses.
type scalar string

// UnmarshalJSON implements json.Unmarshaler.
func (s *scalar) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = scalar(v)
	case b[0] == '{' || b[0] == '[' || string(b) == "null":
		*s = ""
	default: // a number or boolean, already validated by the decoder
		*s = scalar(strings.Clone(string(b)))
	}
	return nil
}
