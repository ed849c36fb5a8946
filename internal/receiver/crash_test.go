package receiver

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/token"
)

// The test binary runs as a receiver process when childEnv is set: the
// crash test starts it, kills it with SIGKILL and starts it again.
const (
	childEnv     = "RECEIVER_TEST_CHILD"
	childDataEnv = "RECEIVER_TEST_DATA"
)

// runChild runs a receiver against the control plane named by KUBECONFIG,
// on DataDir from childDataEnv. Its first line on stdout is "listening on
// ADDR"; it runs until killed.
func runChild() int {
	log := zap.New(zap.WriteTo(os.Stderr))
	ctrl.SetLogger(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := newManager(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := token.NewDeriver(tokenKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := ctrl.SetupSignalHandler()
	r, err := Setup(ctx, mgr, Options{
		BindAddress: "127.0.0.1:0", DataDir: os.Getenv(childDataEnv), Tokens: d,
		DialContext: loopbackDialer, Proxy: noProxy,
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond, StatusFlushInterval: 200 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening on %s\n", r.Addr())
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a receiver process.
type child struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
}

// startChild starts the test binary as a receiver on dataDir.
func startChild(t *testing.T, dataDir string) *child {
	t.Helper()
	c := &child{stderr: &syncBuffer{}}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"=1", childDataEnv+"="+dataDir, "KUBECONFIG="+env.KubeconfigPath)
	c.cmd.Stderr = c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("receiver process log:\n%s", c.stderr.tail(8<<10))
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("receiver process: %v\n%s", err, c.stderr.String())
	}
	c.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	return c
}

// kill ends the process at once, as a node failure or OOM kill would.
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

// serving waits until the child answers for w: a GET of its endpoint
// gets 405 once the server runs and the resource is in its cache.
func (c *child) serving(t *testing.T, endpoint string) {
	NewWithT(t).Eventually(func() int {
		resp, err := http.Get(endpoint)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}).Should(Equal(http.StatusMethodNotAllowed))
}

func TestAcknowledgedEventsSurviveSIGKILL(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	var down atomic.Bool
	down.Store(true)
	tg := newTarget(t, func(int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
		Delivery:   webhooksv1alpha1.DeliverySpec{MaxAttempts: 50},
	})
	dataDir := t.TempDir()
	first := startChild(t, dataDir)
	endpoint := token.Endpoint("http://"+first.addr, tokens.Token(string(w.UID), 0))
	srv := meetergo(t, endpoint, "booking_created")
	first.serving(t, endpoint)

	var mu sync.Mutex
	acked := map[string][]byte{} // appointment id -> body, answered 200
	send := func() error {
		res, err := srv.Deliver(context.Background(), "booking_created", fake.DeliverOptions{})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range res {
			if r.StatusCode == http.StatusOK {
				acked[r.AppointmentID] = r.Body
			} else if r.Err != nil {
				return r.Err
			}
		}
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	// Events acknowledged while the target is down stay pending; then
	// more arrive from four senders at once and the process is killed
	// among them.
	for range 10 {
		g.Expect(send()).To(Succeed())
	}
	var senders sync.WaitGroup
	for range 4 {
		senders.Go(func() {
			for send() == nil {
			}
		})
	}
	g.Eventually(count).Should(BeNumerically(">=", 40))
	first.kill()
	senders.Wait()
	g.Expect(tg.accepted()).To(BeEmpty(), "the target was down: everything acknowledged is pending")

	down.Store(false)
	second := startChild(t, dataDir)
	g.Expect(second.addr).NotTo(BeEmpty())

	mu.Lock()
	want := acked
	mu.Unlock()
	g.Eventually(func() []string {
		got := map[string]bool{}
		for _, b := range tg.accepted() {
			got[string(b)] = true
		}
		var missing []string
		for id, body := range want {
			if !got[string(body)] {
				missing = append(missing, id)
			}
		}
		return missing
	}, 40*time.Second).Should(BeEmpty(), "acknowledged events lost in the crash")
	t.Logf("%d events acknowledged before the kill; the target got %d deliveries after the restart", len(want), len(tg.accepted()))
}
