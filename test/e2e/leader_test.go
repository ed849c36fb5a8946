package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/registration"
)

// leaseName is the operator's leader election Lease (cmd/main.go).
const leaseName = "meetergo-operator.webhooks.meetergo-operator.io"

// TestLeaseLostAndRegainedWhileTheAPIServerIsDown runs the operator binary
// with leader election and short Lease times (4 s, renew deadline 3 s,
// retry 0.5 s), then takes the API server away until the operator loses
// its Lease. Meanwhile meetergo's events are still answered 200 and stored
// by the receiver, the process stays up and ready; once the API server is
// back the operator leads again, a resource made after the restart is
// registered, and the events of the outage reach the echo Service once
// each.
func TestLeaseLostAndRegainedWhileTheAPIServerIsDown(t *testing.T) {
	g := NewWithT(t)
	const ns = "leader"
	env, err := localenv.Start(localenv.Options{
		Manager: operatorBinary(t), Namespace: ns,
		LeaderElection: true, RestartableAPIServer: true,
		ExtraArgs: []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if (t.Failed() || os.Getenv("E2E_LOG") != "") && env.OperatorLog != "" {
			t.Logf("operator log:\n%s", localenv.Tail(env.OperatorLog, 80))
		}
		env.Stop()
	})
	g.Expect(env.StartOperator()).To(Succeed())
	ctx := context.Background()
	c := env.K8s.Client
	metric := func(series string) func() float64 {
		return func() float64 { return scrape(env.MetricsURL, series) }
	}
	isLeader := metric("meetergo_operator_is_leader")
	lost := metric(`meetergo_operator_leader_terms_total{outcome="lost"}`)

	g.Eventually(isLeader, 30*time.Second, 100*time.Millisecond).Should(Equal(1.0), "the operator leads")
	holder := func() string {
		l := &coordinationv1.Lease{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, l); err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	leaderID := holder()
	g.Expect(leaderID).NotTo(BeEmpty(), "the Lease names a holder")

	// A is registered, and its events reach the echo Service.
	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meetergo-api"},
		StringData: map[string]string{"token": localenv.Token}})).To(Succeed())
	a := echoWebhook(ns, "a")
	g.Expect(c.Create(ctx, a)).To(Succeed())
	g.Eventually(readyAndRegistered(env, a), 30*time.Second, 100*time.Millisecond).Should(Succeed())
	deliver := func() [][]byte {
		res, err := env.Meetergo.Deliver(ctx, "booking_created", fake.DeliverOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res).To(HaveLen(1))
		g.Expect(res[0].StatusCode).To(Equal(http.StatusOK), "the receiver acknowledges: %v", res[0].Err)
		return [][]byte{res[0].Body}
	}
	before := deliver()
	g.Eventually(echoCount(env, before), 20*time.Second, 100*time.Millisecond).Should(Equal([]int{1}))

	// The API server goes away until the Lease is lost.
	lostBefore := lost()
	stopped := time.Now()
	g.Expect(env.StopAPIServer()).To(Succeed())
	g.Eventually(lost, 30*time.Second, 100*time.Millisecond).Should(Equal(lostBefore+1), "the Lease is lost")
	lostAfter := time.Since(stopped)
	g.Expect(isLeader()).To(Equal(0.0))
	g.Expect(os.ReadFile(env.OperatorLog)).To(ContainSubstring("leadership lost"))
	// The next term waits for the API server before it campaigns.
	g.Eventually(func() ([]byte, error) { return os.ReadFile(env.OperatorLog) }, 10*time.Second, 100*time.Millisecond).
		Should(ContainSubstring("waiting for the API server before campaigning"))

	// Events are still acknowledged and stored; the process is up and ready.
	var during [][]byte
	for range 5 {
		during = append(during, deliver()...)
	}
	g.Expect(env.OperatorRunning()).To(BeTrue(), "the operator process runs on")
	g.Expect(httpStatus(env.ReadyzURL)).To(Equal(http.StatusOK), "the replica stays ready")

	// The API server comes back; the operator leads again and reconciles.
	g.Expect(env.StartAPIServer()).To(Succeed())
	restarted := time.Now()
	t.Logf("the API server was down for %s; the Lease was lost %s after it stopped", restarted.Sub(stopped).Round(100*time.Millisecond), lostAfter.Round(100*time.Millisecond))
	g.Eventually(isLeader, 60*time.Second, 100*time.Millisecond).Should(Equal(1.0), "the operator leads again")
	regained := time.Since(restarted)
	g.Expect(holder()).To(Equal(leaderID), "the same process holds the Lease again")

	b := echoWebhook(ns, "b")
	g.Expect(c.Create(ctx, b)).To(Succeed())
	g.Eventually(readyAndRegistered(env, b), 60*time.Second, 100*time.Millisecond).Should(Succeed())
	bReady := time.Since(restarted)
	g.Eventually(echoCount(env, during), 60*time.Second, 100*time.Millisecond).Should(Equal([]int{1, 1, 1, 1, 1}),
		"each event of the outage reaches the echo Service once")
	g.Expect(echoCount(env, before)()).To(Equal([]int{1}))
	g.Expect(env.OperatorRunning()).To(BeTrue())
	g.Expect(lost()).To(Equal(lostBefore+1), "one term lost")
	t.Logf("after the restart: leading again in %s, a new resource Ready and registered in %s",
		regained.Round(100*time.Millisecond), bReady.Round(100*time.Millisecond))

	// A stop (SIGTERM) is graceful again: the leader hands its Lease back.
	env.StopOperator()
	g.Expect(holder()).To(BeEmpty(), "the Lease is released on shutdown")
}

