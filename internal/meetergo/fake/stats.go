package fake

import (
	"cmp"
	"net/http"
	"slices"
	"time"
)

// Count is how many requests a method, route and credential made, and how
// many of them were answered 429 by the rate limit.
type Count struct {
	Method string `json:"method"`
	// Route is the route pattern ("/webhooks/{id}"), or "(no route)".
	Route string `json:"route"`
	// Credential is the bearer token as sent ("" if none); the admin HTTP
	// API shows it masked.
	Credential  string `json:"credential"`
	Requests    int    `json:"requests"`
	RateLimited int    `json:"rateLimited"`
}

// RequestRecord is one API request the server answered (or dropped).
type RequestRecord struct {
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Route      string    `json:"route"`
	Credential string    `json:"credential"`
	// UserHeaderSent tells whether x-meetergo-api-user-id was present, and
	// UserHeader what it said.
	UserHeaderSent bool   `json:"userHeaderSent"`
	UserHeader     string `json:"userHeader,omitempty"`
	UserAgent      string `json:"userAgent,omitempty"`
	Accept         string `json:"accept,omitempty"`
	ContentType    string `json:"contentType,omitempty"`
	// Status is the answer's status, 0 if none was sent (hang, drop).
	Status int `json:"status"`
	// Fault describes the injected fault, if any.
	Fault string `json:"fault,omitempty"`
}

type countKey struct{ method, route, credential string }

// stats are the request counts and the request log, a ring of the last
// size records. s.mu guards them.
type stats struct {
	counts map[countKey]*Count
	log    []RequestRecord
	next   int // where the next record goes once the ring is full
	size   int
}

func newStats(size int) stats {
	if size <= 0 {
		size = defaultRequestLogSize
	}
	return stats{counts: map[countKey]*Count{}, size: size}
}

func (st *stats) entry(method, route, credential string) *Count {
	k := countKey{method, route, credential}
	c, ok := st.counts[k]
	if !ok {
		c = &Count{Method: method, Route: route, Credential: credential}
		st.counts[k] = c
	}
	return c
}

func (st *stats) add(rec RequestRecord) {
	if len(st.log) < st.size {
		st.log = append(st.log, rec)
		return
	}
	st.log[st.next] = rec
	st.next = (st.next + 1) % st.size
}

// records returns the log, oldest first.
func (st *stats) records() []RequestRecord {
	return slices.Concat(st.log[st.next:], st.log[:st.next])
}

// newRecord starts the log entry of r.
func newRecord(r *http.Request, route, token string) RequestRecord {
	return RequestRecord{
		Time: time.Now(), Method: r.Method, Path: r.URL.Path, Route: route, Credential: token,
		UserHeaderSent: len(r.Header.Values(userIDHeader)) > 0, UserHeader: r.Header.Get(userIDHeader),
		UserAgent: r.UserAgent(), Accept: r.Header.Get("Accept"), ContentType: r.Header.Get("Content-Type"),
	}
}

// Counts returns the counts per method, route and credential, sorted.
func (s *Server) Counts() []Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Count, 0, len(s.stats.counts))
	for _, c := range s.stats.counts {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Credential, b.Credential))
	})
	return out
}

// Count sums the counts that match; an empty argument matches anything, so
// Count("", "", "") is the total.
func (s *Server) Count(method, route, credential string) Count {
	sum := Count{Method: method, Route: route, Credential: credential}
	for _, c := range s.Counts() {
		if (method == "" || c.Method == method) && (route == "" || c.Route == route) && (credential == "" || c.Credential == credential) {
			sum.Requests += c.Requests
			sum.RateLimited += c.RateLimited
		}
	}
	return sum
}

// Requests returns the most recent requests (Options.RequestLogSize at
// most), oldest first. A request is logged as its answer's status is
// written, before the client can read it; one that ends without an answer
// (a hang, a drop) is logged when the server is done with it.
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.records()
}

// ResetCounts forgets every count and the request log.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats(s.stats.size)
}
