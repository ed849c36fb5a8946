package receiver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// extraReceiver is a receiver of its own (its own manager, cache, store
// and port on 127.0.0.1) on the shared control plane, for tests that need
// options the shared one does not have: short timeouts, a rate limit, a
// small or failing store. It follows the same resources as the shared
// receiver; each receives only what is posted to it.
type extraReceiver struct {
	*Receiver
	base  string
	cache client.Reader
	logs  *syncBuffer
	// stop stops it (again: a no-op) and returns how the manager ended.
	stop func() error
}

// startExtraReceiver starts a receiver with opts (the shared receiver's
// fast settings fill what opts leave unset) and stops it when the test
// ends.
func startExtraReceiver(t *testing.T, opts Options) *extraReceiver {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	opts.BindAddress, opts.Tokens = "127.0.0.1:0", tokens
	opts.DialContext, opts.Proxy = loopbackDialer, noProxy
	if opts.TokenGracePeriod == 0 {
		opts.TokenGracePeriod = testGrace
	}
	if opts.RetryBaseDelay == 0 {
		opts.RetryBaseDelay, opts.RetryMaxDelay = testRetryBase, testRetryMax
	}
	if opts.EventInterval == 0 {
		opts.EventInterval = testEventInterval
	}
	if opts.StatusFlushInterval == 0 {
		opts.StatusFlushInterval = testFlush
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 2 * time.Second
	}
	logs := &syncBuffer{}
	mgr, err := newManager(env.Config, zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-1))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Setup(ctx, mgr, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("extra receiver did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("extra receiver: %v", err)
		}
		if t.Failed() || os.Getenv("RECEIVER_TEST_LOG") != "" {
			t.Logf("extra receiver log (last 8 KiB):\n%s", logs.tail(8<<10))
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("extra receiver: cache did not sync")
	}
	NewWithT(t).Eventually(r.started.Load).Should(BeTrue())
	return &extraReceiver{Receiver: r, base: "http://" + r.Addr().String(), cache: mgr.GetCache(), logs: logs, stop: stop}
}

// endpoint is w's URL at this receiver (generation gen).
func (x *extraReceiver) endpoint(w *webhooksv1alpha1.MeetergoWebhook, gen int64) string {
	return token.Endpoint(x.base, tokens.Token(string(w.UID), gen))
}

// sees waits until this receiver's cache holds w as the API has it now.
func (x *extraReceiver) sees(t *testing.T, w *webhooksv1alpha1.MeetergoWebhook) {
	t.Helper()
	cur := &webhooksv1alpha1.MeetergoWebhook{}
	NewWithT(t).Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(w), cur)).To(Succeed())
	NewWithT(t).Eventually(func() string {
		seen := &webhooksv1alpha1.MeetergoWebhook{}
		_ = x.cache.Get(context.Background(), client.ObjectKeyFromObject(w), seen)
		return seen.ResourceVersion
	}).Should(Equal(cur.ResourceVersion))
}

// ready runs the readiness check "receiver" as the manager's /readyz would.
func (x *extraReceiver) ready() error {
	return x.readyCheck(httptest.NewRequest(http.MethodGet, "/readyz", nil))
}

// post sends body to url and returns the status (0 and the error if no
// answer came).
func post(url string, body []byte, contentType string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// noKeepAlive is a client that opens a connection per request, so a test
// never reuses a connection a hostile request left in a strange state.
var noKeepAlive = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

// booking is a realistic booking_created body with a fresh appointment id.
func booking(t testing.TB) []byte {
	t.Helper()
	b, err := fake.Payload("booking_created", fake.PayloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeResult is what came back on a raw connection.
type exchangeResult struct {
	statuses []int
	// first is the header of the first answer.
	first http.Header
	// closed: the server closed the connection (rather than the wait
	// ending with it open).
	closed bool
	// took is the time from the first byte sent to the close (or the end
	// of the wait).
	took time.Duration
}

// exchange opens a connection to addr, writes raw from a goroutine (so a
// server that answers before reading it all cannot block the test), and
// reads answers until the server closes the connection or wait passes.
// method tells the reader which answers have no body (HEAD).
func exchange(t *testing.T, addr string, raw io.Reader, method string, wait time.Duration) exchangeResult {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	start := time.Now()
	go func() { _, _ = io.Copy(conn, raw) }()
	_ = conn.SetReadDeadline(start.Add(wait))
	br := bufio.NewReader(conn)
	var res exchangeResult
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			var ne net.Error
			res.closed = !(errors.As(err, &ne) && ne.Timeout())
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if res.statuses == nil {
			res.first = resp.Header
		}
		res.statuses = append(res.statuses, resp.StatusCode)
	}
	res.took = time.Since(start)
	return res
}

// trickle is a reader that yields head at once, then one byte of tail
// every interval, as a slow client sends.
type trickle struct {
	head, tail []byte
	interval   time.Duration
	stop       <-chan struct{}
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	if len(r.tail) == 0 {
		<-r.stop
		return 0, io.EOF
	}
	select {
	case <-r.stop:
		return 0, io.EOF
	case <-time.After(r.interval):
	}
	p[0] = r.tail[0]
	r.tail = r.tail[1:]
	return 1, nil
}

// repeat is n copies of s.
func repeat(s string, n int) string { return strings.Repeat(s, n) }
