package registration

import (
	"strings"
	"testing"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

func TestMarkerRoundTrip(t *testing.T) {
	uid := "3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f"
	cases := map[string]struct {
		desc    string
		wantUID string
		wantOK  bool
	}{
		"with user text":   {Description("CRM sync", uid), uid, true},
		"marker only":      {Description("", uid), uid, true},
		"dashboard text":   {"made by hand in the dashboard", "", false},
		"look-alike":       {"[k8s meetergo-operator uid=]", "", false},
		"marker edited in": {"CRM " + Marker("abc-123") + " more", "", false},
		// spec.description imitating another resource's marker: only the
		// marker the operator appends, at the end, counts.
		"user text imitating another resource": {Description("copied "+Marker("other-uid"), uid), uid, true},
		"marker then trailing space":           {Marker("abc-123") + " \n", "abc-123", true},
	}
	for name, c := range cases {
		got, ok := OwnerUID(c.desc)
		if got != c.wantUID || ok != c.wantOK {
			t.Errorf("%s: OwnerUID(%q) = %q, %v; want %q, %v", name, c.desc, got, ok, c.wantUID, c.wantOK)
		}
	}
}

func hook(id, desc string) meetergo.Webhook { return meetergo.Webhook{ID: id, Description: desc} }

func TestFind(t *testing.T) {
	all := []meetergo.Webhook{
		hook("7", "external"),
		hook("12", Description("x", "u1")),
		hook("9", Description("x", "u1")),
		hook("10", Description("x", "u2")),
		// u2's description copied into another registration by hand, to
		// u4's endpoint: the endpoint decides.
		{ID: "11", Endpoint: "https://r/hooks/u4", Description: Description("x", "u2")},
		// u5's registration, its marker cut off by meetergo.
		{ID: "13", Endpoint: "https://r/hooks/u5", Description: "x [k8s meteergo-op"},
		// a description imitating u1 at the start: not u1's.
		hook("14", Marker("u1")+" copied"),
	}
	own := NewOwnership([]Claimant{
		{UID: "u4", Endpoints: []string{"https://r/hooks/u4"}},
		{UID: "u5", Endpoints: []string{"https://r/hooks/u5"}},
	})
	cases := []struct {
		name    string
		uid, id string
		want    string
		dups    []string
	}{
		{"adopt by marker keeps the oldest", "u1", "", "9", []string{"12"}},
		{"known id wins over older duplicate", "u1", "12", "12", []string{"9"}},
		{"single", "u2", "", "10", nil},
		{"none", "u3", "", "", nil},
		{"known id whose marker was edited away is not trusted", "u3", "7", "", nil},
		{"known id carrying another resource's marker is not trusted", "u3", "10", "", nil},
		{"the endpoint beats a copied marker", "u4", "", "11", nil},
		{"a cut-off marker: the endpoint recognises it", "u5", "", "13", nil},
	}
	for _, c := range cases {
		ours, dups := Find(all, own, c.uid, c.id)
		got := ""
		if ours != nil {
			got = ours.ID
		}
		var gotDups []string
		for _, d := range dups {
			gotDups = append(gotDups, d.ID)
		}
		if got != c.want || strings.Join(gotDups, ",") != strings.Join(c.dups, ",") {
			t.Errorf("%s: Find = %q dups %v; want %q dups %v", c.name, got, gotDups, c.want, c.dups)
		}
	}
}

func TestDescriptionTruncatedByMeetergoNeedsNoPatch(t *testing.T) {
	sent := Description("a long text for the dashboard", "3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f")
	cur := meetergo.Webhook{Endpoint: "https://r/hooks/a", Description: sent[:40], EventTypes: []string{"booking_created"}}
	if n := Truncated(sent, cur.Description); n != 40 {
		t.Fatalf("Truncated = %d, want 40", n)
	}
	if _, needed := Diff(cur, meetergo.WebhookInput{Endpoint: cur.Endpoint, Description: sent, EventTypes: cur.EventTypes}, 40); needed {
		t.Error("a description meetergo shortened is PATCHed again and again")
	}
	if _, needed := Diff(cur, meetergo.WebhookInput{Endpoint: cur.Endpoint, Description: sent, EventTypes: cur.EventTypes}, 0); !needed {
		t.Error("without a known cut, a shortened description (an edit in the dashboard) is not repaired")
	}
	if p, needed := Diff(cur, meetergo.WebhookInput{Endpoint: cur.Endpoint, Description: "another text", EventTypes: cur.EventTypes}, 40); !needed || p.Description != "another text" {
		t.Errorf("a changed description is not PATCHed: %+v %v", p, needed)
	}
}

func TestDiff(t *testing.T) {
	cur := meetergo.Webhook{Endpoint: "https://r/hooks/a", Description: "d", EventTypes: []string{"booking_created", "booking_cancelled"}}
	cases := []struct {
		name    string
		desired meetergo.WebhookInput
		want    meetergo.WebhookInput
		needed  bool
	}{
		{"same, event order differs", meetergo.WebhookInput{Endpoint: cur.Endpoint, Description: "d", EventTypes: []string{"booking_cancelled", "booking_created"}}, meetergo.WebhookInput{}, false},
		{"event added", meetergo.WebhookInput{Endpoint: cur.Endpoint, Description: "d", EventTypes: []string{"booking_created", "booking_cancelled", "new_employee"}}, meetergo.WebhookInput{EventTypes: []string{"booking_created", "booking_cancelled", "new_employee"}}, true},
		{"endpoint rotated", meetergo.WebhookInput{Endpoint: "https://r/hooks/b", Description: "d", EventTypes: cur.EventTypes}, meetergo.WebhookInput{Endpoint: "https://r/hooks/b"}, true},
		{"description edited in dashboard", meetergo.WebhookInput{Endpoint: cur.Endpoint, Description: "d2", EventTypes: cur.EventTypes}, meetergo.WebhookInput{Description: "d2"}, true},
	}
	for _, c := range cases {
		got, needed := Diff(cur, c.desired, 0)
		if needed != c.needed || got.Endpoint != c.want.Endpoint || got.Description != c.want.Description || strings.Join(got.EventTypes, ",") != strings.Join(c.want.EventTypes, ",") {
			t.Errorf("%s: Diff = %+v, %v; want %+v, %v", c.name, got, needed, c.want, c.needed)
		}
	}
}

func TestDecideSlot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	claim := func(uid string, age int, wants bool) Claimant {
		return Claimant{UID: uid, Key: "ns/" + uid, CreatedAt: t0.Add(time.Duration(age) * time.Minute), Wants: wants}
	}
	holder := func(uid string, age int) Claimant {
		c := claim(uid, age, true)
		c.Holds = true
		return c
	}
	regs := func(owners ...string) []meetergo.Webhook {
		var out []meetergo.Webhook
		for i, o := range owners {
			if o == "ext" {
				out = append(out, hook(string(rune('a'+i)), "dashboard"))
			} else {
				out = append(out, hook(string(rune('a'+i)), Description("", o)))
			}
		}
		return out
	}
	cases := []struct {
		name      string
		limit     int
		regs      []meetergo.Webhook
		claimants []Claimant
		uid       string
		allowed   bool
		position  int
		holders   int
		others    int
	}{
		{"free slot, nobody older waiting", 6, regs("ext", "a"), []Claimant{claim("a", 0, true), claim("b", 1, true)}, "b", true, 1, 1, 1},
		{"full", 6, regs("ext", "a", "b", "c", "d", "e"), []Claimant{claim("a", 0, true), claim("b", 1, true), claim("c", 2, true), claim("d", 3, true), claim("e", 4, true), claim("f", 5, true)}, "f", false, 1, 5, 1},
		{"one free slot goes to the oldest waiter", 6, regs("ext", "a", "b", "c", "d"), []Claimant{claim("a", 0, true), claim("b", 1, true), claim("c", 2, true), claim("d", 3, true), claim("f", 5, true), claim("g", 4, true)}, "f", false, 2, 4, 1},
		{"the oldest waiter takes it", 6, regs("ext", "a", "b", "c", "d"), []Claimant{claim("a", 0, true), claim("b", 1, true), claim("c", 2, true), claim("d", 3, true), claim("f", 5, true), claim("g", 4, true)}, "g", true, 1, 4, 1},
		{"same creation time: namespace/name decides", 1, nil, []Claimant{claim("y", 0, true), claim("x", 0, true)}, "y", false, 2, 0, 0},
		{"suspended older resource does not block", 1, nil, []Claimant{claim("old", 0, false), claim("new", 1, true)}, "new", true, 1, 0, 0},
		{"orphaned registration counts as others", 2, regs("gone", "a"), []Claimant{claim("a", 0, true), claim("b", 1, true)}, "b", false, 1, 1, 1},
		{"unknown claimant queues last", 3, regs("a"), []Claimant{claim("a", 0, true), claim("b", 1, true)}, "z", true, 2, 1, 0},
		// A holder whose registration vanished (deleted in the dashboard)
		// comes before an older resource that never held a slot.
		{"vanished holder keeps its slot", 6, regs("ext", "a", "b", "c", "d"), []Claimant{claim("a", 0, true), claim("b", 1, true), claim("c", 2, true), claim("d", 3, true), holder("e", 5), claim("w", 4, true)}, "e", true, 1, 4, 1},
		{"waiter does not take a vanished holder's slot", 6, regs("ext", "a", "b", "c", "d"), []Claimant{claim("a", 0, true), claim("b", 1, true), claim("c", 2, true), claim("d", 3, true), holder("e", 5), claim("w", 4, true)}, "w", false, 2, 4, 1},
	}
	for _, c := range cases {
		d := DecideSlot(c.limit, c.regs, c.claimants, c.uid)
		if d.Allowed != c.allowed || d.Position != c.position || len(d.Holders) != c.holders || d.Others != c.others {
			t.Errorf("%s: got allowed=%v position=%d holders=%v others=%d; want %v %d %d %d", c.name, d.Allowed, d.Position, d.Holders, d.Others, c.allowed, c.position, c.holders, c.others)
		}
	}
}

