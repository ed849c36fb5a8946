package payload

import (
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
