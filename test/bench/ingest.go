package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
	"github.com/meetergo-operator/meetergo-operator/internal/meetergo/fake"
)

// Receiver ingest: the same open-loop and closed-loop load, the same
// bodies, against the bare handler and against the operator's receiver.

// ingestConfig shapes the ingest runs.
type ingestConfig struct {
	Rates      []float64     // offered rates of the open-loop phases
	PhaseTime  time.Duration // each open-loop phase
	SatTime    time.Duration // the closed-loop phase (after a 1 s warm-up)
	Conns      int           // connections, open and closed loop
	LargeEvery int           // every n-th body is ~100 KB
}

// phaseResult is one phase against one server.
type phaseResult struct {
	loadResult
	ServerCPU time.Duration // the server process's CPU time during the phase
	GenCPU    time.Duration // this process's (the load generator's)
	Peak      process       // the server's largest RSS sample
	Commits   commitStats   // the receiver's group commits
	Busy      float64       // share of the machine's CPU in use
	CPUSplit  [2]machineCPU // /proc/stat at the start and the end
}

// CPUPer1000 is the server's CPU time per 1,000 answered requests.
func (p phaseResult) CPUPer1000() time.Duration {
	if p.OK == 0 {
		return 0
	}
	return p.ServerCPU * 1000 / time.Duration(p.OK)
}

// GenCPUPer1000 is the generator's CPU time per 1,000 answered requests.
func (p phaseResult) GenCPUPer1000() time.Duration {
	if p.OK == 0 {
		return 0
	}
	return p.GenCPU * 1000 / time.Duration(p.OK)
}

// serverRun is every phase against one server.
type serverRun struct {
	Fixed []phaseResult
	Sat   phaseResult
	Peak  process
	Err   error
}

// server is what the phases run against.
type server interface {
	pid() int
	// prepare returns where the next phase sends to.
	prepare(ctx context.Context, phase int) (target, error)
	// finish cleans up after a phase.
	finish(ctx context.Context) error
	// scrape reads the server's metrics (empty for the bare handler).
	scrape() metrics
}

func runPhases(ctx context.Context, s server, bodies *bodySet, cfg ingestConfig, phases int, progress string) serverRun {
	var run serverRun
	for i := range phases {
		rate := 0.0
		if i < len(cfg.Rates) {
			rate = cfg.Rates[i]
		}
		p, err := runPhase(ctx, s, bodies, cfg, i, rate)
		if err != nil {
			run.Err = err
			return run
		}
		if p.Peak.RSS > run.Peak.RSS {
			run.Peak = p.Peak
		}
		if rate > 0 {
			fmt.Printf("    %s %6.0f/s offered: %8.0f/s answered, p50 %v p99 %v p99.9 %v, failed %d\n", progress, rate, p.Throughput(), p.Pct(50), p.Pct(99), p.Pct(99.9), p.Failed)
			run.Fixed = append(run.Fixed, p)
		} else {
			a, b := p.CPUSplit[0], p.CPUSplit[1]
			t := b.Total - a.Total
			fmt.Printf("    %s saturation (%d conns): %8.0f/s, p50 %v p99 %v, failed %d; machine busy %.0f%% (user %.0f%%, sys %.0f%%, softirq %.0f%%, steal %.0f%%, iowait %.0f%%); server %v/1000, generator %v/1000\n", progress, p.Conns, p.Throughput(), p.Pct(50), p.Pct(99), p.Failed,
				100*p.Busy, 100*(b.User-a.User)/t, 100*(b.System-a.System)/t, 100*(b.SoftIRQ-a.SoftIRQ)/t, 100*(b.Steal-a.Steal)/t, 100*(b.IOWait-a.IOWait)/t, p.CPUPer1000(), p.GenCPUPer1000())
			run.Sat = p
		}
	}
	return run
}

func runPhase(ctx context.Context, s server, bodies *bodySet, cfg ingestConfig, i int, rate float64) (phaseResult, error) {
	var p phaseResult
	t, err := s.prepare(ctx, i)
	if err != nil {
		return p, err
	}
	settle(s.pid())
	bodies.tag = uint32(0xbe000000) + uint32(i)<<16 + uint32(time.Now().Unix()&0xffff)
	smp := startSampler(s.pid())
	var m0, m1 metrics
	var p0, p1, g0, g1 process
	begin := func() {
		m0, p0, g0 = s.scrape(), readProcess(s.pid()), readProcess(os.Getpid())
		p.CPUSplit[0] = readMachineCPU()
	}
	end := func() {
		p.CPUSplit[1] = readMachineCPU()
		p1, g1, m1 = readProcess(s.pid()), readProcess(os.Getpid()), s.scrape()
	}
	if rate > 0 {
		begin()
		p.loadResult = openLoop(t, bodies, rate, cfg.PhaseTime, cfg.Conns, nil)
		end()
	} else {
		p.loadResult = closedLoop(t, bodies, cfg.SatTime, time.Second, cfg.Conns, begin, end)
	}
	p.Peak = smp.stop()
	p.ServerCPU, p.GenCPU = p1.CPU-p0.CPU, g1.CPU-g0.CPU
	p.Commits = commitsBetween(m0, m1)
	p.Busy = busy(p.CPUSplit[0], p.CPUSplit[1])
	if p.Failed > 0 && p.FirstError != "" {
		fmt.Printf("    (%d failed, first: %s)\n", p.Failed, p.FirstError)
	}
	return p, s.finish(ctx)
}

