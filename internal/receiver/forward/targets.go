package forward

import (
	"slices"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// TargetKey names a target within its resource, "service:port/path", as
// deliveries, dead letters and lastError refer to it. Two targets with the
// same key are one target.
func TargetKey(t webhooksv1alpha1.Target) string {
	path := t.Path
	if path == "" {
		path = "/"
	}
	return t.Service.Name + ":" + t.Service.Port.String() + path
}

// wants says whether target t of w takes events of eventType: its own
// eventTypes, or all of the resource's when it has none.
func wants(w *webhooksv1alpha1.MeetergoWebhook, t webhooksv1alpha1.Target, eventType string) bool {
	types := t.EventTypes
	if len(types) == 0 {
		types = w.Spec.EventTypes
	}
	return slices.Contains(types, webhooksv1alpha1.EventType(eventType))
}

// Targets returns the keys of w's targets that take events of eventType,
// each once.
func Targets(w *webhooksv1alpha1.MeetergoWebhook, eventType string) []string {
	var keys []string
	for _, t := range w.Spec.Targets {
		if k := TargetKey(t); wants(w, t, eventType) && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// findTarget returns w's target with key, if it still exists and still
// takes events of eventType.
func findTarget(w *webhooksv1alpha1.MeetergoWebhook, key, eventType string) (webhooksv1alpha1.Target, bool) {
	for _, t := range w.Spec.Targets {
		if TargetKey(t) == key && wants(w, t, eventType) {
			return t, true
		}
	}
	return webhooksv1alpha1.Target{}, false
}
