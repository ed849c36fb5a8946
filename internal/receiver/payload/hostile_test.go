package payload

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestHostileBodies parses bodies built to exhaust a parser: deep nesting
// (encoding/json validates iteratively and stops at depth 10000, so there
// is no recursion to overflow), many members, long strings and escapes.
// Each must be decided quickly, with memory bounded by a multiple of the
// body (the handler has already bounded the body to 1 MiB). The worst case
// is a body repeating an identifier field: each occurrence is decoded
// (about 20 bytes allocated per byte of body, all garbage at once).
func TestHostileBodies(t *testing.T) {
	event := `{"webhookType":"booking_created","id":"a1","updatedAt":"u1",`
	cases := []struct {
		name string
		body string
		err  error // nil: parses, as a booking_created
	}{
		{"100k nested arrays", event + `"n":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}", ErrNotJSON},
		{"100k nested objects", event + `"n":` + strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_001), ErrNotJSON},
		{"100k unclosed arrays", event + `"n":` + strings.Repeat("[", 100_000), ErrNotJSON},
		{"nesting just under the limit", event + `"n":` + strings.Repeat("[", 9_990) + strings.Repeat("]", 9_990) + "}", nil},
		{"60k members", event + strings.Repeat(`"k":1,`, 60_000) + `"z":1}`, nil},
		{"60k ids, the last wins", event + strings.Repeat(`"id":"x",`, 60_000) + `"z":1}`, nil},
		{"a 900 KB string of escapes", event + `"s":"` + strings.Repeat(`\u0000`, 150_000) + `"}`, nil},
		{"a 900 KB number", event + `"n":1` + strings.Repeat("0", 900_000) + "}", nil},
		{"an id of 900 KB", `{"webhookType":"booking_created","id":"` + strings.Repeat("a", 900_000) + `"}`, nil},
		{"a byte order mark", "\xef\xbb\xbf" + event + `"z":1}`, ErrNotJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ev, err := Parse([]byte(c.body))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err == nil && ev.Type != "booking_created" {
				t.Fatalf("type %q", ev.Type)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > uint64(32*len(c.body)+1<<20) {
				t.Errorf("parsing %d bytes allocated %d bytes", len(c.body), alloc)
			}
			t.Logf("%d bytes: %s, %.1f bytes allocated per byte", len(c.body), errOrType(err, ev), float64(alloc)/float64(len(c.body)))
			if err == nil && len(ev.Note()) > 300+len(ev.Type) {
				t.Errorf("note of %d bytes", len(ev.Note()))
			}
		})
	}
}

func errOrType(err error, ev Event) string {
	if err != nil {
		return err.Error()
	}
	return ev.Type
}
