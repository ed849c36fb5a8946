package receiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// Short timeouts for the hostile receiver, so slow clients are cut fast.
const (
	hostileHeaderTimeout = 500 * time.Millisecond
	hostileBodyTimeout   = 500 * time.Millisecond
	// slack covers scheduling on a loaded 2-core machine under -race.
	slack = 5 * time.Second
)

// rawRequest is an HTTP/1.1 request written byte for byte: head lines
// (request line and headers, without the blank line) and body.
func rawRequest(head []string, body []byte) []byte {
	return append([]byte(strings.Join(head, "\r\n")+"\r\n\r\n"), body...)
}

// chunked encodes body as one chunk and the last chunk.
func chunked(body []byte) []byte {
	return append(fmt.Appendf(nil, "%x\r\n", len(body)), append(body, "\r\n0\r\n\r\n"...)...)
}

// hostileCase is a request written on the wire and the answers expected.
type hostileCase struct {
	name     string
	raw      io.Reader
	method   string // of the request, for reading the answer (HEAD has no body)
	want     []int  // answers, in order, then the connection is closed
	accepted int    // events this request may add
}

// TestHostileRequests sends malformed, oversized, nested, mislabelled and
// misaddressed requests to a receiver with short timeouts and checks the
// answer to each, byte for byte on the wire (net/http's client would
// refuse to send most of them). Only the requests marked accepted may
// become events (received: accepted, or kept as a dead letter when their
// whole body arrived but cannot be read).
func TestHostileRequests(t *testing.T) {
	g := NewWithT(t)
	x := startExtraReceiver(t, Options{ReadHeaderTimeout: hostileHeaderTimeout, BodyReadTimeout: hostileBodyTimeout})
	addr := x.Addr().String()
	ns := namespace(t)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}})
	x.sees(t, w)
	path := "/hooks/" + tokens.Token(string(w.UID), 0)

	head := func(path string, extra ...string) []string {
		return append([]string{"POST " + path + " HTTP/1.1", "Host: receiver"}, extra...)
	}
	withLength := func(body []byte, extra ...string) []byte {
		return rawRequest(head(path, append(extra, fmt.Sprintf("Content-Length: %d", len(body)), "Connection: close")...), body)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(booking(t))
	_ = zw.Close()
	deepArrays := []byte(`{"webhookType":"booking_created","id":"a1","n":` + repeat("[", 100_000) + repeat("]", 100_000) + "}")
	deepObjects := []byte(`{"webhookType":"booking_created","id":"a1","n":` + repeat(`{"a":`, 100_000) + "1" + repeat("}", 100_001))
	http10 := booking(t)
	halfEvent := booking(t)
	pipelined := booking(t)
	big := bytes.Repeat([]byte("x"), 2<<20)

	cases := []hostileCase{
		{"an event (control)", bytes.NewReader(withLength(booking(t))), "POST", []int{200}, 1},
		{"an event, chunked (control)", bytes.NewReader(rawRequest(head(path, "Transfer-Encoding: chunked", "Connection: close"), chunked(booking(t)))), "POST", []int{200}, 1},

		// Bodies: too large, lying about their length, slow.
		{"Content-Length 2 MiB, body held back (Expect: 100-continue)", bytes.NewReader(rawRequest(head(path, "Content-Length: 2097152", "Expect: 100-continue"), nil)), "POST", []int{413}, 0},
		{"Content-Length 2 MiB, body sent", bytes.NewReader(rawRequest(head(path, "Content-Length: 2097152"), big)), "POST", []int{413}, 0},
		{"chunked, 2 MiB", bytes.NewReader(rawRequest(head(path, "Transfer-Encoding: chunked"), chunked(big))), "POST", []int{413}, 0},
		{"chunked, a chunk claiming 2^63-1 bytes", bytes.NewReader(rawRequest(head(path, "Transfer-Encoding: chunked"), append([]byte("7fffffffffffffff\r\n"), big...))), "POST", []int{413}, 0},
		{"chunked, a chunk size that is not hex", bytes.NewReader(rawRequest(head(path, "Transfer-Encoding: chunked"), []byte("zz\r\nabc\r\n0\r\n\r\n"))), "POST", []int{400}, 0},
		// The first half is a body that cannot be read: kept (this was 400
		// before unreadable bodies with a valid token were kept).
		{"Content-Length shorter than the body: the rest is a second, malformed request", bytes.NewReader(rawRequest(head(path, fmt.Sprintf("Content-Length: %d", len(halfEvent)/2)), halfEvent)), "POST", []int{200, 400}, 1},
		{"Content-Length exact, then garbage on the connection", bytes.NewReader(append(rawRequest(head(path, fmt.Sprintf("Content-Length: %d", len(pipelined))), pipelined), "GARBAGE\r\n\r\n"...)), "POST", []int{200, 400}, 1},
		{"Content-Length longer than the body, then silence", &trickle{head: rawRequest(head(path, "Content-Length: 100000"), booking(t)), stop: t.Context().Done()}, "POST", []int{408}, 0},
		{"Content-Length -1", bytes.NewReader(rawRequest(head(path, "Content-Length: -1"), nil)), "POST", []int{400}, 0},
		{"two Content-Lengths", bytes.NewReader(rawRequest(head(path, "Content-Length: 2", "Content-Length: 3"), []byte("{}"))), "POST", []int{400}, 0},
		{"Transfer-Encoding gzip, chunked", bytes.NewReader(rawRequest(head(path, "Transfer-Encoding: gzip, chunked"), chunked(gz.Bytes()))), "POST", []int{501}, 0},
		// Bodies that cannot be read, with a valid token: kept as dead
		// letters and acknowledged (400 before that was decided).
		{"Content-Encoding gzip (not decoded): kept", bytes.NewReader(withLength(gz.Bytes(), "Content-Encoding: gzip")), "POST", []int{200}, 1},

		// Nesting: the parser stops at depth 10000 without recursing; the
		// body is kept unread.
		{"100k nested arrays: kept", bytes.NewReader(withLength(deepArrays)), "POST", []int{200}, 1},
		{"100k nested objects: kept", bytes.NewReader(withLength(deepObjects)), "POST", []int{200}, 1},

		// Headers and request lines.
		{"headers over 64 KiB", bytes.NewReader(rawRequest(head(path, "X-Pad: "+repeat("a", 70<<10)), nil)), "POST", []int{431}, 0},
		{"a token of 60 KB", bytes.NewReader(rawRequest(head("/hooks/"+repeat("A", 60<<10), "Content-Length: 2", "Connection: close"), []byte("{}"))), "POST", []int{404}, 0},
		{"a path of 100 KB", bytes.NewReader(rawRequest(head("/hooks/"+repeat("A", 100<<10), "Content-Length: 2"), []byte("{}"))), "POST", []int{431}, 0},
		{"a request line that is not HTTP", bytes.NewReader([]byte("GARBAGE\r\n\r\n")), "POST", []int{400}, 0},
		{"HTTP/1.1 without Host", bytes.NewReader(rawRequest([]string{"POST " + path + " HTTP/1.1", "Content-Length: 2"}, []byte("{}"))), "POST", []int{400}, 0},
		{"HTTP/2 prior-knowledge preface: no h2c, answered as HTTP/1", bytes.NewReader([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), "POST", []int{404}, 0},
		{"HTTP/1.0 (control)", bytes.NewReader(rawRequest([]string{"POST " + path + " HTTP/1.0", "Content-Length: " + fmt.Sprint(len(http10))}, http10)), "POST", []int{200}, 1},
	}
	// Methods other than POST, on a valid token.
	for _, m := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"} {
		cases = append(cases, hostileCase{m, bytes.NewReader(rawRequest([]string{m + " " + path + " HTTP/1.1", "Host: receiver", "Connection: close"}, nil)), m, []int{405}, 0})
	}
	// meetergo does not document its Content-Type: the body decides.
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16"} {
		header := []string{}
		if ct != "" {
			header = append(header, "Content-Type: "+ct)
		}
		cases = append(cases, hostileCase{"Content-Type " + fmt.Sprintf("%q", ct) + " is accepted", bytes.NewReader(withLength(booking(t), header...)), "POST", []int{200}, 1})
	}

	before := delivery(w)().Received
	accepted := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := exchange(t, addr, c.raw, c.method, hostileBodyTimeout+slack)
			NewWithT(t).Expect(res.statuses).To(Equal(c.want))
			NewWithT(t).Expect(res.closed).To(BeTrue(), "the server closes the connection")
			if c.want[0] == http.StatusMethodNotAllowed {
				NewWithT(t).Expect(res.first.Get("Allow")).To(Equal("POST"))
			}
		})
		accepted += c.accepted
	}
	g.Eventually(delivery(w)).Should(HaveField("Received", BeEquivalentTo(before+int64(accepted))), "only the accepted requests became events")
	g.Consistently(delivery(w)).Should(HaveField("Received", BeEquivalentTo(before+int64(accepted))))
	g.Expect(x.ready()).To(Succeed())
	g.Expect(x.logs.String()).NotTo(ContainSubstring(tokens.Token(string(w.UID), 0)), "the token is a secret: never logged")
}

