// Package registration holds the decisions about a MeetergoWebhook's
// registration at meetergo as small pure functions: which registration is
// ours, whether it needs a PATCH, and who gets one of a company's six slots.
package registration

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/meetergo"
)

// markerRe finds the ownership marker in a registration's description.
var markerRe = regexp.MustCompile(`\[k8s meetergo-operator uid=([^\]\s]{1,64})\]`)

// Marker is the ownership marker appended to the description of every
// registration the operator makes: it finds the registration again after a
// crash, a lost status or a restored backup.
func Marker(uid string) string {
	return "[k8s meetergo-operator uid=" + uid + "]"
}

// Description is the description registered at meetergo: the user's text and
// the marker.
func Description(userText, uid string) string {
	if userText == "" {
		return Marker(uid)
	}
	return userText + " " + Marker(uid)
}

// OwnerUID returns the UID in a description's marker.
func OwnerUID(description string) (string, bool) {
	m := markerRe.FindStringSubmatch(description)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Find returns the registrations of the resource with this UID: the one
// whose id is knownID first if present, then the others carrying its marker
// (duplicates, which the caller removes).
func Find(all []meetergo.Webhook, uid, knownID string) (ours *meetergo.Webhook, duplicates []meetergo.Webhook) {
	var mine []meetergo.Webhook
	for _, w := range all {
		if owner, ok := OwnerUID(w.Description); (ok && owner == uid) || (knownID != "" && w.ID == knownID) {
			mine = append(mine, w)
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	// The known id wins; else the oldest (lowest id, numerically) is kept.
	sort.SliceStable(mine, func(i, j int) bool {
		if (mine[i].ID == knownID) != (mine[j].ID == knownID) {
			return mine[i].ID == knownID
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
// needed. Event types compare as sets.
func Diff(current meetergo.Webhook, desired meetergo.WebhookInput) (meetergo.WebhookInput, bool) {
	var patch meetergo.WebhookInput
	if current.Endpoint != desired.Endpoint {
		patch.Endpoint = desired.Endpoint
	}
	if current.Description != desired.Description {
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
}

// DecideSlot decides whether the claimant with uid may register now.
// Resources that hold a registration keep it; free slots go to waiting
// resources oldest first (creation time, then namespace/name), so two
// reconciles never race for the last slot and the order is the same on every
// replica and after every restart.
func DecideSlot(limit int, registrations []meetergo.Webhook, claimants []Claimant, uid string) SlotDecision {
	byUID := map[string]Claimant{}
	for _, c := range claimants {
		byUID[c.UID] = c
	}
	d := SlotDecision{Limit: limit, Used: len(registrations)}
	holding := map[string]bool{}
	for _, w := range registrations {
		owner, ok := OwnerUID(w.Description)
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
		if !waiting[i].CreatedAt.Equal(waiting[j].CreatedAt) {
			return waiting[i].CreatedAt.Before(waiting[j].CreatedAt)
		}
		return waiting[i].Key < waiting[j].Key
	})
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
