package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
)

// TestFailoverToASecondReplica runs two replicas of the operator binary
// with leader election and short Lease times (4 s, renew deadline 3 s,
// retry 0.5 s), as a Deployment of two would: same user, namespace and
// token key, each with its own ports and data directory. Replica 1 leads
// and registers resource A; replica 2 follows, sends nothing to meetergo,
// and its receiver serves A's events all the same. Replica 1 is killed
// with SIGKILL, so its Lease is not handed back: replica 2 takes the Lease
// over once it has expired, registers resource B made after the kill, and
// delivers the events posted to it meanwhile once each; meetergo holds one
// registration per resource.
func TestFailoverToASecondReplica(t *testing.T) {
	g := NewWithT(t)
	const ns = "failover"
	const lease = 4 * time.Second
	env, err := localenv.Start(localenv.Options{
		Manager: operatorBinary(t), Namespace: ns, LeaderElection: true,
		ExtraArgs: []string{"--leader-elect-lease-duration=" + lease.String(), "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	var replicas []*localenv.Replica
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_LOG") != "" {
			for _, r := range replicas {
				t.Logf("replica %d's log:\n%s", r.N, localenv.Tail(r.Log, 60))
			}
		}
		env.Stop()
	})
	ctx := context.Background()
	c := env.K8s.Client
	start := func() *localenv.Replica {
		r, err := env.StartReplica()
		if r != nil {
			replicas = append(replicas, r)
		}
		g.Expect(err).NotTo(HaveOccurred())
		return r
	}
	isLeader := func(r *localenv.Replica) func() float64 {
		return func() float64 { return scrape(r.MetricsURL, "meetergo_operator_is_leader") }
	}
	getLease := func() *coordinationv1.Lease {
		l := &coordinationv1.Lease{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, l); err != nil {
			return nil
		}
		return l
	}
	holder := func() string {
		if l := getLease(); l != nil && l.Spec.HolderIdentity != nil {
			return *l.Spec.HolderIdentity
		}
		return ""
	}
	logOf := func(r *localenv.Replica) func() (string, error) {
		return func() (string, error) { b, err := os.ReadFile(r.Log); return string(b), err }
	}

	// Replica 1 starts alone and leads; replica 2 joins and follows.
	r1 := start()
	g.Eventually(isLeader(r1), 30*time.Second, 100*time.Millisecond).Should(Equal(1.0), "replica 1 leads")
	first := holder()
	g.Expect(first).NotTo(BeEmpty(), "the Lease names replica 1")
	r2 := start()
	g.Eventually(logOf(r2), 10*time.Second, 100*time.Millisecond).Should(ContainSubstring("campaigning for leadership"))
	g.Eventually(isLeader(r2), 5*time.Second, 100*time.Millisecond).Should(Equal(0.0), "replica 2 follows")

	// A is registered by replica 1.
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meetergo-api"},
		StringData: map[string]string{"token": localenv.Token}})).To(Succeed())
	a := echoWebhook(ns, "a")
	g.Expect(c.Create(ctx, a)).To(Succeed())
	g.Eventually(readyAndRegistered(env, a), 30*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(isLeader(r1)()).To(Equal(1.0), "replica 1 still leads")
	g.Expect(isLeader(r2)()).To(Equal(0.0), "replica 2 still follows")
	g.Expect(holder()).To(Equal(first), "the Lease still names replica 1")
	g.Expect(scrapeSum(r2.MetricsURL, "meetergo_operator_api_requests_total")).To(Equal(0.0),
		"the follower sends nothing to meetergo")

	// meetergo posts to the Service; here each replica is posted to
	// directly, on the path registered for the resource.
	post := func(r *localenv.Replica, w *webhooksv1alpha1.MeetergoWebhook) []byte {
		body, err := fake.Payload("booking_created", fake.PayloadOptions{CompanyID: localenv.CompanyID})
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := http.Post(r.ReceiverURL+registeredPath(g, env, w), "application/json", bytes.NewReader(body))
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "replica %d acknowledges", r.N)
		return body
	}
	// A follower's receiver serves.
	served := [][]byte{post(r2, a)}
	g.Eventually(echoCount(env, served), 20*time.Second, 100*time.Millisecond).Should(Equal([]int{1}),
		"an event posted to the follower reaches the echo Service")

	// Replica 1 dies without handing its Lease back.
	renewed := getLease().Spec.RenewTime.Time
	killed := time.Now()
	r1.Kill()
	t.Logf("replica 1 killed %s after its last renewal of the Lease", killed.Sub(renewed).Round(10*time.Millisecond))
	b := echoWebhook(ns, "b")
	g.Expect(c.Create(ctx, b)).To(Succeed())
	// Events keep being taken while nobody leads.
	var whileDead [][]byte
	for range 3 {
		whileDead = append(whileDead, post(r2, a))
	}
	g.Expect(isLeader(r2)()).To(Equal(0.0), "nobody leads before the Lease expires")

	g.Eventually(isLeader(r2), 3*lease, 50*time.Millisecond).Should(Equal(1.0), "replica 2 takes over")
	leading := time.Since(killed)
	next := holder()
	g.Expect(next).NotTo(BeEmpty())
	g.Expect(next).NotTo(Equal(first), "the Lease names replica 2")
	g.Eventually(readyAndRegistered(env, b), 20*time.Second, 50*time.Millisecond).Should(Succeed())
	bReady := time.Since(killed)
	t.Logf("after the SIGKILL: replica 2 led after %s, B was Ready and registered after %s (lease %s)",
		leading.Round(10*time.Millisecond), bReady.Round(10*time.Millisecond), lease)
	// A follower tries every retry period stretched by up to client-go's
	// jitter (0.5–1.1 s here): it may see the last renewal up to one try
	// after it happened, and takes over at its first try once a lease
	// duration has passed since: at most lease + 2 × 1.1 s after the kill.
	g.Expect(leading).To(BeNumerically("<", lease+3*time.Second), "the take-over comes about a lease duration after the kill")

	// Replica 2 serves both resources, each event once.
	whileDead = append(whileDead, post(r2, a), post(r2, b))
	served = append(served, whileDead...)
	ones := []int{1, 1, 1, 1, 1, 1}
	g.Expect(served).To(HaveLen(len(ones)))
	g.Eventually(echoCount(env, served), 20*time.Second, 100*time.Millisecond).Should(Equal(ones),
		"each event reaches the echo Service once")
	g.Expect(env.Echo.Deliveries()).To(HaveLen(len(served)), "no other delivery")

	// One registration per resource at meetergo: none doubled by the two
	// replicas.
	owners := map[string]int{}
	for _, w := range env.Meetergo.Webhooks(localenv.CompanyID) {
		uid, ok := registration.OwnerUID(w.Description)
		g.Expect(ok).To(BeTrue(), "registration %d is the operator's", w.ID)
		owners[uid]++
	}
	g.Expect(owners).To(Equal(map[string]int{string(a.UID): 1, string(b.UID): 1}))
	g.Expect(scrape(r2.MetricsURL, `meetergo_operator_leader_terms_total{outcome="lost"}`)).To(Equal(0.0))
	g.Expect(scrape(r2.MetricsURL, `meetergo_operator_leader_terms_total{outcome="failed"}`)).To(Equal(0.0))

	// The survivor hands the Lease back when it stops.
	r2.Stop()
	g.Expect(holder()).To(BeEmpty(), "the Lease is released on shutdown")
}

// registeredPath is the path of w's endpoint at the fake meetergo: the
// receiver token path, the same on every replica.
func registeredPath(g Gomega, env *localenv.Env, w *webhooksv1alpha1.MeetergoWebhook) string {
	for _, r := range env.Meetergo.Webhooks(localenv.CompanyID) {
		if uid, ok := registration.OwnerUID(r.Description); ok && uid == string(w.UID) {
			u, err := url.Parse(r.Endpoint)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(u.Scheme+"://"+u.Host).To(Equal(env.ReceiverURL), "every replica registers the shared URL")
			return u.EscapedPath()
		}
	}
	g.Expect(fmt.Errorf("no registration of %s at meetergo", w.Name)).NotTo(HaveOccurred())
	return ""
}

// scrapeSum adds up every series of a metric on a Prometheus endpoint; -1
// when it cannot be read.
func scrapeSum(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return -1
		}
		sum += f
	}
	return sum
}