// TestTokensOpenOnlyTheirOwnResource posts near misses of valid tokens,
// revoked tokens and tokens of deleted resources to a receiver: only a
// resource's own current token (or its previous one within the grace
// period) opens it.
func TestTokensOpenOnlyTheirOwnResource(t *testing.T) {
	g := NewWithT(t)
	x := startExtraReceiver(t, Options{})
	ns := namespace(t)
	spec := webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}}
	w := webhook(t, ns, "hook", spec)
	rotated := webhook(t, ns, "rotated", spec)
	setStatus(t, rotated, func(s *webhooksv1alpha1.MeetergoWebhookStatus) {
		s.TokenGeneration, s.TokenRotatedAt = 3, &metav1.Time{Time: time.Now().Add(-2 * testGrace)}
	})
	gone := webhook(t, ns, "gone", spec)
	goneToken := x.endpoint(gone, 0)
	g.Expect(k8s.Delete(context.Background(), gone)).To(Succeed())
	recreated := webhook(t, ns, "gone", spec) // same name, new UID
	for _, r := range []*webhooksv1alpha1.MeetergoWebhook{w, rotated, recreated} {
		x.sees(t, r)
	}
	g.Eventually(func() int { code, _ := post(goneToken, booking(t), ""); return code }).Should(Equal(404), "the deleted resource's token")

	tok := tokens.Token(string(w.UID), 0)
	for _, target := range almostRightTargets(tok)[1:] {
		want := http.StatusNotFound
		switch target {
		case "/hooks/" + tok + "?x=1", "/hooks/" + url.PathEscape(tok), "/hooks/" + percentEncoded(tok):
			want = http.StatusOK // the same path to HTTP (a query; percent-encoding of unreserved bytes)
		case "/hooks/ " + tok, "/hooks/" + tok + "#frag", "http://receiver/hooks/" + tok, "https://elsewhere.example/hooks/" + tok:
			continue // not a path http.NewRequest sends as such; FuzzRouter covers them
		}
		code, err := post(x.base+target, booking(t), "application/json")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(want), "POST %s", target)
	}
	for gen := range int64(3) {
		code, _ := post(x.endpoint(rotated, gen), booking(t), "")
		g.Expect(code).To(Equal(404), "generation %d of a resource at generation 3, rotated beyond the grace period", gen)
	}
	for _, ok := range []string{x.endpoint(w, 0), x.endpoint(rotated, 3), x.endpoint(recreated, 0)} {
		code, _ := post(ok, booking(t), "")
		g.Expect(code).To(Equal(200))
	}
	// The predecessor's token does not open its successor, nor the
	// successor's token anything else.
	code, _ := post(goneToken, booking(t), "")
	g.Expect(code).To(Equal(404))
}

