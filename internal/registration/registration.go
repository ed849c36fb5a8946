// Package registration holds the decisions about a MeetergoWebhook's
// registration at meetergo as small pure functions: which registration is
// ours, whether it needs a PATCH, and who gets one of a company's six slots.
package registration

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// markerPrefix starts every ownership marker. spec.description may not
// contain it (a CEL rule refuses it at admission), so only the operator
// writes it.
const markerPrefix = "[k8s meetergo-operator uid="

// markerRe finds the operator's ownership marker: the one the operator
// appends, so only a marker at the very end of a description counts. A
// marker-like text earlier in the description (copied from the dashboard,
// or written on purpose to imitate another resource) is user text.
var markerRe = regexp.MustCompile(`\[k8s meetergo-operator uid=([^\]\s]{1,64})\]\s*$`)

// Marker is the ownership marker appended to the description of every
// registration the operator makes: it finds the registration again after a
// crash, a lost status or a restored backup.
func Marker(uid string) string {
	return markerPrefix + uid + "]"
}

// ContainsMarkerText reports whether a user's text contains the start of a
// marker; such a description is refused at admission.
func ContainsMarkerText(s string) bool { return strings.Contains(s, markerPrefix) }

// Description is the description registered at meetergo: the user's text and
// the marker.
func Description(userText, uid string) string {
	if userText == "" {
		return Marker(uid)
	}
	return userText + " " + Marker(uid)
}

// OwnerUID returns the UID in the marker that ends a description.
func OwnerUID(description string) (string, bool) {
	m := markerRe.FindStringSubmatch(description)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// HasMarker reports whether the description ends with the marker of uid.
func HasMarker(description, uid string) bool {
	owner, ok := OwnerUID(description)
	return ok && owner == uid
}

// Truncated returns the length in characters at which meetergo cut a
// description it was sent, or 0 if got is not a shortened sent.
func Truncated(sent, got string) int {
	if len(got) < len(sent) && strings.HasPrefix(sent, got) {
		return utf8.RuneCountInString(got)
	}
	return 0
}

// NormalEndpoint is an endpoint as a server that normalises URLs may store
// it: scheme and host in lower case, without the scheme's default port.
// The path, which carries the token, is kept exactly.
func NormalEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		u.Host = u.Hostname()
	}
	return u.String()
}

// SameEndpoint reports whether two endpoints name the same URL, as far as
// a server normalising URLs could tell them apart.
func SameEndpoint(a, b string) bool { return a == b || NormalEndpoint(a) == NormalEndpoint(b) }

// Ownership tells whose a registration is. The registration's endpoint
// decides first: it carries a token derived from the resource's UID under a
// key only the operator holds, so it cannot be imitated and survives a
// meetergo that shortens descriptions. The marker at the end of the
// description decides otherwise, but only for a registration that posts to
// the resource's receiver: a copy made in the dashboard with the marker and
// another endpoint is someone else's, neither adopted nor removed.
type Ownership struct {
	byEndpoint map[string]string
	// receivers are, per UID, the receiver path prefixes (".../hooks/")
	// its endpoints share; a UID without any trusts its marker alone.
	receivers map[string][]string
}

// NewOwnership indexes the claimants' endpoints.
func NewOwnership(claimants []Claimant) *Ownership {
	o := &Ownership{byEndpoint: map[string]string{}, receivers: map[string][]string{}}
	for _, c := range claimants {
		for _, e := range c.Endpoints {
			if e != "" {
				n := NormalEndpoint(e)
				o.byEndpoint[n] = c.UID
				if i := strings.LastIndex(n, "/hooks/"); i >= 0 {
					o.receivers[c.UID] = append(o.receivers[c.UID], n[:i+len("/hooks/")])
				}
			}
		}
	}
	return o
}

// Owner returns the UID of the resource a registration belongs to.
func (o *Ownership) Owner(w meetergo.Webhook) (string, bool) {
	if o != nil {
		if uid, ok := o.byEndpoint[NormalEndpoint(w.Endpoint)]; ok {
			return uid, true
		}
	}
	uid, ok := OwnerUID(w.Description)
	if !ok || o == nil || len(o.receivers[uid]) == 0 {
		return uid, ok
	}
	n := NormalEndpoint(w.Endpoint)
	for _, prefix := range o.receivers[uid] {
		if strings.HasPrefix(n, prefix) {
			return uid, true
		}
	}
	return "", false
}

