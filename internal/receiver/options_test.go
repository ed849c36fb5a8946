package receiver

import (
	"strings"
	"testing"
)

// TestOptionsRefuseWhatCannotWork: bad settings fail at start with a
// message naming the setting, instead of a receiver that refuses every
// event later.
func TestOptionsRefuseWhatCannotWork(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"no data directory", Options{Tokens: tokens}, "DataDir is required"},
		{"negative rate", Options{Tokens: tokens, DataDir: "d", RateLimit: -1}, "must not be negative"},
		{"negative kept bound", Options{Tokens: tokens, DataDir: "d", KeptMaxEvents: -1}, "--receiver-kept-max-events"},
		{"store below 1 MiB", Options{Tokens: tokens, DataDir: "d", StoreMaxBytes: 64 << 10}, "--receiver-store-max-bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			err := o.complete()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	o := Options{Tokens: tokens, DataDir: "d", StoreMaxBytes: MinStoreMaxBytes}
	if err := o.complete(); err != nil {
		t.Errorf("1 MiB store refused: %v", err)
	}
}