// TestATokenOnlyReachesItsOwnNamespace has resources of the same name in
// two namespaces, each with a target Service of the same name: each
// token's events reach its own namespace's Service only, and a resource
// whose namespace lacks the Service never falls back to another
// namespace's Service of that name (spec.targets cannot name a namespace;
// the Service name pattern has no dots).
func TestATokenOnlyReachesItsOwnNamespace(t *testing.T) {
	g := NewWithT(t)
	x := startExtraReceiver(t, Options{})
	nsA, nsB, nsC := namespace(t), namespace(t), namespace(t)
	tgA, tgB := newTarget(t, always(200)), newTarget(t, always(200))
	service(t, nsA, "crm", tgA)
	service(t, nsB, "crm", tgB)
	spec := webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
		Delivery:   webhooksv1alpha1.DeliverySpec{MaxAttempts: 50},
	}
	a, b, c := webhook(t, nsA, "hook", spec), webhook(t, nsB, "hook", spec), webhook(t, nsC, "hook", spec)
	for _, r := range []*webhooksv1alpha1.MeetergoWebhook{a, b, c} {
		x.sees(t, r)
	}
	bodyA, bodyB, bodyC := booking(t), booking(t), booking(t)
	for _, s := range []struct {
		w    *webhooksv1alpha1.MeetergoWebhook
		body []byte
	}{{a, bodyA}, {b, bodyB}, {c, bodyC}} {
		code, err := post(x.endpoint(s.w, 0), s.body, "application/json")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(200))
	}
	g.Eventually(tgA.accepted).Should(Equal([][]byte{bodyA}))
	g.Eventually(tgB.accepted).Should(Equal([][]byte{bodyB}))
	// C's Service does not exist: its event waits (retried), it reaches
	// neither A's nor B's Service of that name.
	g.Eventually(delivery(c)).Should(HaveField("LastError", ContainSubstring(`Service "crm" not found`)))
	g.Consistently(func() int { return len(tgA.got()) + len(tgB.got()) }).Should(Equal(2))
	for _, r := range tgA.got() {
		g.Expect(r.header.Get("X-Meetergo-Webhook")).To(Equal(nsA + "/hook"))
	}
	for _, r := range tgB.got() {
		g.Expect(r.header.Get("X-Meetergo-Webhook")).To(Equal(nsB + "/hook"))
	}
	g.Expect(kubeEventsIn(t, nsA, a)).To(HaveLen(1))
	g.Expect(kubeEventsIn(t, nsB, b)).To(HaveLen(1))
}

