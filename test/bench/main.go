// Command bench measures the operator and rewrites docs/benchmarks.md with
// the figures of this run, each beside its goal or baseline. `make bench`
// builds what it needs and runs it; it is not part of `make test`.
//
// For work on the receiver, -sections receiver runs only its part, and
// these variables shorten it further: BENCH_SKIP_BARE=1 (no bare
// baseline), BENCH_SKIP_INGEST=1 (end to end only), BENCH_KEEP_PERF=path
// (keep the profile's perf.data; -components path summarises one).
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
	sections := flag.String("sections", "gobench,receiver,scale", "sections to run (the report shows only these)")
	phase := flag.Duration("phase", 6*time.Second, "length of each fixed-rate ingest phase")
	sat := flag.Duration("saturation", 8*time.Second, "length of each saturation phase (after a 1 s warm-up)")
	conns := flag.Int("conns", 64, "connections of the load generator")
	largeEvery := flag.Int("large-every", 20, "every n-th body is about 100 KB (20: 5%)")
	hold := flag.Bool("hold", true, "suspend the ingest resources, so their deliveries are stored and wait instead of being forwarded during the run")
	e2eTime := flag.Duration("e2e", 6*time.Second, "length of each end-to-end phase")
	profile := flag.Bool("profile", true, "record a CPU profile of the receiver at saturation with perf")
	genProcs := flag.Int("gen-procs", 0, "GOMAXPROCS of this process, which generates the load (0: the default, one per core)")
	bare := flag.String("serve-bare", "", "internal: serve the bare baseline handler on this address")
	summarize := flag.String("components", "", "print the components of a perf.data file of the operator and exit")
	flag.Parse()
	if *bare != "" {
		serveBare(*bare)
		return
	}
	if *summarize != "" {
		cs, err := perfComponents(*summarize)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range cs {
			fmt.Printf("%5.1f%%  %s\n", c.Share, c.Label)
		}
		return
	}
	ctrl.SetLogger(logr.Discard())
	handleInterrupts()
	if *genProcs > 0 {
		runtime.GOMAXPROCS(*genProcs)
	}
	ctx := context.Background()
	run := map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		run[strings.TrimSpace(s)] = true
	}

	r := &report{started: time.Now(), run: run, loadBefore: loadAverage()}
	if l := loadAverage(); l != "" {
		fmt.Println("==> load average:", l, "(other processes on the machine make every figure noisier)")
	}
	if run["gobench"] {
		fmt.Println("==> Go benchmarks of the hot paths")
		r.goBench = goBenchmarks()
	}
	if run["receiver"] {
		fmt.Println("==> receiver: ingest against a bare handler, end to end, profile")
		r.receiver = receiverBenchmarks(ctx, *manager, receiverConfig{
			ingestConfig: ingestConfig{Rates: []float64{1000, 5000, 10000}, PhaseTime: *phase, SatTime: *sat, Conns: *conns, LargeEvery: *largeEvery},
			Hold:         *hold, E2ERates: []float64{100, 1000}, E2ETime: *e2eTime, Profile: *profile,
		})
		if r.receiver.Err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", r.receiver.Err)
			os.Exit(1)
		}
	}
	if run["scale"] {
		fmt.Printf("==> reconcile at scale: %d companies\n", *companies)
		scale, err := reconcileAtScale(ctx, *manager, *companies)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reconcile at scale:", err)
			os.Exit(1)
		}
		r.scale = scale
	}
	r.took = time.Since(r.started)

	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("==> wrote %s (%s)\n", *out, r.took.Round(time.Second))
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

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(**missed**)"
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
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