// settle starts a phase on a quiet machine: what earlier phases wrote is
// flushed to disk, and the server has finished its own work (a store
// checkpoint, dropping deliveries), or 60 s have passed.
func settle(pid int) {
	start := time.Now()
	syscall.Sync()
	for time.Since(start) < time.Minute {
		before := readProcess(pid).CPU
		time.Sleep(250 * time.Millisecond)
		if readProcess(pid).CPU-before <= 20*time.Millisecond {
			if d := time.Since(start); d > 2*time.Second {
				fmt.Printf("    (the server took %s to settle after the last phase)\n", d.Round(100*time.Millisecond))
			}
			return
		}
	}
	fmt.Println("    (the server was still busy a minute after the last phase)")
}

// sampler keeps the largest RSS a process shows while it runs.
type sampler struct {
	stopped chan struct{}
	done    chan process
}

func startSampler(pid int) *sampler {
	s := &sampler{stopped: make(chan struct{}), done: make(chan process, 1)}
	go func() {
		var peak process
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if p := readProcess(pid); p.RSS > peak.RSS {
				peak = p
			}
			select {
			case <-s.stopped:
				s.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() process {
	close(s.stopped)
	return <-s.done
}

// bareServer adapts the bare process.
type bareServer struct{ *bareProcess }

func (b bareServer) prepare(context.Context, int) (target, error) {
	return target{addr: b.addr, path: "/hooks/bare"}, nil
}
func (b bareServer) finish(context.Context) error { return nil }
func (b bareServer) scrape() metrics              { return metrics{} }

// receiverServer sends each phase to a fresh MeetergoWebhook whose one
// target is a sink Service. With hold, the resource is suspended during
// the phase, so its deliveries are stored and wait (the phase measures
// taking events in, not forwarding them); after the phase the resource is
// deleted, which drops what it held, so every phase starts with an empty
// store.
type receiverServer struct {
	env  *opEnv
	hold bool
	hook *webhooksv1alpha1.MeetergoWebhook
}

func (r *receiverServer) pid() int        { return r.env.OperatorPID() }
func (r *receiverServer) scrape() metrics { return scrape(r.env.MetricsURL) }

func (r *receiverServer) prepare(ctx context.Context, phase int) (target, error) {
	hook, path, err := r.env.webhook(ctx, fmt.Sprintf("ingest-%d", phase), "sink")
	if err != nil {
		return target{}, err
	}
	r.hook = hook
	if r.hold {
		if err := r.env.setSuspend(ctx, hook, true); err != nil {
			return target{}, err
		}
		time.Sleep(time.Second) // for the receiver's cache to see it
	}
	return target{addr: r.env.ReceiverAddr(), path: path}, nil
}

func (r *receiverServer) finish(ctx context.Context) error {
	if r.hook == nil {
		return nil
	}
	if err := client.IgnoreNotFound(r.env.K8s.Client.Delete(ctx, r.hook)); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m := r.scrape()
		err := r.env.K8s.Client.Get(ctx, client.ObjectKeyFromObject(r.hook), r.hook)
		held := m.sum("meetergo_operator_delivery_queue_depth")
		if errors.IsNotFound(err) && held == 0 {
			r.hook = nil
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after a phase, %v deliveries still held 2 minutes after deleting the resource (%v)", held, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sink is a target's handler: it reads the body and answers 200, and
// calls got, if set, with each body.
func sink(got func([]byte)) http.Handler {
	pool := sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bp := pool.Get().(*[]byte)
		b := (*bp)[:0]
		for {
			if len(b) == cap(b) {
				b = append(b, 0)[:len(b)]
			}
			n, err := r.Body.Read(b[len(b):cap(b)])
			b = b[:len(b)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		if got != nil {
			got(b)
		}
		*bp = b
		pool.Put(bp)
		w.WriteHeader(http.StatusOK)
	})
}

// payloads are the bodies of every run: booking_created from the fake,
// padded to about 3 KB (meetergo's typical size, as in the baselines),
// every LargeEvery-th padded to about 100 KB (meetergo's largest).
func payloads(largeEvery int) (*bodySet, error) {
	small, err := fake.Payload("booking_created", fake.PayloadOptions{CompanyID: localenv.CompanyID, PadBytes: 3 << 10})
	if err != nil {
		return nil, err
	}
	large, err := fake.Payload("booking_created", fake.PayloadOptions{CompanyID: localenv.CompanyID, PadBytes: 100_000})
	if err != nil {
		return nil, err
	}
	return newBodySet(small, large, largeEvery)
}
