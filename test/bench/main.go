// Command bench measures the operator and rewrites docs/benchmarks.md with
// the figures of this run, each beside its goal or baseline. `make bench`
// builds what it needs and runs it; it is not part of `make test`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

func main() {
	out := flag.String("out", filepath.Join(testenv.RepoRoot(), "docs", "benchmarks.md"), "report to write")
	manager := flag.String("manager", filepath.Join(testenv.RepoRoot(), "bin", "manager"), "operator binary")
	companies := flag.Int("companies", 200, "companies in the reconcile-at-scale run (resources: 5 per company on average)")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	ctx := context.Background()

	r := &report{started: time.Now()}
	fmt.Println("==> Go benchmarks of the hot paths")
	r.goBench = goBenchmarks()

	fmt.Printf("==> reconcile at scale: %d companies\n", *companies)
	scale, err := reconcileAtScale(ctx, *manager, *companies)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconcile at scale:", err)
		os.Exit(1)
	}
	r.scale = scale

	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("==> wrote", *out)
}

// goBenchmarks runs the packages' testing.B benchmarks.
func goBenchmarks() string {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "./internal/...")
	cmd.Dir = testenv.RepoRoot()
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "go test -bench failed: " + err.Error() + "\n" + buf.String()
	}
	var keep []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

type report struct {
	started time.Time
	goBench string
	scale   scaleResult
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	host, _ := os.Hostname()
	cpu := cpuModel()
	p("# Benchmarks")
	p("")
	p("Written by `make bench` (`go run ./test/bench`) on %s. Every figure below comes from that run.", r.started.UTC().Format("2006-01-02 15:04 MST"))
	p("")
	p("| machine | |")
	p("|---|---|")
	p("| host | %s, %d cores (%s) |", host, runtime.NumCPU(), cpu)
	p("| Go | %s %s/%s |", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	p("| command | `make bench` |")
	p("")

	s := r.scale
	p("## Reconcile at scale")
	p("")
	p("%d MeetergoWebhooks over %d companies (2 to 8 per company), applied at once to a real kube-apiserver; the operator binary talks to the fake meetergo, which enforces production's limits (six webhooks per company, 100 requests a minute per credential with bursts of 200).", s.Resources, s.Companies)
	p("")
	p("| figure | measured | goal |")
	p("|---|---|---|")
	p("| time until every resource is Registered or QuotaExceeded | %.1f s | < 60 s %s |", s.Settled.Seconds(), verdict(s.Settled < time.Minute))
	p("| registered / waiting for a slot | %d / %d | 6 per company at most |", s.Registered, s.QuotaExceeded)
	p("| meetergo API calls to settle | %d (%.2f per resource) | |", s.APICalls, float64(s.APICalls)/float64(max(1, s.Resources)))
	p("| 429 answers from meetergo | %d | 0 %s |", s.RateLimited, verdict(s.RateLimited == 0))
	idle := s.Companies - s.WaitingCompanies
	perIdle := float64(s.SteadyListsIdle) / float64(max(1, idle*s.SteadyPeriods))
	p("| steady state: API calls per resync period (%s, measured over %d periods), all companies | %d | |", s.SteadyPeriod, s.SteadyPeriods, s.SteadyCalls)
	p("| steady state: lists per company per resync, the %d companies with no resource waiting | %.2f on average, at most %d in %d periods | at most one list per company per resync %s |", idle, perIdle, s.MaxListsIdle, s.SteadyPeriods, verdict(s.MaxListsIdle <= s.SteadyPeriods+1 && perIdle <= 1.05))
	p("| steady state: lists per company per resync, the %d companies with a resource waiting for a slot | %.2f | one per `--quota-poll-interval` (10 s) by design: a slot freed in the dashboard is noticed within seconds |", s.WaitingCompanies, float64(s.SteadyListsWaiting)/float64(max(1, s.WaitingCompanies*s.SteadyPeriods)))
	p("| operator CPU time to settle | %.2f s | |", s.CPUSettle.Seconds())
	p("")
	p("## Memory")
	p("")
	p("| operator | RSS | anonymous | file-backed | goal |")
	p("|---|---|---|---|---|")
	p("| idle, no resources | %.1f MiB | %.1f MiB | %.1f MiB | |", mib(s.RSSIdle.RSS), mib(s.RSSIdle.Anon), mib(s.RSSIdle.File))
	p("| with %d resources, after settling | %.1f MiB | %.1f MiB | %.1f MiB | RSS < 80 MiB %s |", s.Resources, mib(s.RSSLoaded.RSS), mib(s.RSSLoaded.Anon), mib(s.RSSLoaded.File), verdict(s.RSSLoaded.RSS < 80<<20))
	p("")
	p("## Hot paths (Go benchmarks)")
	p("")
	p("`go test -run '^$' -bench . -benchmem ./internal/...`; benchstat-friendly lines:")
	p("")
	p("```")
	p("%s", r.goBench)
	p("```")
	return b.String()
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(**missed**)"
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}