func TestSlotMessageNamesHoldersAndCounts(t *testing.T) {
	d := SlotDecision{Limit: 6, Used: 6, Holders: []string{"sales/a", "sales/b"}, Others: 4, Position: 2}
	msg := d.Message()
	for _, want := range []string{"6 of 6", "2 by this cluster (sales/a, sales/b)", "4 by others", "position 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestEndpointsCompareAsAServerNormalisingURLsWould(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"https://Hooks.Example.test/meetergo/hooks/AbC", "https://hooks.example.test/meetergo/hooks/AbC", true},
		{"HTTPS://hooks.example.test:443/hooks/AbC", "https://hooks.example.test/hooks/AbC", true},
		{"https://hooks.example.test/hooks/AbC", "https://hooks.example.test/hooks/abc", false}, // the token is case-sensitive
		{"https://hooks.example.test/hooks/AbC", "https://hooks.example.test:8443/hooks/AbC", false},
		{"https://a.example.test/hooks/AbC", "https://b.example.test/hooks/AbC", false},
	}
	for _, c := range cases {
		if got := SameEndpoint(c.a, c.b); got != c.same {
			t.Errorf("SameEndpoint(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
	own := NewOwnership([]Claimant{{UID: "u1", Endpoints: []string{"https://Hooks.Example.test/hooks/AbC"}}})
	if uid, ok := own.Owner(meetergo.Webhook{Endpoint: "https://hooks.example.test/hooks/AbC"}); !ok || uid != "u1" {
		t.Errorf("a normalised endpoint is not recognised: %q %v", uid, ok)
	}
}

// Found by review: a dashboard copy of a registration, marker and all, that
// posts to another team's service is neither removed as a duplicate nor
// adopted (and PATCHed to the receiver).
func TestAMarkerCopyPostingElsewhereIsNotOurs(t *testing.T) {
	ours := meetergo.Webhook{ID: "10", Endpoint: "https://hooks.example.test/r/hooks/tokA", Description: Description("crm", "A")}
	copied := meetergo.Webhook{ID: "11", Endpoint: "https://crm.other-team.example/in", Description: Description("crm", "A")}
	own := NewOwnership([]Claimant{{UID: "A", Endpoints: []string{"https://hooks.example.test/r/hooks/tokA", "https://hooks.example.test/r/hooks/tokA0"}}})
	got, dups := Find([]meetergo.Webhook{ours, copied}, own, "A", "10")
	if got == nil || got.ID != "10" || len(dups) != 0 {
		t.Errorf("Find = %v, duplicates %v; want 10 and no duplicate to delete", got, dups)
	}
	if got, _ := Find([]meetergo.Webhook{copied}, own, "A", ""); got != nil {
		t.Errorf("the copy posting elsewhere is adopted: %v", got)
	}
	// At our receiver with a token of another key (a restored key): still ours.
	if got, _ := Find([]meetergo.Webhook{{ID: "12", Endpoint: "https://Hooks.example.test/r/hooks/other", Description: Description("", "A")}}, own, "A", ""); got == nil {
		t.Error("a registration at our receiver carrying our marker is not recognised")
	}
}
