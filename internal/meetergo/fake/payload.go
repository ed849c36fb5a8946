package fake

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PayloadOptions shape a payload.
type PayloadOptions struct {
	// CompanyID is the payload's companyId; SeedCompanyID if empty.
	CompanyID string `json:"companyId,omitempty"`
	// AppointmentID is the payload's id (for booking events, the
	// appointment's). Empty means a fresh uuid; reuse one to send, e.g., the
	// cancellation of a booking sent before. The appointment's secret is
	// derived from it.
	AppointmentID string `json:"appointmentId,omitempty"`
	// PadBytes makes the encoded payload at least this long by adding a
	// "padding" entry to its metadata (about 100 KB is meetergo's maximum).
	PadBytes int `json:"padBytes,omitempty"`
	// LegacyShape wraps the payload in the older documented shape
	// {"event": type, "data": {...}} instead of the flat production shape.
	LegacyShape bool `json:"legacyShape,omitempty"`
	// IDField names the payload's top-level id: "" or "id" (production),
	// or "appointmentId" (seen in a client's test fixture), whatever the
	// event type. Nested ids (attendees, hosts, ...) keep their names.
	IDField string `json:"idField,omitempty"`
}

// The values of PayloadOptions.IDField.
const (
	IDFieldID            = "id"
	IDFieldAppointmentID = "appointmentId"
)

// Payload returns a realistic body meetergo would POST for eventType, in
// the flat shape ("webhookType" beside the event's fields). The personal
// data in it is from the fake cast: see PersonalData.
func Payload(eventType string, opts PayloadOptions) ([]byte, error) {
	if !slices.Contains(AcceptedEventTypes, eventType) {
		return nil, fmt.Errorf("fake: unknown event type %q", eventType)
	}
	if opts.CompanyID == "" {
		opts.CompanyID = SeedCompanyID
	}
	if opts.AppointmentID == "" {
		opts.AppointmentID = newUUID()
	}
	if err := checkIDField(opts.IDField); err != nil {
		return nil, err
	}
	e := event{typ: eventType, id: opts.AppointmentID, companyID: opts.CompanyID, now: time.Now()}
	body, err := json.Marshal(e.payload(nil))
	if err == nil && opts.PadBytes > len(body) {
		// "padding":"…" adds 12 bytes of JSON around the filler.
		filler := strings.Repeat("x", max(opts.PadBytes-len(body)-12, 1))
		body, err = json.Marshal(e.payload(map[string]string{"padding": filler}))
	}
	if err != nil || (!opts.LegacyShape && opts.IDField != IDFieldAppointmentID) {
		return body, err
	}
	var flat map[string]json.RawMessage
	if err := json.Unmarshal(body, &flat); err != nil {
		return nil, err
	}
	if opts.IDField == IDFieldAppointmentID {
		flat[IDFieldAppointmentID] = flat["id"]
		delete(flat, "id")
	}
	if !opts.LegacyShape {
		return json.Marshal(flat)
	}
	delete(flat, "webhookType")
	return json.Marshal(map[string]any{"event": eventType, "data": flat})
}

// checkIDField accepts the values of PayloadOptions.IDField.
func checkIDField(f string) error {
	if f != "" && f != IDFieldID && f != IDFieldAppointmentID {
		return fmt.Errorf("fake: idField must be %q or %q, got %q", IDFieldID, IDFieldAppointmentID, f)
	}
	return nil
}

// AppointmentSecret is the secret the fake puts in booking payloads of the
// appointment: SecretPrefix and a digest of the id.
func AppointmentSecret(appointmentID string) string {
	return SecretPrefix + digest("secret", appointmentID)
}

// digest is a stable 24-hex-digit value derived from purpose and id.
func digest(purpose, id string) string {
	sum := sha256.Sum256([]byte(purpose + "\x00" + id))
	return hex.EncodeToString(sum[:12])
}

// event is one payload to build.
type event struct {
	typ, id, companyID string
	now                time.Time
}

// payloadZone is the offset booking times are written in.
var payloadZone = time.FixedZone("CET", 3600)

const (
	offsetTime = "2006-01-02T15:04:05-07:00"
	utcTime    = "2006-01-02T15:04:05.000Z"
)

func (e event) payload(metadata map[string]string) any {
	if metadata == nil {
		metadata = map[string]string{}
	}
	switch e.typ {
	case "booking_created", "booking_cancelled", "booking_rescheduled":
		return e.booking(metadata)
	case "new_employee":
		return e.newEmployee(metadata)
	case "form_submission":
		return e.formSubmission(metadata)
	}
	return genericPayload{WebhookType: e.typ, ID: e.id, CompanyID: e.companyID,
		CreatedAt: e.now.UTC().Format(utcTime), Metadata: metadata}
}

// attendee picks the cast member who booked, the same one for every event
// of an appointment.
func (e event) attendee() person {
	return attendees[int(digest("attendee", e.id)[0])%len(attendees)]
}

// genericPayload is the fake's guess for the event types whose payloads
// meetergo does not document.
type genericPayload struct {
	WebhookType string            `json:"webhookType"`
	ID          string            `json:"id"`
	CompanyID   string            `json:"companyId"`
	CreatedAt   string            `json:"createdAt"`
	Metadata    map[string]string `json:"metadata"`
}

// newUUID returns a random (version 4) uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
