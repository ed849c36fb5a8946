package payload

import (
	"errors"
	"strings"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		body string
		want Event
		err  error
	}{
		{"flat", `{"webhookType":"booking_created","id":"a1","companyId":"c1","updatedAt":"u1","start":"2030-01-02T09:00:00+01:00","meetingTypeId":"m1"}`,
			Event{Type: "booking_created", ID: "a1", CompanyID: "c1", UpdatedAt: "u1", Start: "2030-01-02T09:00:00+01:00", MeetingTypeID: "m1"}, nil},
		{"legacy", `{"event":"form_submission","data":{"id":"s1","formId":"f1","companyId":"c1"}}`,
			Event{Type: "form_submission", Legacy: true, ID: "s1", FormID: "f1", CompanyID: "c1"}, nil},
		{"legacy, data not an object", `{"event":"form_submission","data":"x","id":"a"}`, Event{Type: "form_submission", Legacy: true, ID: "a"}, nil},
		{"repeated name: the last counts", `{"webhookType":"x","id":"1","id":"2","webhookType":"booking_created"}`, Event{Type: "booking_created", ID: "2"}, nil},
		{"legacy without data", `{"event":"new_employee"}`, Event{Type: "new_employee", Legacy: true}, nil},
		{"webhookType wins over event", `{"webhookType":"booking_created","event":"x","id":"a"}`, Event{Type: "booking_created", ID: "a"}, nil},
		{"numeric id", `{"webhookType":"review_submitted","id":1492}`, Event{Type: "review_submitted", ID: "1492"}, nil},
		{"odd field types ignored", `{"webhookType":"booking_created","id":{"x":1},"start":[1],"companyId":null}`, Event{Type: "booking_created"}, nil},
		{"leading space", " \n{\"webhookType\":\"booking_created\"}", Event{Type: "booking_created"}, nil},
		{"empty", ``, Event{}, ErrNotJSON},
		{"array", `[{"webhookType":"booking_created"}]`, Event{}, ErrNotJSON},
		{"string", `"booking_created"`, Event{}, ErrNotJSON},
		{"truncated", `{"webhookType":"booking_created"`, Event{}, ErrNotJSON},
		{"trailing garbage", `{"webhookType":"booking_created"} x`, Event{}, ErrNotJSON},
		{"form data", `webhookType=booking_created`, Event{}, ErrNotJSON},
		{"no type", `{"id":"a1"}`, Event{}, ErrNoType},
		{"null type", `{"webhookType":null}`, Event{}, ErrNoType},
		{"legacy data but no event", `{"data":{"id":"a"}}`, Event{}, ErrNoType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse([]byte(c.body))
			if !errors.Is(err, c.err) || got != c.want {
				t.Errorf("Parse(%s) = %+v, %v; want %+v, %v", c.body, got, err, c.want, c.err)
			}
		})
	}
}

func TestParseEveryFakePayload(t *testing.T) {
	for _, typ := range fake.AcceptedEventTypes {
		for _, legacy := range []bool{false, true} {
			body, err := fake.Payload(typ, fake.PayloadOptions{AppointmentID: "a0000000-0000-4000-8000-000000000001", LegacyShape: legacy})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Parse(body)
			if err != nil {
				t.Fatalf("%s (legacy %v): %v", typ, legacy, err)
			}
			if ev.Type != typ || ev.Legacy != legacy || ev.ID != "a0000000-0000-4000-8000-000000000001" || ev.CompanyID != fake.SeedCompanyID {
				t.Errorf("%s (legacy %v): parsed %+v", typ, legacy, ev)
			}
			if strings.HasPrefix(typ, "booking_") && (ev.Start == "" || ev.UpdatedAt == "" || ev.MeetingTypeID == "") {
				t.Errorf("%s: booking fields missing: %+v", typ, ev)
			}
		}
	}
}

func TestNotesCarryNoPersonalData(t *testing.T) {
	for _, typ := range fake.AcceptedEventTypes {
		body, _ := fake.Payload(typ, fake.PayloadOptions{})
		ev, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		note := ev.Note()
		if !strings.HasPrefix(note, typ+": ") || !strings.Contains(note, ev.ID) {
			t.Errorf("%s: note %q lacks the type or id", typ, note)
		}
		for _, pii := range fake.PersonalData() {
			if strings.Contains(strings.ToLower(note), strings.ToLower(pii)) {
				t.Errorf("%s: note %q contains personal data %q", typ, note, pii)
			}
		}
	}
}

func TestNoteShowsOnlyWellFormedValues(t *testing.T) {
	cases := []struct {
		ev   Event
		want string
	}{
		{Event{Type: "booking_created", ID: "a-1", Start: "2030-01-02T09:00:00+01:00", MeetingTypeID: "m_1"},
			"booking_created: appointment a-1, start 2030-01-02T09:00:00+01:00, meeting type m_1"},
		{Event{Type: "booking_cancelled", ID: "erika@example.com", Start: "tomorrow", MeetingTypeID: "Call with Erika"},
			"booking_cancelled: no identifiers"},
		{Event{Type: "form_submission", ID: "s1", FormID: "f1"}, "form_submission: submission s1, form f1"},
		{Event{Type: "new_employee", ID: "u1"}, "new_employee: user u1"},
		{Event{Type: "review_published", ID: strings.Repeat("x", 65)}, "review_published: no identifiers"},
		{Event{Type: "signature_completed", ID: "sig:1"}, "signature_completed: id sig:1"},
	}
	for _, c := range cases {
		if got := c.ev.Note(); got != c.want {
			t.Errorf("Note(%+v) = %q, want %q", c.ev, got, c.want)
		}
	}
}

