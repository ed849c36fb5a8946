package fake

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// serveAPI runs an API request through what stands in front of the
// handlers: counting, latency, the rate limit and injected faults.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.api.Handler(r)
	route := routeOf(pattern)
	token := bearerToken(r)
	rec := newRecord(r, route, token)
	// The record is logged as the status is written, so a client that has
	// its answer finds it in Requests; or at the end, without a status.
	sw := &statusWriter{ResponseWriter: w, logged: func(status int) {
		rec.Status = status
		s.mu.Lock()
		s.stats.add(rec)
		s.mu.Unlock()
	}}
	defer sw.finish(0)

	s.mu.Lock()
	count := s.stats.entry(r.Method, route, token)
	count.Requests++
	settings := s.settings
	s.mu.Unlock()
	s.delay(r, settings.Latency.Duration)

	s.mu.Lock()
	allowed, wait := s.limiters.take(token, time.Now())
	var fault Fault
	faulted := false
	if allowed {
		fault, faulted = s.faults.pick(r.Method, route, r.URL.Path)
	} else {
		count.RateLimited++
	}
	s.mu.Unlock()

	switch {
	case !allowed:
		if settings.RetryAfter {
			sw.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
		}
		writeError(sw, newError(http.StatusTooManyRequests, MsgTooManyRequests))
	case faulted:
		rec.Fault = fault.String()
		s.serveFault(sw, r, fault)
	default:
		s.api.ServeHTTP(sw, r)
	}
}

// serveFault shows fault f to the request.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) {
	s.delay(r, f.Latency.Duration)
	if !f.outcome() {
		s.api.ServeHTTP(w, r)
		return
	}
	if f.Apply {
		s.api.ServeHTTP(httptest.NewRecorder(), r)
	}
	switch {
	case f.Drop:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
		panic(http.ErrAbortHandler)
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		panic(http.ErrAbortHandler) // end without an answer
	}
	msg := http.StatusText(f.Status)
	if f.Status == http.StatusInternalServerError {
		msg = MsgInternal
	}
	if f.Status == http.StatusTooManyRequests && f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	writeError(w, newError(f.Status, msg))
}

// delay waits d, or less if Close is called; if the client goes away first
// the request ends without an answer.
func (s *Server) delay(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	}
}

// routeOf turns a ServeMux pattern ("PATCH /webhooks/{id}") into the route
// ("/webhooks/{id}"); the catch-all is unknownRoute.
func routeOf(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	if path == "" || path == "/" {
		return unknownRoute
	}
	return path
}

// statusWriter reports the status of the answer once, when it is written
// or, for a request that ends without one, when finish(0) is called.
type statusWriter struct {
	http.ResponseWriter
	logged func(status int)
	done   bool
}

func (w *statusWriter) finish(status int) {
	if !w.done {
		w.done = true
		w.logged(status)
	}
}

// WriteHeader implements http.ResponseWriter.
func (w *statusWriter) WriteHeader(code int) {
	w.finish(code)
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *statusWriter) Write(b []byte) (int, error) {
	w.finish(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (for Drop).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
