package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// receiverResult is everything measured on the receiver: ingest against
// the bare baseline, end to end, memory and CPU, and the profile.
type receiverResult struct {
	Cfg        ingestConfig
	Hold       bool
	SmallBytes int
	LargeBytes int
	Bare       serverRun
	Receiver   serverRun
	IdleRSS    process // the operator with three resources, before load
	E2E        []e2ePhase
	E2ETime    time.Duration
	Profile    []profileEntry
	Components []component // the profile, each sample counted once
	ProfileSat phaseResult // the profiled saturation run (perf attached)
	ProfileErr error
	Fsync      time.Duration // one 4 KiB overwrite + fdatasync in the data directory: median
	FsyncP99   time.Duration // … and 99th percentile
	Err        error
}

type receiverConfig struct {
	ingestConfig
	Hold     bool
	E2ERates []float64
	E2ETime  time.Duration
	Profile  bool
}

func receiverBenchmarks(ctx context.Context, manager string, cfg receiverConfig) (res receiverResult) {
	res.Cfg, res.Hold, res.E2ETime = cfg.ingestConfig, cfg.Hold, cfg.E2ETime
	bodies, err := payloads(cfg.LargeEvery)
	if err != nil {
		res.Err = err
		return res
	}
	res.SmallBytes, res.LargeBytes = len(bodies.small), len(bodies.large)
	phases := len(cfg.Rates) + 1

	if os.Getenv("BENCH_SKIP_BARE") == "" { // for work on the receiver only
		fmt.Println("  -> bare net/http handler")
		bare, err := startBare()
		if err != nil {
			res.Err = err
			return res
		}
		res.Bare = runPhases(ctx, bareServer{bare}, bodies, cfg.ingestConfig, phases, "bare    ")
		bare.stop()
		if res.Bare.Err != nil {
			res.Err = res.Bare.Err
			return res
		}
	}

	fmt.Println("  -> the operator's receiver (control plane, fake meetergo, operator binary)")
	env, err := startOpEnv(manager)
	if err != nil {
		res.Err = err
		return res
	}
	defer env.stop()
	if err := env.target(ctx, "sink", "192.0.2.10", sink(nil)); err != nil {
		res.Err = err
		return res
	}
	if err := env.StartOperator(); err != nil {
		res.Err = err
		return res
	}
	time.Sleep(2 * time.Second)
	res.IdleRSS = readProcess(env.OperatorPID())
	settle(env.OperatorPID())
	res.Fsync, res.FsyncP99 = fsyncCost(env.WorkDir())

	// End to end first, on a fresh store; then ingest.
	if cfg.E2ETime > 0 {
		fmt.Println("  -> end to end")
		settle(env.OperatorPID())
		res.E2E, err = endToEnd(ctx, env, bodies, cfg.E2ERates, cfg.E2ETime, cfg.Conns)
		if err != nil {
			res.Err = fmt.Errorf("end to end: %w\noperator log:\n%s", err, env.logTail())
			return res
		}
	}
	rs := &receiverServer{env: env, hold: cfg.Hold}
	if os.Getenv("BENCH_SKIP_INGEST") == "" { // for work on end to end only
		fmt.Println("  -> ingest")
		res.Receiver = runPhases(ctx, rs, bodies, cfg.ingestConfig, phases, "receiver")
	}
	if res.Receiver.Err != nil {
		res.Err = fmt.Errorf("%w\noperator log:\n%s", res.Receiver.Err, env.logTail())
		return res
	}

	if cfg.Profile {
		fmt.Println("  -> CPU profile of the receiver at saturation (perf, a build of the same source with symbols)")
		res.Profile, res.Components, res.ProfileSat, res.ProfileErr = profileSaturation(ctx, env, rs, bodies, cfg.ingestConfig)
		if res.ProfileErr != nil {
			fmt.Println("    profile:", res.ProfileErr)
		}
	}
	return res
}

// profileSaturation restarts the operator from an unstripped build and
// records its stacks during a closed-loop run.
func profileSaturation(ctx context.Context, env *opEnv, rs *receiverServer, bodies *bodySet, cfg ingestConfig) ([]profileEntry, []component, phaseResult, error) {
	bin, err := buildWithSymbols(env.WorkDir())
	if err != nil {
		return nil, nil, phaseResult{}, err
	}
	env.StopOperator()
	if err := env.StartOperatorBinary(bin); err != nil {
		return nil, nil, phaseResult{}, err
	}
	t, err := rs.prepare(ctx, 99)
	if err != nil {
		return nil, nil, phaseResult{}, err
	}
	settle(env.OperatorPID())
	file := filepath.Join(env.WorkDir(), "perf.data")
	var p phaseResult
	var perf *perfRecord
	var p0, p1 process
	bodies.tag = 0xbe99ffff
	p.loadResult = closedLoop(t, bodies, cfg.SatTime, time.Second, cfg.Conns, func() {
		p0 = readProcess(env.OperatorPID())
		perf, err = startPerf(env.OperatorPID(), cfg.SatTime, file)
	}, func() { p1 = readProcess(env.OperatorPID()) })
	p.ServerCPU = p1.CPU - p0.CPU
	if err != nil {
		return nil, nil, p, err
	}
	if err := perf.wait(); err != nil {
		return nil, nil, p, err
	}
	fmt.Printf("    profiled run: %.0f/s\n", p.Throughput())
	if err := rs.finish(ctx); err != nil {
		return nil, nil, p, err
	}
	if keep := os.Getenv("BENCH_KEEP_PERF"); keep != "" { // for a closer look
		if b, err := os.ReadFile(file); err == nil {
			_ = os.WriteFile(keep, b, 0o600)
		}
	}
	entries, err := perfReport(file)
	if err != nil {
		return nil, nil, p, err
	}
	comps, err := perfComponents(file)
	return entries, comps, p, err
}

// fsyncCost times overwriting a 4 KiB page and fdatasync in dir, the unit
// of every durable commit: median and 99th percentile of 200.
func fsyncCost(dir string) (time.Duration, time.Duration) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, 0
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	page := make([]byte, 4096)
	for i := range 16 {
		_, _ = f.WriteAt(page, int64(i)*4096)
	}
	_ = f.Sync()
	lat := make([]int64, 200)
	for i := range lat {
		start := time.Now()
		_, _ = f.WriteAt(page, int64(i%16)*4096)
		_ = syscall.Fdatasync(int(f.Fd()))
		lat[i] = int64(time.Since(start))
	}
	r := loadResult{lat: lat}
	slices.Sort(r.lat)
	return r.Pct(50), r.Pct(99)
}
