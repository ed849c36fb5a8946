// Package payload reads what the receiver needs from a meetergo delivery:
// the event type, the ids that identify it, and the few fields a Kubernetes
// Event may show. It never keeps or returns personal data: names, e-mail
// addresses, phone numbers and the appointment secret are not even decoded.
package payload

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
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
	// ID is the payload's id (for booking events, the appointment's), or
	// its appointmentId when it has no id (a shape seen in a client's test
	// fixture).
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

// Parse reads a delivery body in one pass: a validating tokenizer
// (jsontext, the syntax layer of Go's encoding/json/v2) walks the object's
// members, reads the few it wants and skips the rest without decoding them.
// encoding/json's Unmarshal scans a body twice (it validates all of it
// first) and cost most of the receiver's CPU per event; see
// docs/benchmarks.md.
//
// It fails only when the body is not a single JSON object or names no
// event type. Fields of an unexpected type are ignored. Member names match
// exactly; when a name repeats, the last one counts.
func Parse(body []byte) (Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Event{}, ErrNotJSON
	}
	d := decoders.Get().(*jsontext.Decoder)
	defer decoders.Put(d)
	d.Reset(bytes.NewBuffer(body), decodeOptions...)
	var top, data fields
	var webhookType, eventName string
	var hasData bool
	err := readObject(d, func(name []byte) error {
		switch string(name) {
		case "webhookType":
			return readScalar(d, &webhookType)
		case "event":
			return readScalar(d, &eventName)
		case "data":
			if d.PeekKind() != '{' {
				hasData = false
				data = fields{}
				return d.SkipValue()
			}
			hasData, data = true, fields{}
			return readObject(d, func(name []byte) error { return data.read(d, name) })
		}
		return top.read(d, name)
	})
	if err != nil {
		return Event{}, ErrNotJSON
	}
	// Nothing but white space may follow the object.
	if _, err := d.ReadToken(); err != io.EOF {
		return Event{}, ErrNotJSON
	}
	f, ev := top, Event{Type: webhookType}
	if ev.Type == "" && eventName != "" {
		ev.Type, ev.Legacy = eventName, true
		if hasData {
			f = data
		}
	}
	if ev.Type == "" {
		return Event{}, ErrNoType
	}
	ev.ID, ev.CompanyID, ev.UpdatedAt = f.id, f.companyID, f.updatedAt
	if ev.ID == "" {
		ev.ID = f.appointmentID
	}
	ev.Start, ev.MeetingTypeID, ev.FormID = f.start, f.meetingTypeID, f.formID
	return ev, nil
}

// decodeOptions match encoding/json's leniency: a body with a repeated
// member name or invalid UTF-8 inside a string is still a delivery (the
// bytes are forwarded as received); only its syntax must be JSON.
var decodeOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
}

var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(bytes.NewReader(nil)) }}

// fields are the members of an event object the receiver keeps.
type fields struct {
	id, appointmentID, companyID, updatedAt, start, meetingTypeID, formID string
}

// read reads the value of member name into f, or skips it.
func (f *fields) read(d *jsontext.Decoder, name []byte) error {
	var dst *string
	switch string(name) {
	case "id":
		dst = &f.id
	case "appointmentId":
		dst = &f.appointmentID
	case "companyId":
		dst = &f.companyID
	case "updatedAt":
		dst = &f.updatedAt
	case "start":
		dst = &f.start
	case "meetingTypeId":
		dst = &f.meetingTypeID
	case "formId":
		dst = &f.formID
	default:
		return d.SkipValue()
	}
	return readScalar(d, dst)
}

// readObject reads an object whose '{' is next, calling member for each
// member name; member must read or skip the value.
func readObject(d *jsontext.Decoder, member func(name []byte) error) error {
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return ErrNotJSON
	}
	var buf [64]byte
	for d.PeekKind() != '}' { // 0 on a syntax error: ReadValue reports it
		name, err := d.ReadValue()
		if err != nil {
			return err
		}
		// The decoder validated the name; the only error left is invalid
		// UTF-8, replaced by U+FFFD like encoding/json does.
		unquoted, _ := jsontext.AppendUnquote(buf[:0], name)
		if err := member(unquoted); err != nil {
			return err
		}
	}
	_, err := d.ReadToken()
	return err
}

// readScalar reads a string, number or boolean as text; null, objects and
// arrays give "" without failing, so a payload whose id is a number, or
// whose undocumented fields differ from the guess, still parses.
func readScalar(d *jsontext.Decoder, dst *string) error {
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case '"':
		s, _ := jsontext.AppendUnquote(nil, v) // invalid UTF-8 becomes U+FFFD
		*dst = string(s)
	case '0', 't', 'f':
		*dst = string(v)
	default:
		*dst = ""
	}
	return nil
}

// DedupKey identifies the event for duplicate detection: a digest of its
// type, id (or appointmentId, see ID) and updatedAt when it has both, else
// of the whole body. The same appointment version sent once with id and
// once with appointmentId is one event. meetergo
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