// Find returns the registrations of the resource with this UID: the one
// whose id is knownID first if it is the resource's (by endpoint or
// marker: a status naming someone else's registration is not trusted),
// then one whose endpoint is the resource's, then the oldest; the others
// (duplicates) are for the caller to remove.
func Find(all []meetergo.Webhook, own *Ownership, uid, knownID string) (ours *meetergo.Webhook, duplicates []meetergo.Webhook) {
	var mine []meetergo.Webhook
	for _, w := range all {
		if owner, ok := own.Owner(w); ok && owner == uid {
			mine = append(mine, w)
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	byEndpoint := func(w meetergo.Webhook) bool {
		if own == nil {
			return false
		}
		owner, ok := own.byEndpoint[NormalEndpoint(w.Endpoint)]
		return ok && owner == uid
	}
	sort.SliceStable(mine, func(i, j int) bool {
		if (mine[i].ID == knownID) != (mine[j].ID == knownID) {
			return mine[i].ID == knownID
		}
		if byEndpoint(mine[i]) != byEndpoint(mine[j]) {
			return byEndpoint(mine[i])
		}
		return lessID(mine[i].ID, mine[j].ID)
	})
	first := mine[0]
	return &first, mine[1:]
}

func lessID(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// Diff returns the PATCH that turns current into desired, and whether one is
// needed. Event types compare as sets. descLimit is the length at which
// meetergo was seen to cut descriptions (0: never seen): a description cut
// there counts as the one sent, since sending it again changes nothing.
func Diff(current meetergo.Webhook, desired meetergo.WebhookInput, descLimit int) (meetergo.WebhookInput, bool) {
	var patch meetergo.WebhookInput
	if !SameEndpoint(current.Endpoint, desired.Endpoint) {
		patch.Endpoint = desired.Endpoint
	}
	// A meetergo that shortens descriptions returns a prefix of what was
	// sent: sending it again would change nothing and loop for ever.
	if current.Description != desired.Description && (descLimit == 0 || Truncated(desired.Description, current.Description) != descLimit) {
		patch.Description = desired.Description
	}
	if !sameSet(current.EventTypes, desired.EventTypes) {
		patch.EventTypes = desired.EventTypes
	}
	return patch, patch.Endpoint != "" || patch.Description != "" || patch.EventTypes != nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// Claimant is a resource of this cluster that belongs to a company.
type Claimant struct {
	UID       string
	Key       string // namespace/name
	CreatedAt time.Time
	// Wants is false for resources that need no registration (suspended,
	// being deleted).
	Wants bool
	// Holds is true for a resource that held a slot: its status names a
	// registration, or this process saw it holding one. If its registration
	// vanished (deleted in the dashboard), it keeps priority for a slot
	// over every resource that never held one.
	Holds bool
	// Endpoints are the endpoints its registration may carry: the token of
	// the current and the previous generation, at the current receiver URL
	// and at the one last registered.
	Endpoints []string
}

// SlotDecision says whether a resource may create its registration now.
type SlotDecision struct {
	Allowed bool
	Limit   int
	Used    int
	// Holders are the resources of this cluster that hold a slot.
	Holders []string
	// Others counts slots held by registrations this cluster does not own
	// (the dashboard, another cluster, orphaned ones).
	Others int
	// Position is the resource's place among those waiting (1 = next).
	Position int
	// Vanished are the UIDs of resources that held a slot but whose
	// registration meetergo no longer lists: they come first in the queue
	// and are to be re-registered at once.
	Vanished []string
}

// DecideSlot decides whether the claimant with uid may register now.
// Resources that hold a registration keep it; a resource whose
// registration vanished is served first; then free slots go to waiting
// resources oldest first (creation time, then namespace/name), so two
// reconciles never race for the last slot and the order is the same on every
// replica and after every restart.
func DecideSlot(limit int, registrations []meetergo.Webhook, claimants []Claimant, uid string) SlotDecision {
	byUID := map[string]Claimant{}
	for _, c := range claimants {
		byUID[c.UID] = c
	}
	own := NewOwnership(claimants)
	d := SlotDecision{Limit: limit, Used: len(registrations)}
	holding := map[string]bool{}
	for _, w := range registrations {
		owner, ok := own.Owner(w)
		if c, known := byUID[owner]; ok && known {
			if !holding[owner] {
				d.Holders = append(d.Holders, c.Key)
			}
			holding[owner] = true
			continue
		}
		d.Others++
	}
	sort.Strings(d.Holders)

	var waiting []Claimant
	for _, c := range claimants {
		if c.Wants && !holding[c.UID] {
			waiting = append(waiting, c)
		}
	}
	sort.Slice(waiting, func(i, j int) bool {
		if waiting[i].Holds != waiting[j].Holds {
			return waiting[i].Holds
		}
		if !waiting[i].CreatedAt.Equal(waiting[j].CreatedAt) {
			return waiting[i].CreatedAt.Before(waiting[j].CreatedAt)
		}
		return waiting[i].Key < waiting[j].Key
	})
	for _, c := range waiting {
		if c.Holds {
			d.Vanished = append(d.Vanished, c.UID)
		}
	}
	free := limit - d.Used
	for i, c := range waiting {
		if c.UID == uid {
			d.Position = i + 1
			d.Allowed = i < free
			return d
		}
	}
	// Not among the claimants (e.g. its company was only just learned):
	// it queues behind everyone who is.
	d.Position = len(waiting) + 1
	d.Allowed = len(waiting) < free
	return d
}

// Message explains a refused slot to a person.
func (d SlotDecision) Message() string {
	holders := ""
	if len(d.Holders) > 0 {
		holders = " (" + strings.Join(d.Holders, ", ") + ")"
	}
	return fmt.Sprintf("%d of %d meetergo webhook slots of this company are used: %d by this cluster%s, %d by others (dashboard, other clusters or orphaned registrations); waiting at position %d, registered as soon as a slot frees up",
		d.Used, d.Limit, len(d.Holders), holders, d.Others, d.Position)
}
