package fake_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// keysOf returns the sorted keys of an object.
func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

var (
	bookingKeys = []string{"webhookType", "id", "secret", "start", "end", "location", "isCancelled", "rescheduledAt", "meetingInfo",
		"attendees", "hosts", "hostIds", "meetingType", "meetingTypeId", "companyId", "createdAt", "updatedAt"}
	attendeeKeys = sorted("id", "email", "firstname", "lastname", "fullname", "phone", "timezone", "language")
	hostKeys     = sorted("id", "email", "givenName", "familyName", "fullName", "slug", "picture")
)

func TestBookingPayloads(t *testing.T) {
	for _, tc := range []struct {
		eventType string
		extra     []string
		check     func(t *testing.T, p map[string]any)
	}{
		{"booking_created", nil, func(t *testing.T, p map[string]any) {
			if p["isCancelled"] != false || p["rescheduledAt"] != nil || p["location"] != nil {
				t.Fatalf("a new booking: %v", p)
			}
		}},
		{"booking_cancelled", []string{"cancel"}, func(t *testing.T, p map[string]any) {
			if p["isCancelled"] != true || !slices.Equal(keysOf(p["cancel"]), sorted("actionSource", "actionAt", "actionBy", "reason")) {
				t.Fatalf("a cancellation: %v", p)
			}
		}},
		{"booking_rescheduled", []string{"originalStart"}, func(t *testing.T, p map[string]any) {
			if p["rescheduledAt"] == nil || p["originalStart"] == p["start"] {
				t.Fatalf("a reschedule: %v", p)
			}
		}},
	} {
		t.Run(tc.eventType, func(t *testing.T) {
			body, err := fake.Payload(tc.eventType, fake.PayloadOptions{CompanyID: "company-x", AppointmentID: "appt-1"})
			if err != nil {
				t.Fatal(err)
			}
			p := decode(t, body)
			if want := sorted(append(slices.Clone(bookingKeys), tc.extra...)...); !slices.Equal(keysOf(p), want) {
				t.Fatalf("keys %v, want %v", keysOf(p), want)
			}
			if p["webhookType"] != tc.eventType || p["id"] != "appt-1" || p["companyId"] != "company-x" || p["secret"] != fake.AppointmentSecret("appt-1") {
				t.Fatalf("payload %s", body)
			}
			for _, f := range []string{"start", "end"} {
				if _, err := time.Parse(time.RFC3339, p[f].(string)); err != nil || !strings.HasSuffix(p[f].(string), "+01:00") {
					t.Fatalf("%s %v is ISO 8601 with an offset", f, p[f])
				}
			}
			a := p["attendees"].([]any)[0]
			h := p["hosts"].([]any)[0]
			if !slices.Equal(keysOf(a), attendeeKeys) || !slices.Equal(keysOf(h), hostKeys) {
				t.Fatalf("attendee %v host %v", keysOf(a), keysOf(h))
			}
			mt := p["meetingType"].(map[string]any)
			if !slices.Equal(keysOf(mt), sorted("id", "slug", "meetingInfo", "metadata")) || !slices.Equal(keysOf(mt["meetingInfo"]), sorted("name", "duration")) ||
				!slices.Equal(keysOf(p["meetingInfo"]), sorted("channel", "meetingLink")) || p["meetingTypeId"] != mt["id"] {
				t.Fatalf("meetingType %v", mt)
			}
			tc.check(t, p)
		})
	}
}

func TestOtherPayloads(t *testing.T) {
	for eventType, keys := range map[string][]string{
		"new_employee":     {"webhookType", "id", "email", "givenName", "familyName", "fullName", "slug", "phone", "timezone", "language", "isAdmin", "companyId", "createdAt", "updatedAt", "metadata"},
		"form_submission":  {"webhookType", "id", "formId", "form", "answers", "companyId", "createdAt", "metadata"},
		"review_published": {"webhookType", "id", "companyId", "createdAt", "metadata"},
	} {
		body, err := fake.Payload(eventType, fake.PayloadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := decode(t, body); !slices.Equal(keysOf(p), sorted(keys...)) || p["companyId"] != fake.SeedCompanyID {
			t.Errorf("%s: keys %v", eventType, keysOf(p))
		}
	}
}

func TestLegacyShapeAndPadding(t *testing.T) {
	body, err := fake.Payload("booking_created", fake.PayloadOptions{LegacyShape: true})
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, body)
	if p["event"] != "booking_created" || p["webhookType"] != nil || keysOf(p["data"]) == nil {
		t.Fatalf("legacy shape: %s", body)
	}
	for _, et := range []string{"booking_cancelled", "form_submission", "new_employee"} {
		big, err := fake.Payload(et, fake.PayloadOptions{PadBytes: 100 << 10})
		if err != nil || len(big) < 100<<10 || len(big) > 100<<10+64 || !json.Valid(big) {
			t.Fatalf("%s padded to %d bytes, %v", et, len(big), err)
		}
	}
}

// TestPersonalDataCoversPayloads: every string value in any payload that
// looks personal is listed by PersonalData, so scanning for those finds
// every leak.
func TestPersonalDataCoversPayloads(t *testing.T) {
	known := fake.PersonalData()
	isKnown := func(s string) bool {
		return slices.Contains(known, s) || strings.HasPrefix(s, fake.SecretPrefix)
	}
	for _, et := range fake.AcceptedEventTypes {
		for range 5 { // different appointments pick different attendees
			body, _ := fake.Payload(et, fake.PayloadOptions{})
			var walk func(key string, v any)
			walk = func(key string, v any) {
				switch v := v.(type) {
				case map[string]any:
					for k, x := range v {
						walk(k, x)
					}
				case []any:
					for _, x := range v {
						walk(key, x)
					}
				case string:
					personal := slices.Contains([]string{"email", "firstname", "lastname", "fullname", "phone", "givenName", "familyName", "fullName", "secret", "actionBy"}, key)
					if personal && !isKnown(v) {
						t.Errorf("%s: %s %q is not in PersonalData", et, key, v)
					}
				}
			}
			walk("", decode(t, body))
		}
	}
	if !slices.Contains(known, fake.SecretPrefix) || len(known) < 30 {
		t.Fatalf("PersonalData: %v", known)
	}
}
