package payload

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// FuzzNoteRedaction checks the one property the Kubernetes Event note
// must have: whatever JSON meetergo sends, with personal fields nested at
// any depth, renamed, in any letter case, or moved into the identifier
// fields, the note never holds a piece of the fake cast's personal data
// (fake.PersonalData: names, e-mail addresses, phone numbers) nor an
// appointment secret.
//
// The input is a small program (prog) that builds a JSON object from a
// pool of keys (the real personal field names and renamed, re-cased and
// Unicode-folded variants of them and of the identifier fields, plus key
// from the fuzzer) and a pool of values (every personal string, sentences
// holding them, secrets, ids, plus value from the fuzzer with any
// personal string removed). Only notes of known event types are checked:
// the handler keeps a body of any other type unread, with a fixed note
// (and drops a known type the resource does not subscribe to), so a type
// never reaches a note unless it is one of them.
//
// One exception is documented rather than asserted: a secret sent as the
// value of an identifier field itself (id, appointmentId, meetingTypeId,
// formId) looks like an id and is shown; the generator does not put
// secrets there.
func FuzzNoteRedaction(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "", "", false)
	f.Add([]byte{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}, "ID", "x", true)
	f.Add([]byte("personal data in every field, nested"), "attendees", "Erikalotte", false)
	// A given name as the appointment id, a family name as the meeting
	// type id: names sent in id fields.
	f.Add([]byte{opSetID, 0, opSetID, 1, opSetID, 2}, "id", "", false)
	f.Add([]byte{opSetID, 3, opSetID, 4, opSetID, 5, opSetID, 6}, "formId", "", true)
	for i := range 32 {
		f.Add([]byte{opSetID, byte(i), opNest, byte(i), opPut, byte(i), byte(3 * i)}, "", "", i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, prog []byte, key, value string, legacy bool) {
		g := newGenerator(prog, key, value)
		body, fields := g.build(legacy)
		ev, err := Parse(body)
		if err != nil || !slices.Contains(fake.AcceptedEventTypes, ev.Type) {
			return
		}
		note := strings.ToLower(ev.Note())
		for _, pii := range personalData {
			if pii == fake.SecretPrefix && fields.secretAsID {
				continue // the documented exception: a secret sent as an id
			}
			if strings.Contains(note, strings.ToLower(pii)) {
				t.Fatalf("note %q holds personal data %q\nbody: %s", ev.Note(), pii, body)
			}
		}
		for _, s := range secrets {
			if strings.Contains(note, strings.ToLower(s)) && !fields.secretAsID {
				t.Fatalf("note %q holds the appointment secret %q\nbody: %s", ev.Note(), s, body)
			}
		}
	})
}

var (
	personalData = fake.PersonalData()
	// secrets are appointment secrets as the fake makes them (a prefix and
	// a digest of the appointment id).
	secrets = []string{fake.AppointmentSecret("a0000000-0000-4000-8000-000000000001"), fake.AppointmentSecret("42")}
	// personalKeys are the names meetergo uses for personal fields, and
	// renamed, re-cased and Unicode-folded variants (encoding/json matches
	// field names case-insensitively, with Unicode simple folding: "ſ" is
	// "s", "K" (Kelvin) is "k").
	personalKeys = []string{
		"email", "Email", "EMAIL", "e-mail", "firstname", "lastname", "fullname", "fullName", "givenName", "familyName",
		"name", "Name", "phone", "Phone", "phoneNumber", "secret", "Secret", "SECRET", "ſecret", "appointmentSecret",
		"attendees", "attendee", "hosts", "host", "cancel", "actionBy", "reason", "meetingInfo", "meetingType",
		"metadata", "answers", "form", "data", "Data", "user", "employee", "slug", "description", "notes",
	}
	// idKeys are the fields Parse reads, in the spellings it accepts.
	idKeys = []string{
		"id", "ID", "Id", "iD", "appointmentId", "AppointmentID", "appointmentid", "meetingTypeId", "MEETINGTYPEID", "meetingTypeID", "formId", "FormID", "formıd",
		"start", "Start", "START", "ſtart", "updatedAt", "companyId", "webhookType", "event",
	}
	// ids are values that look like ids (and are no personal data).
	ids = []string{"a0000000-0000-4000-8000-000000000001", "1492", "s1", "f_1", "m:2", "2030-01-02T09:00:00+01:00", fake.SeedCompanyID}
)

// Operations of the generator's program.
const (
	opPut   = iota // put a value under a key
	opNest         // open an object under a key (closed by opClose)
	opArray        // open an array under a key
	opClose        // close the innermost object or array
	opSetID        // put a personal value under an identifier key at the event's level
	opCount
)

