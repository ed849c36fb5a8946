package payload

import (
	"strings"
	"time"
)

// Reason is the Kubernetes Event reason for an event type:
// booking_created -> BookingCreated.
func Reason(eventType string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(eventType, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}

// Note is the Kubernetes Event note for the event: its type and
// identifiers, e.g. "booking_created: appointment 6f1c…, start
// 2030-01-02T09:00:00+01:00, meeting type d000…". It holds no personal data:
// only ids and a timestamp are read from the payload, each shown only if it
// looks like one (so a name sent in an id field is not shown either).
func (e Event) Note() string {
	var b strings.Builder
	b.WriteString(e.Type)
	b.WriteString(":")
	sep := " "
	add := func(label, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(label)
		b.WriteString(" ")
		b.WriteString(value)
		sep = ", "
	}
	switch {
	case strings.HasPrefix(e.Type, "booking_"):
		add("appointment", identifier(e.ID))
		add("start", timestamp(e.Start))
		add("meeting type", identifier(e.MeetingTypeID))
	case e.Type == "form_submission":
		add("submission", identifier(e.ID))
		add("form", identifier(e.FormID))
	case e.Type == "new_employee":
		add("user", identifier(e.ID))
	default:
		add("id", identifier(e.ID))
	}
	if sep == " " {
		b.WriteString(" no identifiers")
	}
	return b.String()
}

// maxIdentifier bounds an identifier shown in a note.
const maxIdentifier = 64

// identifier returns s if it looks like an id (letters, digits and
// "-_.:", at most 64 characters, no "@" or spaces, and at least one digit),
// else "". The digit rule keeps a lone given or family name sent in an id
// field out of the note: meetergo's ids are UUIDs (a version 4 UUID always
// holds the digit 4) or numbers.
func identifier(s string) string {
	if s == "" || len(s) > maxIdentifier {
		return ""
	}
	digit := false
	for _, r := range s {
		isDigit := r >= '0' && r <= '9'
		ok := isDigit || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("-_.:", r)
		if !ok {
			return ""
		}
		digit = digit || isDigit
	}
	if !digit {
		return ""
	}
	return s
}

// timestamp returns s if it is an RFC 3339 time, else "".
func timestamp(s string) string {
	if len(s) > maxIdentifier {
		return ""
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		return ""
	}
	return s
}