// kubeEventsIn waits for and returns the Received Events about w in ns.
func kubeEventsIn(t *testing.T, ns string, w *webhooksv1alpha1.MeetergoWebhook) []string {
	var notes []string
	NewWithT(t).Eventually(func() []string {
		notes = nil
		for _, e := range kubeEvents(t, w) {
			if e.Action == "Received" && e.Namespace == ns {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}).ShouldNot(BeEmpty())
	return notes
}

// TestSlowAndIdleClientsAreCutWhileEventsAreServed holds 500 idle
// connections, 50 that send their headers a byte at a time (slowloris)
// and 50 that send their bodies a byte at a time, and meanwhile posts an
// event, which must be accepted at once; then every slow connection must
// be cut by the server: idle and slow headers after ReadHeaderTimeout
// (closed without an answer), slow bodies after BodyReadTimeout (408).
func TestSlowAndIdleClientsAreCutWhileEventsAreServed(t *testing.T) {
	g := NewWithT(t)
	x := startExtraReceiver(t, Options{ReadHeaderTimeout: hostileHeaderTimeout, BodyReadTimeout: hostileBodyTimeout})
	addr := x.Addr().String()
	ns := namespace(t)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}})
	x.sees(t, w)
	path := "/hooks/" + tokens.Token(string(w.UID), 0)
	timeouts := testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeSlow))

	const idle, slowHeaders, slowBodies = 500, 50, 50
	stop := make(chan struct{})
	defer close(stop)
	type result struct {
		kind string
		res  exchangeResult
	}
	results := make(chan result, idle+slowHeaders+slowBodies)
	var conns sync.WaitGroup
	opened := make(chan struct{}, idle+slowHeaders+slowBodies)
	run := func(kind string, raw func() io.Reader) {
		conns.Go(func() {
			conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				results <- result{kind, exchangeResult{}}
				opened <- struct{}{}
				return
			}
			defer func() { _ = conn.Close() }()
			opened <- struct{}{}
			results <- result{kind, readUntilClosed(conn, raw(), 10*time.Second)}
		})
	}
	for range idle {
		run("idle", func() io.Reader { return &trickle{stop: stop} })
	}
	for range slowHeaders {
		run("slow headers", func() io.Reader {
			return &trickle{head: []byte("POST " + path + " HTTP/1.1\r\n"), tail: []byte(repeat("X-Slow: 1\r\n", 1000)), interval: 50 * time.Millisecond, stop: stop}
		})
	}
	for range slowBodies {
		run("slow body", func() io.Reader {
			body := booking(t)
			return &trickle{head: rawRequest([]string{"POST " + path + " HTTP/1.1", "Host: receiver", fmt.Sprintf("Content-Length: %d", len(body))}, nil), tail: body, interval: 50 * time.Millisecond, stop: stop}
		})
	}
	for range idle + slowHeaders + slowBodies {
		<-opened
	}

	// The receiver serves a real event while all of them hang on.
	start := time.Now()
	code, err := post(x.endpoint(w, 0), booking(t), "application/json")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(200))
	t.Logf("an event was accepted in %s while %d slow connections were open", time.Since(start).Round(time.Millisecond), idle+slowHeaders+slowBodies)

	conns.Wait()
	close(results)
	byKind := map[string][]exchangeResult{}
	for r := range results {
		byKind[r.kind] = append(byKind[r.kind], r.res)
	}
	for kind, rs := range byKind {
		var slowest time.Duration
		for _, r := range rs {
			g.Expect(r.closed).To(BeTrue(), "%s: the server must cut the connection", kind)
			switch kind {
			case "slow body":
				g.Expect(r.statuses).To(Equal([]int{408}), kind)
			case "slow headers":
				// Cut mid-line, the partial header line is malformed to
				// net/http, which may say so before closing.
				g.Expect(r.statuses).To(Or(BeEmpty(), Equal([]int{400})), kind)
			default:
				g.Expect(r.statuses).To(BeEmpty(), "%s: closed without an answer", kind)
			}
			slowest = max(slowest, r.took)
		}
		g.Expect(slowest).To(BeNumerically("<", max(hostileHeaderTimeout, hostileBodyTimeout)+slack), kind)
		t.Logf("%d %s connections: all cut, the last after %s", len(rs), kind, slowest.Round(time.Millisecond))
	}
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("none", outcomeSlow)) - timeouts).To(BeEquivalentTo(slowBodies))
	g.Eventually(delivery(w)).Should(HaveField("Received", BeEquivalentTo(1)))
	g.Expect(x.ready()).To(Succeed())
}

// readUntilClosed writes raw to conn in the background and reads answers
// until the server closes the connection or wait passes.
func readUntilClosed(conn net.Conn, raw io.Reader, wait time.Duration) exchangeResult {
	start := time.Now()
	go func() { _, _ = io.Copy(conn, raw) }()
	_ = conn.SetReadDeadline(start.Add(wait))
	var res exchangeResult
	buf := make([]byte, 4096)
	var got bytes.Buffer
	for {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			var ne net.Error
			res.closed = !(errors.As(err, &ne) && ne.Timeout())
			break
		}
	}
	res.took = time.Since(start)
	for rest := got.String(); ; {
		i := strings.Index(rest, "HTTP/1.1 ")
		if i < 0 || len(rest) < i+12 {
			break
		}
		var code int
		_, _ = fmt.Sscanf(rest[i+9:i+12], "%d", &code)
		res.statuses = append(res.statuses, code)
		rest = rest[i+12:]
	}
	return res
}
