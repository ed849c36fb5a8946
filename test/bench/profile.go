package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/testenv"
)

// The CPU profile of the receiver at saturation comes from perf (the
// operator serves no pprof): `perf record -g` on the operator process
// while the closed-loop load runs. bin/manager is stripped, so the profile
// is taken of a build of the same source with its symbol table.

// buildWithSymbols builds ./cmd into dir, unstripped.
func buildWithSymbols(dir string) (string, error) {
	out := filepath.Join(dir, "manager-symbols")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, b)
	}
	return out, nil
}

// perfRecord samples pid's stacks for d into file.
type perfRecord struct {
	cmd  *exec.Cmd
	file string
	out  bytes.Buffer
}

func startPerf(pid int, d time.Duration, file string) (*perfRecord, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("perf is not installed")
	}
	p := &perfRecord{file: file}
	p.cmd = exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", fmt.Sprint(d.Seconds()))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	return p, p.cmd.Start()
}

func (p *perfRecord) wait() error {
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("perf record: %w: %s", err, p.out.String())
	}
	return nil
}

// profileEntry is a symbol's share of the samples.
type profileEntry struct {
	Children, Self float64 // percent
	Symbol         string
}

// perfReport reads every symbol's inclusive (children) and own (self)
// share of the samples.
func perfReport(file string) ([]profileEntry, error) {
	cmd := exec.Command("perf", "report", "-i", file, "--stdio", "--children", "--sort", "sym", "-g", "none", "--percent-limit", "0.3")
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	var out []profileEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// "  12.34%  1.23%  [.] symbol ..."
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") || !strings.HasSuffix(f[1], "%") {
			continue
		}
		c, err1 := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		s, err2 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, profileEntry{Children: c, Self: s, Symbol: strings.Join(f[2:], " ")})
	}
	return out, sc.Err()
}

// component is a share of the profile, each sample counted once.
type component struct {
	Label string
	Share float64 // percent of the samples
}

// components attributes every sample to the first component (in this
// order) that any frame of its stack belongs to.
var components = []struct {
	label   string
	matches []string
}{
	{"parsing the body: `payload.Parse` (jsontext, one pass)", []string{"receiver/payload.Parse"}},
	{"duplicate key and delivery id (SHA-256)", []string{"payload.Event.DedupKey", "receiver.deliveryID", "store.newDedupEntry"}},
	{"token → resource (`router.lookup`, token HMAC)", []string{"receiver.(*router)"}},
	{"reading the body", []string{"receiver.(*handler).readBody"}},
	{"store: group commit (log record, write, `fdatasync`)", []string{"store.(*loop)", "store.(*Store).commitLoop", "store.(*logFile)"}},
	{"store: checkpoint into the bbolt file (background)", []string{"store.(*Store).checkpointLoop", "store.writeCheckpoint"}},
	{"store: `Accept` (encoding the event, handing it over)", []string{"store.(*Store).Accept", "store.(*Store).update", "store.(*Store).submit"}},
	{"forwarder (here: parking the held deliveries)", []string{"receiver/forward."}},
	{"Kubernetes Events and status figures", []string{"receiver/record.", "receiver.(*statusFlusher)"}},
	{"intake: handing the event to Events, status, forwarder", []string{"receiver.(*intake)"}},
	{"handler: answer and metrics", []string{"receiver.(*handler)"}},
	{"HTTP server (net/http: connections, requests, answers)", []string{"net/http.(*conn).serve"}},
	{"garbage collector (background)", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"Go scheduler and runtime (wake-ups, sysmon, timers)", []string{"runtime.schedule", "runtime.findRunnable", "runtime.sysmon", "runtime.mstart", "runtime.park_m", "runtime.mcall", "runtime.goexit"}},
	{"Kubernetes client and informers", []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime"}},
}

// perfComponents reads the samples' stacks with `perf script`.
func perfComponents(file string) ([]component, error) {
	cmd := exec.Command("perf", "script", "-i", file)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	counts := make([]int, len(components)+1)
	total := 0
	var stack []string
	flush := func() {
		if len(stack) == 0 {
			return
		}
		total++
		k := len(components)
	find:
		for i, c := range components {
			for _, f := range stack {
				for _, m := range c.matches {
					if strings.Contains(f, m) {
						k = i
						break find
					}
				}
			}
		}
		counts[k]++
		stack = stack[:0]
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.TrimSpace(l) == "":
			flush()
		case l[0] == '\t' || l[0] == ' ':
			stack = append(stack, l)
		default:
			flush()
		}
	}
	flush()
	if total == 0 {
		return nil, fmt.Errorf("perf script: no samples")
	}
	var res []component
	for i, n := range counts {
		label := "other (kernel work charged to no Go frame, libraries)"
		if i < len(components) {
			label = components[i].label
		}
		if n > 0 {
			res = append(res, component{Label: label, Share: 100 * float64(n) / float64(total)})
		}
	}
	slices.SortFunc(res, func(a, b component) int { return cmp.Compare(b.Share, a.Share) })
	return res, sc.Err()
}