func TestReason(t *testing.T) {
	for in, want := range map[string]string{
		"booking_created":     "BookingCreated",
		"booking_cancelled":   "BookingCancelled",
		"booking_rescheduled": "BookingRescheduled",
		"new_employee":        "NewEmployee",
		"form_submission":     "FormSubmission",
		"signature_completed": "SignatureCompleted",
		"x__y_":               "XY",
	} {
		if got := Reason(in); got != want {
			t.Errorf("Reason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDedupKey(t *testing.T) {
	body := []byte(`{"webhookType":"booking_created","id":"a","updatedAt":"1"}`)
	ev, _ := Parse(body)
	same, _ := Parse([]byte(`{"updatedAt":"1","id":"a","webhookType":"booking_created","extra":true}`))
	if ev.DedupKey(body) != same.DedupKey(nil) {
		t.Error("the same type, id and updatedAt gave different keys")
	}
	for name, other := range map[string]Event{
		"other type":      {Type: "booking_cancelled", ID: "a", UpdatedAt: "1"},
		"other id":        {Type: "booking_created", ID: "b", UpdatedAt: "1"},
		"other updatedAt": {Type: "booking_created", ID: "a", UpdatedAt: "2"},
	} {
		if other.DedupKey(body) == ev.DedupKey(body) {
			t.Errorf("%s: same key", name)
		}
	}
	noUpdate := Event{Type: "form_submission", ID: "s"}
	if noUpdate.DedupKey([]byte("x")) == noUpdate.DedupKey([]byte("y")) {
		t.Error("without updatedAt, different bodies gave the same key")
	}
	if noUpdate.DedupKey([]byte("x")) != noUpdate.DedupKey([]byte("x")) {
		t.Error("without updatedAt, the same body gave different keys")
	}
}

// TestAppointmentIDStandsInForAMissingID: a payload without "id" but with
// "appointmentId" (the shape of a client's test fixture) is identified by
// it, in both shapes, for the duplicate key and the Event note; "id" wins
// when both are there.
func TestAppointmentIDStandsInForAMissingID(t *testing.T) {
	const appt = "a0000000-0000-4000-8000-000000000007"
	cases := []struct {
		name, body, wantID string
	}{
		{"flat", `{"webhookType":"booking_created","appointmentId":"` + appt + `","updatedAt":"u1"}`, appt},
		{"older shape", `{"event":"booking_created","data":{"appointmentId":"` + appt + `","updatedAt":"u1"}}`, appt},
		{"numeric", `{"webhookType":"booking_cancelled","appointmentId":1492,"updatedAt":"u1"}`, "1492"},
		{"id wins", `{"webhookType":"booking_created","appointmentId":"b1","id":"` + appt + `","updatedAt":"u1"}`, appt},
		{"id wins, whatever the order", `{"webhookType":"booking_created","id":"` + appt + `","appointmentId":"b1","updatedAt":"u1"}`, appt},
		{"an id that is null", `{"webhookType":"booking_created","id":null,"appointmentId":"` + appt + `","updatedAt":"u1"}`, appt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Parse([]byte(c.body))
			if err != nil || ev.ID != c.wantID {
				t.Fatalf("Parse: %+v, %v; want id %q", ev, err, c.wantID)
			}
			if !strings.Contains(ev.Note(), c.wantID) {
				t.Errorf("note %q does not show the appointment", ev.Note())
			}
		})
	}
}

// TestTheSameAppointmentSentTwiceAsAppointmentIDIsADuplicate: two bodies
// of one appointment version keyed by appointmentId, differing in member
// order and other fields, share a key; another version or appointment
// does not.
func TestTheSameAppointmentSentTwiceAsAppointmentIDIsADuplicate(t *testing.T) {
	key := func(body string) [32]byte {
		t.Helper()
		ev, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return ev.DedupKey([]byte(body))
	}
	first := key(`{"webhookType":"booking_created","appointmentId":"a1","updatedAt":"2030-01-01T00:00:00Z","attendees":[]}`)
	again := key(`{"updatedAt":"2030-01-01T00:00:00Z","appointmentId":"a1","webhookType":"booking_created","location":null}`)
	if first != again {
		t.Error("the same appointment and version sent twice as appointmentId gave two keys")
	}
	if key(`{"webhookType":"booking_created","id":"a1","updatedAt":"2030-01-01T00:00:00Z"}`) != first {
		t.Error("the same appointment as id and as appointmentId gave two keys")
	}
	if key(`{"webhookType":"booking_created","appointmentId":"a1","updatedAt":"2030-01-01T00:00:01Z"}`) == first {
		t.Error("another version of the appointment shares the key")
	}
	if key(`{"webhookType":"booking_created","appointmentId":"a2","updatedAt":"2030-01-01T00:00:00Z"}`) == first {
		t.Error("another appointment shares the key")
	}
}
