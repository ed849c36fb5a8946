package fake

import (
	"net/http/httptest"
	"testing"
)

// Start serves a new Server on 127.0.0.1 (a free port) for the length of the
// test and returns it with its base URL. It fails the test if opts are
// invalid. Hung requests are released and the listener closed on cleanup.
func Start(tb testing.TB, opts Options) (*Server, string) {
	tb.Helper()
	s, err := New(opts)
	if err != nil {
		tb.Fatalf("fake meetergo: %v", err)
	}
	ts := httptest.NewServer(s)
	tb.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts.URL
}
