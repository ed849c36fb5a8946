package payload

import (
	"encoding/json"
	"testing"
)

// FuzzDedupKey checks the duplicate key on pairs of events built from
// arbitrary strings:
//
//   - events with an id and an updatedAt get the same key exactly when
//     their type, id and updatedAt (as parsed) are the same, whatever else
//     the bodies hold: a false match would acknowledge an event and drop
//     it as a duplicate;
//   - events without both get the same key exactly when their bodies are
//     the same bytes;
//   - a key from fields never equals a key from a body;
//   - an event whose id is sent as appointmentId (no id) gets the key of
//     the same event sent with id: the same appointment is recognised
//     whichever name it comes under.
//
// Bodies are built with encoding/json, so any string, NUL bytes and
// invalid UTF-8 included, reaches the parser as a JSON string.
func FuzzDedupKey(f *testing.F) {
	f.Add("booking_created", "a1", "2030-01-01T00:00:00Z", "booking_created", "a1", "2030-01-01T00:00:00Z", "x")
	f.Add("booking_created", "a1", "u", "booking_cancelled", "a1", "u", "")
	f.Add("form_submission", "s1", "", "form_submission", "s1", "", "other")
	f.Add("booking_created", "a", "b", "booking_created", "a\x00b", "", "")
	// Fields that run into each other: the separator inside a value.
	f.Add("booking_created", "a\x00b", "c", "booking_created", "a", "b\x00c", "")
	f.Add("booking_created\x00a", "b", "c", "booking_created", "a\x00b", "c", "")
	f.Add("booking_created", "\xff", "1", "booking_created", "\xfe", "1", "")
	f.Fuzz(func(t *testing.T, type1, id1, updated1, type2, id2, updated2, extra string) {
		body1 := marshal(t, map[string]any{"webhookType": type1, "id": id1, "updatedAt": updated1, "extra": extra})
		body2 := marshal(t, map[string]any{"webhookType": type2, "id": id2, "updatedAt": updated2})
		ev1, err1 := Parse(body1)
		ev2, err2 := Parse(body2)
		if err1 != nil || err2 != nil {
			return // no type: answered 400, no key is made
		}
		k1, k2 := ev1.DedupKey(body1), ev2.DedupKey(body2)
		if k1 != ev1.DedupKey(body1) {
			t.Fatal("the key of the same body changed")
		}
		fromFields := func(e Event) bool { return e.ID != "" && e.UpdatedAt != "" }
		sameFields := ev1.Type == ev2.Type && ev1.ID == ev2.ID && ev1.UpdatedAt == ev2.UpdatedAt
		switch {
		case fromFields(ev1) && fromFields(ev2):
			// Equal fields may still be keyed by body (a value the
			// fields' encoding cannot separate): then the bodies decide.
			if k1 == k2 && !sameFields {
				t.Fatalf("different events share a key:\n%s\n%s", body1, body2)
			}
		default:
			if k1 == k2 && string(body1) != string(body2) {
				t.Fatalf("different bodies share a key:\n%s\n%s", body1, body2)
			}
		}
		// Adding a field changes nothing when the key comes from the
		// fields; it changes the key when it comes from the body.
		again := marshal(t, map[string]any{"webhookType": type1, "id": id1, "updatedAt": updated1, "extra": extra, "more": 1})
		evAgain, err := Parse(again)
		if err != nil {
			t.Fatalf("a body that parsed stopped parsing with one more field: %v", err)
		}
		if kAgain := evAgain.DedupKey(again); fromFields(ev1) && kAgain != k1 && !hasNUL(ev1) {
			t.Fatalf("a field other than type, id and updatedAt changed the key: %s", again)
		} else if !fromFields(ev1) && kAgain == k1 {
			t.Fatalf("without id and updatedAt, two bodies share a key: %s", again)
		}
		// The same event with its id sent as appointmentId, and other
		// fields added.
		asAppt := marshal(t, map[string]any{"webhookType": type1, "appointmentId": id1, "updatedAt": updated1, "extra": extra, "more": 2})
		evAppt, err := Parse(asAppt)
		if err != nil || evAppt != ev1 {
			t.Fatalf("appointmentId read as %+v, %v; with id: %+v", evAppt, err, ev1)
		}
		if kAppt := evAppt.DedupKey(asAppt); fromFields(ev1) && !hasNUL(ev1) && kAppt != k1 {
			t.Fatalf("the same event under appointmentId got another key: %s", asAppt)
		} else if !fromFields(ev1) && kAppt == k1 {
			t.Fatalf("without id and updatedAt, two bodies share a key: %s", asAppt)
		}
	})
}

func marshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hasNUL(e Event) bool {
	for _, s := range []string{e.Type, e.ID, e.UpdatedAt} {
		for i := range len(s) {
			if s[i] == 0 {
				return true
			}
		}
	}
	return false
}
