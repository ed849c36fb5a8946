package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// scaleResult is what the reconcile-at-scale run measured.
type scaleResult struct {
	Companies, Resources      int
	Settled                   time.Duration
	Registered, QuotaExceeded int
	APICalls                  int
	RateLimited               int
	SteadyCalls               int // per period, all companies
	SteadyPeriods             int
	SteadyListsIdle           int // over SteadyPeriods, companies without waiters
	MaxListsIdle              int // the most one such company listed
	WaitingCompanies          int
	SteadyListsWaiting        int // over SteadyPeriods, companies with waiters
	SteadyPeriod              time.Duration
	RSSIdle, RSSLoaded        process
	CPUSettle                 time.Duration
}

// reconcileAtScale applies 1,000 MeetergoWebhooks over 200 companies to a
// real API server, with the operator binary talking to a fake meetergo
// that enforces production's limits (six per company, 100/min burst 200).
func reconcileAtScale(ctx context.Context, manager string, companies int) (scaleResult, error) {
	res := scaleResult{Companies: companies, SteadyPeriod: 20 * time.Second}
	env, err := testenv.Start()
	if err != nil {
		return res, err
	}
	defer onInterrupt(func() { _ = env.Stop() })()
	defer env.Stop()

	// Company i has 2 + i%7 resources (5 on average; those with 7 or 8 wait
	// for slots), the last companies 5 each, so that there are 5 per company.
	seed := fake.Seed{}
	for i := range companies {
		cid, uid := fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i), fmt.Sprintf("a11ce000-0000-4000-8000-%012d", i)
		seed.Companies = append(seed.Companies, fake.Company{ID: cid})
		seed.Users = append(seed.Users, fake.User{ID: uid, CompanyID: cid, Email: fmt.Sprintf("u%d@bench.example.test", i)})
		seed.Credentials = append(seed.Credentials, fake.Credential{Token: fmt.Sprintf("rgo-bench-%06d-0123456789abcdef", i), UserID: uid})
	}
	mg, err := fake.New(fake.Options{Seed: seed})
	if err != nil {
		return res, err
	}
	srv := httptest.NewServer(mg)
	defer func() { mg.Close(); srv.Close() }()

	dir, err := os.MkdirTemp("", "meetergo-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	key := filepath.Join(dir, "token.key")
	if err := os.WriteFile(key, []byte("bench-token-key-0123456789abcdef0123456789"), 0o600); err != nil {
		return res, err
	}
	logf, err := os.Create(filepath.Join(dir, "operator.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	rcvAddr, err := localenv.FreeAddr()
	if err != nil {
		return res, err
	}
	// Everything on 127.0.0.1, the store in the run's directory.
	op := exec.CommandContext(ctx, manager, "--kubeconfig", env.KubeconfigPath,
		"--health-probe-bind-address", "0", "--metrics-bind-address", "0",
		"--receiver-bind-address", rcvAddr, "--data-dir", filepath.Join(dir, "data"),
		"--meetergo-api-url", srv.URL, "--receiver-public-url", "https://hooks.bench.example.test",
		"--token-key-file", key, "--resync-period", res.SteadyPeriod.String(), "--zap-log-level", "error")
	op.Stdout, op.Stderr = logf, logf
	if err := op.Start(); err != nil {
		return res, err
	}
	stopOp := func() { _ = op.Process.Kill(); _ = op.Wait() }
	defer onInterrupt(stopOp)()
	defer stopOp()
	time.Sleep(3 * time.Second) // let the idle process settle before reading its memory
	res.RSSIdle = readProcess(op.Process.Pid)

	c := env.Client
	for i := range companies {
		ns := fmt.Sprintf("team-%03d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return res, err
		}
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meetergo-api"},
			StringData: map[string]string{"token": seed.Credentials[i].Token}}); err != nil {
			return res, err
		}
	}
	start := time.Now()
	cpu0 := readProcess(op.Process.Pid).CPU
	perCompany := func(i int) int {
		if i >= companies/7*7 {
			return 5
		}
		return 2 + i%7
	}
	for i := range companies {
		for j := range perCompany(i) {
			o := &webhooksv1alpha1.MeetergoWebhook{
				ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%03d", i), Name: fmt.Sprintf("wh-%d", j)},
				Spec: webhooksv1alpha1.MeetergoWebhookSpec{
					EventTypes:  []webhooksv1alpha1.EventType{webhooksv1alpha1.EventBookingCreated},
					Credentials: webhooksv1alpha1.Credentials{SecretRef: webhooksv1alpha1.LocalSecretReference{Name: "meetergo-api"}},
				},
			}
			if err := c.Create(ctx, o); err != nil {
				return res, err
			}
			res.Resources++
		}
	}
	for {
		reg, quota, err := settled(ctx, c)
		if err != nil {
			return res, err
		}
		if reg+quota == res.Resources {
			res.Settled = time.Since(start)
			res.Registered, res.QuotaExceeded = reg, quota
			break
		}
		if time.Since(start) > 5*time.Minute {
			return res, fmt.Errorf("not settled after 5 minutes: %d registered, %d waiting of %d", reg, quota, res.Resources)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.CPUSettle = readProcess(op.Process.Pid).CPU - cpu0
	res.APICalls, res.RateLimited = countCalls(mg)

	// Steady state: what resync periods cost, per company, over three
	// periods. Companies with a resource waiting for a slot also list every
	// quota poll interval, to notice a slot freed in the dashboard.
	before, _ := countCalls(mg)
	lists0 := listsByCredential(mg)
	const periods = 3
	time.Sleep(periods * res.SteadyPeriod)
	after, rl := countCalls(mg)
	res.SteadyCalls = (after - before) / periods
	lists1 := listsByCredential(mg)
	for i := range companies {
		n := lists1[seed.Credentials[i].Token] - lists0[seed.Credentials[i].Token]
		if perCompany(i) > 6 {
			res.WaitingCompanies++
			res.SteadyListsWaiting += n
		} else {
			res.SteadyListsIdle += n
			res.MaxListsIdle = max(res.MaxListsIdle, n)
		}
	}
	res.SteadyPeriods = periods
	res.RateLimited = rl
	res.RSSLoaded = readProcess(op.Process.Pid)
	return res, nil
}

// settled counts resources Registered and waiting for a slot.
func settled(ctx context.Context, c client.Client) (registered, quota int, err error) {
	list := &webhooksv1alpha1.MeetergoWebhookList{}
	if err := c.List(ctx, list); err != nil {
		return 0, 0, err
	}
	for _, o := range list.Items {
		cond := apimeta.FindStatusCondition(o.Status.Conditions, webhooksv1alpha1.ConditionRegistered)
		switch {
		case cond == nil:
		case cond.Reason == "Registered":
			registered++
		case cond.Reason == "QuotaExceeded":
			quota++
		}
	}
	return registered, quota, nil
}

func countCalls(mg *fake.Server) (calls, rateLimited int) {
	for _, c := range mg.Counts() {
		if strings.HasPrefix(c.Route, "/admin") {
			continue
		}
		calls += c.Requests
		rateLimited += c.RateLimited
	}
	return calls, rateLimited
}

// listsByCredential counts GET /webhooks per credential (one per company here).
func listsByCredential(mg *fake.Server) map[string]int {
	out := map[string]int{}
	for _, c := range mg.Counts() {
		if c.Method == "GET" && c.Route == "/webhooks" {
			out[c.Credential] += c.Requests
		}
	}
	return out
}
