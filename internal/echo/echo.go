// Package echo is a webhook target for the demo and the end-to-end tests: an
// HTTP handler that records every delivery the operator forwards, checks its
// Standard Webhooks signature, and can print a line per delivery.
package echo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Delivery is one request the target received.
type Delivery struct {
	Path      string
	EventType string // X-Meetergo-Event
	Webhook   string // X-Meetergo-Webhook: namespace/name
	ID        string // webhook-id
	Timestamp string // webhook-timestamp
	// Signed tells whether a webhook-signature header came; Valid whether
	// it verified with the target's secret.
	Signed, Valid bool
	Body          []byte
	At            time.Time
}

// Target records deliveries. Its zero value accepts everything unsigned.
type Target struct {
	// Secret is the Standard Webhooks secret ("whsec_" + base64) to verify
	// signatures with; empty skips verification.
	Secret string
	// Out, when set, gets one line per delivery.
	Out io.Writer

	mu         sync.Mutex
	deliveries []Delivery
	// status answers the next requests, for failure tests: see FailNext.
	fail   []int
	failed int
	// slow holds the next requests this long before answering.
	slow []time.Duration
}

// SlowNext makes the next n requests wait d before they are handled, so a
// sender with a shorter timeout gives up on them.
func (t *Target) SlowNext(n int, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for range n {
		t.slow = append(t.slow, d)
	}
}

// Failed counts the requests answered with a FailNext code.
func (t *Target) Failed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// FailNext makes the next len(codes) requests answer these status codes.
func (t *Target) FailNext(codes ...int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fail = append(t.fail, codes...)
}

// ClearFailures drops the failures FailNext and SlowNext queued and not yet used.
func (t *Target) ClearFailures() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fail, t.slow = nil, nil
}

// Deliveries returns what was received so far (successful answers only).
func (t *Target) Deliveries() []Delivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Delivery(nil), t.deliveries...)
}

// ServeHTTP records a delivery.
func (t *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	t.mu.Lock()
	if len(t.slow) > 0 {
		d := t.slow[0]
		t.slow = t.slow[1:]
		t.mu.Unlock()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		http.Error(w, "too slow on purpose", http.StatusServiceUnavailable)
		return
	}
	if len(t.fail) > 0 {
		code := t.fail[0]
		t.fail = t.fail[1:]
		t.failed++
		t.mu.Unlock()
		http.Error(w, "failing on purpose", code)
		return
	}
	d := Delivery{
		Path:      r.URL.Path,
		EventType: r.Header.Get("X-Meetergo-Event"),
		Webhook:   r.Header.Get("X-Meetergo-Webhook"),
		ID:        r.Header.Get("webhook-id"),
		Timestamp: r.Header.Get("webhook-timestamp"),
		Body:      body,
		At:        time.Now(),
	}
	if sig := r.Header.Get("webhook-signature"); sig != "" {
		d.Signed = true
		d.Valid = t.Secret != "" && Verify(t.Secret, d.ID, d.Timestamp, body, sig)
	}
	t.deliveries = append(t.deliveries, d)
	t.mu.Unlock()
	if t.Out != nil {
		sig := "unsigned"
		if d.Signed {
			sig = map[bool]string{true: "signature valid", false: "signature INVALID"}[d.Valid]
		}
		fmt.Fprintf(t.Out, "    echo: %-20s %-28s id=%s %s (%d bytes) on %s\n", d.EventType, d.Webhook, d.ID, sig, len(body), d.Path)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Verify checks a Standard Webhooks signature header ("v1,<base64>"
// entries separated by spaces) over id.timestamp.body with secret.
func Verify(secret, id, timestamp string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, part := range strings.Fields(header) {
		if v, sig, ok := strings.Cut(part, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
