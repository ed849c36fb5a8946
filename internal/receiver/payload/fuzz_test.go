package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// FuzzParseBody feeds Parse arbitrary bodies: it must never panic, and
// whatever it accepts must name a type and give a note of bounded size that
// is valid UTF-8. `go test` runs the seeds (every fake payload in both
// shapes, and broken variants); `go test -fuzz FuzzParseBody` explores.
func FuzzParseBody(f *testing.F) {
	for _, typ := range fake.AcceptedEventTypes {
		for _, legacy := range []bool{false, true} {
			body, err := fake.Payload(typ, fake.PayloadOptions{LegacyShape: legacy})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body)
			f.Add(body[:len(body)/2])
		}
	}
	for _, s := range []string{"", "{}", "null", "[]", `{"webhookType":1}`, `{"event":"x","data":[]}`, `{"id":"\ud800"}`, "\xff{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		_ = ev.DedupKey(body)
		if err != nil {
			return
		}
		if ev.Type == "" {
			t.Fatalf("accepted %q without a type", body)
		}
		note := ev.Note()
		if len(note) > len(ev.Type)+300 || !utf8.ValidString(strings.TrimPrefix(note, ev.Type)) {
			t.Fatalf("note %q for %q", note, body)
		}
		_ = Reason(ev.Type)
	})
}

func BenchmarkParse(b *testing.B) {
	for _, pad := range []int{0, 100_000} {
		body, err := fake.Payload("booking_created", fake.PayloadOptions{PadBytes: pad})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(sizeName(len(body)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDedupKey(b *testing.B) {
	body, _ := fake.Payload("booking_created", fake.PayloadOptions{})
	ev, _ := Parse(body)
	noUpdate := ev
	noUpdate.UpdatedAt = ""
	for name, e := range map[string]Event{"fields": ev, "body": noUpdate} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.DedupKey(body)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 10_000 {
		return "100KB"
	}
	return "3KB"
}

// FuzzParseMatchesEncodingJSON checks the one-pass parser against a
// reference built on encoding/json, which validates and decodes
// separately: both accept the same bodies and read the same fields.
func FuzzParseMatchesEncodingJSON(f *testing.F) {
	for _, typ := range fake.AcceptedEventTypes {
		for _, legacy := range []bool{false, true} {
			body, err := fake.Payload(typ, fake.PayloadOptions{LegacyShape: legacy, PadBytes: 200})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body)
		}
	}
	for _, s := range []string{
		`{"webhookType":"a","id":1.5e3,"start":true,"companyId":"\u00e9\ud800x"}`,
		`{"event":"a","data":{"id":"1"},"data":{"formId":"2"}}`,
		`{"event":"a","data":"x"}`, `{"event":"a","data":null,"id":"top"}`,
		`{"webhookType":"a","webhookType":"b"}`, "{\"webhookType\":\"a\xff\"}",
		`{"webhookType":"a"} {}`, `{"webhookType":"a",}`, `{"ID":"x","webhookType":"a"}`,
		`{"webhookType":"a","appointmentId":"b1","updatedAt":"u"}`, `{"webhookType":"a","appointmentId":7,"id":null}`,
		`{"webhookType":"a","appointmentId":"b1","id":"a1"}`, `{"event":"a","data":{"appointmentId":"b1"},"appointmentId":"top"}`,
		`{"webhookType":"a","AppointmentId":"b1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := Parse(body)
		want, wantErr := parseReference(body)
		if !errors.Is(gotErr, wantErr) || got != want {
			t.Fatalf("Parse(%q)\n got  %+v, %v\n want %+v, %v", body, got, gotErr, want, wantErr)
		}
	})
}

// parseReference is Parse written with encoding/json: exact member
// names, the last of a repeated name counts, unexpected types ignored;
// appointmentId stands in for an id that is missing (or not a scalar).
func parseReference(body []byte) (Event, error) {
	body = bytes.TrimSpace(body)
	var top map[string]json.RawMessage
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &top) != nil {
		return Event{}, ErrNotJSON
	}
	scalar := func(raw json.RawMessage) string {
		switch {
		case len(raw) == 0 || raw[0] == '{' || raw[0] == '[' || raw[0] == 'n':
			return ""
		case raw[0] == '"':
			var s string
			_ = json.Unmarshal(raw, &s)
			return s
		}
		return string(raw)
	}
	ev := Event{Type: scalar(top["webhookType"])}
	f := top
	if ev.Type == "" && scalar(top["event"]) != "" {
		ev.Type, ev.Legacy = scalar(top["event"]), true
		if raw := top["data"]; len(raw) > 0 && raw[0] == '{' {
			f = nil // without a data object, the top level's fields count
			_ = json.Unmarshal(raw, &f)
		}
	}
	if ev.Type == "" {
		return Event{}, ErrNoType
	}
	ev.ID, ev.CompanyID, ev.UpdatedAt = scalar(f["id"]), scalar(f["companyId"]), scalar(f["updatedAt"])
	if ev.ID == "" {
		ev.ID = scalar(f["appointmentId"])
	}
	ev.Start, ev.MeetingTypeID, ev.FormID = scalar(f["start"]), scalar(f["meetingTypeId"]), scalar(f["formId"])
	return ev, nil
}