// generator builds a JSON object from a program.
type generator struct {
	prog       []byte
	key, value string
}

// placed says what the generator did that the property depends on.
type placed struct {
	// secretAsID: a secret was put under an identifier key at the event's
	// level (the documented exception).
	secretAsID bool
}

func newGenerator(prog []byte, key, value string) *generator {
	// The fuzzer's own value may not smuggle personal data in: the
	// property is about personal data meetergo sends in its fields.
	lower := strings.ToLower(value)
	for _, pii := range slices.Concat(personalData, secrets) {
		if strings.Contains(lower, strings.ToLower(pii)) {
			value = "x"
			break
		}
	}
	if len(prog) > 512 {
		prog = prog[:512]
	}
	return &generator{prog: prog, key: key, value: value}
}

// node is an object (ordered members) or an array being built.
type node struct {
	array   bool
	keys    []string
	members []any
}

func (n *node) add(key string, v any) {
	n.keys = append(n.keys, key)
	n.members = append(n.members, v)
}

// MarshalJSON keeps member order and duplicate keys, as a hostile sender
// might.
func (n *node) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	open, end := "{", "}"
	if n.array {
		open, end = "[", "]"
	}
	b.WriteString(open)
	for i, v := range n.members {
		if i > 0 {
			b.WriteString(",")
		}
		if !n.array {
			k, _ := json.Marshal(n.keys[i])
			b.Write(k)
			b.WriteString(":")
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(raw)
	}
	b.WriteString(end)
	return []byte(b.String()), nil
}

// values is every value the generator may put anywhere.
func (g *generator) values() []string {
	out := slices.Concat(personalData, secrets, ids, []string{g.value})
	for _, pii := range personalData {
		out = append(out, "Termin mit "+pii, pii+" <"+pii+">", strings.ToUpper(pii))
	}
	return out
}

// build runs the program and returns the body, flat or in the older
// {"event", "data"} shape.
func (g *generator) build(legacy bool) ([]byte, placed) {
	var p placed
	keys := slices.Concat(personalKeys, idKeys, []string{g.key})
	vals := g.values()
	personal := slices.Concat(personalData, secrets)
	typ := fake.AcceptedEventTypes[0]
	if len(g.prog) > 0 {
		typ = fake.AcceptedEventTypes[int(g.prog[0])%len(fake.AcceptedEventTypes)]
	}
	event := &node{}
	stack := []*node{event}
	arg := func(i int) int {
		if i < len(g.prog) {
			return int(g.prog[i])
		}
		return 0
	}
	for i := 0; i < len(g.prog); i += 3 {
		cur := stack[len(stack)-1]
		k := keys[arg(i+1)%len(keys)]
		switch g.prog[i] % opCount {
		case opPut:
			cur.add(k, vals[arg(i+2)%len(vals)])
		case opNest, opArray:
			if len(stack) < 16 {
				child := &node{array: g.prog[i]%opCount == opArray}
				cur.add(k, child)
				stack = append(stack, child)
			}
		case opClose:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case opSetID:
			// Personal data (never a secret) in an identifier field of
			// the event.
			idKey := idKeys[arg(i+1)%len(idKeys)]
			v := personal[arg(i+2)%len(personal)]
			if slices.Contains(secrets, v) {
				v = personalData[arg(i+2)%len(personalData)]
			}
			event.add(idKey, v)
		}
	}
	// The generator may have put a secret under an identifier key of the
	// event with opPut: that is the documented exception.
	for i, k := range event.keys {
		if s, ok := event.members[i].(string); ok && isIDKey(k) && slices.ContainsFunc(secrets, func(sec string) bool {
			return strings.Contains(strings.ToLower(s), strings.ToLower(sec))
		}) {
			p.secretAsID = true
		}
	}
	var root *node
	if legacy {
		root = &node{}
		root.add("event", typ)
		root.add("data", event)
	} else {
		root = &node{}
		root.add("webhookType", typ)
		root.keys = append(root.keys, event.keys...)
		root.members = append(root.members, event.members...)
	}
	body, err := json.Marshal(root)
	if err != nil {
		panic(err)
	}
	return body, p
}

// isIDKey says whether encoding/json would decode key into an identifier
// field Parse shows (it matches names with Unicode simple folding).
func isIDKey(key string) bool {
	for _, f := range []string{"id", "appointmentId", "meetingTypeId", "formId"} {
		if strings.EqualFold(key, f) {
			return true
		}
	}
	return false
}
