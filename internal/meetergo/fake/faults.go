package fake

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Fault is a misbehaviour the server shows to matching API requests
// (admin requests are never affected). A fault has at most one outcome —
// Status, Hang or Drop — and optionally a Latency before it; a fault with
// only a Latency slows the request down and then serves it normally.
//
// Rules are tried in the order they were injected; the first that matches
// (and wins its Probability draw) is used, and only that one.
type Fault struct {
	// Method matches the request method; empty matches any.
	Method string `json:"method,omitempty"`
	// Path matches a route pattern ("/webhooks/{id}") or a literal path
	// ("/webhooks/1001"); empty matches any.
	Path string `json:"path,omitempty"`
	// Times is how many matching requests get the fault; 0 is every one
	// until the fault is removed.
	Times int `json:"times,omitempty"`
	// Probability is the chance, in (0, 1], that a matching request gets
	// the fault, drawn from the seeded generator (Options.FaultSeed); 0
	// means 1.
	Probability float64 `json:"probability,omitempty"`
	// Latency delays the request before the outcome.
	Latency Duration `json:"latency,omitzero"`
	// Status answers this status with a NestJS-style body.
	Status int `json:"status,omitempty"`
	// RetryAfter, in seconds, is sent as Retry-After with Status 429.
	RetryAfter int `json:"retryAfter,omitempty"`
	// Hang holds the request without answering until the client gives up
	// (or Server.Close).
	Hang bool `json:"hang,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// Apply performs the request first and then shows the outcome instead
	// of its answer: "applied, but answered 500 / timed out / dropped".
	Apply bool `json:"apply,omitempty"`
}

func (f Fault) validate() error {
	outcomes := 0
	for _, set := range []bool{f.Status != 0, f.Hang, f.Drop} {
		if set {
			outcomes++
		}
	}
	switch {
	case outcomes > 1:
		return errors.New("fake: a fault has at most one of status, hang and drop")
	case outcomes == 0 && f.Latency.Duration <= 0:
		return errors.New("fake: a fault needs a status, hang, drop or latency")
	case outcomes == 0 && f.Apply:
		return errors.New("fake: apply needs a status, hang or drop")
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("fake: fault status %d is not an error status", f.Status)
	case f.Probability < 0 || f.Probability > 1, f.Times < 0:
		return errors.New("fake: probability must be in [0, 1] and times not negative")
	}
	return nil
}

func (f Fault) matches(method, route, path string) bool {
	return (f.Method == "" || strings.EqualFold(f.Method, method)) &&
		(f.Path == "" || f.Path == route || f.Path == path)
}

// outcome reports whether f does more than add latency.
func (f Fault) outcome() bool { return f.Status != 0 || f.Hang || f.Drop }

// String describes the fault's effect, as recorded in RequestRecord.Fault.
func (f Fault) String() string {
	var parts []string
	if f.Latency.Duration > 0 {
		parts = append(parts, "latency "+f.Latency.String())
	}
	if f.Apply {
		parts = append(parts, "applied")
	}
	switch {
	case f.Status != 0:
		parts = append(parts, fmt.Sprintf("status %d", f.Status))
	case f.Hang:
		parts = append(parts, "hang")
	case f.Drop:
		parts = append(parts, "drop")
	}
	return strings.Join(parts, ", then ")
}

// ActiveFault is an injected fault and its progress.
type ActiveFault struct {
	ID int `json:"id"`
	Fault
	// Hits is how many requests got the fault so far.
	Hits int `json:"hits"`
}

// faults are the injected rules. s.mu guards them.
type faults struct {
	rng    *rand.Rand
	nextID int
	rules  []ActiveFault
}

// pick returns the fault for a request, if any, counting the hit and
// retiring a rule whose Times are used up.
func (fs *faults) pick(method, route, path string) (Fault, bool) {
	for i := range fs.rules {
		r := &fs.rules[i]
		if !r.matches(method, route, path) || (r.Probability > 0 && fs.rng.Float64() >= r.Probability) {
			continue
		}
		r.Hits++
		f := r.Fault
		if r.Times > 0 && r.Hits >= r.Times {
			fs.rules = slices.Delete(fs.rules, i, i+1)
		}
		return f, true
	}
	return Fault{}, false
}

// InjectFault adds a fault rule and returns its id.
func (s *Server) InjectFault(f Fault) (int, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.nextID++
	s.faults.rules = append(s.faults.rules, ActiveFault{ID: s.faults.nextID, Fault: f})
	return s.faults.nextID, nil
}

// RemoveFault removes the rule with the id; unknown ids are ignored.
func (s *Server) RemoveFault(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rules = slices.DeleteFunc(s.faults.rules, func(r ActiveFault) bool { return r.ID == id })
}

// ClearFaults removes every rule.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rules = nil
}

// Faults returns the active rules; a rule whose Times are used up is gone.
func (s *Server) Faults() []ActiveFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.faults.rules)
}