// echoWebhook is a resource of the local company forwarding booking_created
// to the echo Service.
func echoWebhook(ns, name string) *webhooksv1alpha1.MeetergoWebhook {
	return &webhooksv1alpha1.MeetergoWebhook{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: webhooksv1alpha1.MeetergoWebhookSpec{
			EventTypes:  []webhooksv1alpha1.EventType{webhooksv1alpha1.EventBookingCreated},
			Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
			Targets: []webhooksv1alpha1.Target{{
				Service: webhooksv1alpha1.ServiceReference{Name: "echo", Port: intstr.FromString("http")},
				Path:    "/" + name,
			}},
		},
	}
}

// readyAndRegistered checks that w is Ready and that the fake meetergo holds
// exactly one registration carrying its marker.
func readyAndRegistered(env *localenv.Env, w *webhooksv1alpha1.MeetergoWebhook) func(Gomega) {
	return func(g Gomega) {
		cur := &webhooksv1alpha1.MeetergoWebhook{}
		g.Expect(env.K8s.Client.Get(context.Background(), client.ObjectKeyFromObject(w), cur)).To(Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(cur.Status.Conditions, webhooksv1alpha1.ConditionReady)).To(BeTrue(), "Ready: %+v", cur.Status.Conditions)
		n := 0
		for _, r := range env.Meetergo.Webhooks(localenv.CompanyID) {
			if uid, ok := registration.OwnerUID(r.Description); ok && uid == string(cur.UID) {
				n++
			}
		}
		g.Expect(n).To(Equal(1), "registrations of %s at meetergo", w.Name)
	}
}

// echoCount counts, for each body, the deliveries the echo Service got of it.
func echoCount(env *localenv.Env, bodies [][]byte) func() []int {
	return func() []int {
		got := env.Echo.Deliveries()
		out := make([]int, len(bodies))
		for i, b := range bodies {
			for _, d := range got {
				if string(d.Body) == string(b) {
					out[i]++
				}
			}
		}
		return out
	}
}

// scrape reads one series (name and labels as the text format writes
// them) from a Prometheus endpoint; -1 when it cannot.
func scrape(url, series string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

func httpStatus(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
