package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// End to end: from the moment meetergo's POST is due (the open-loop
// schedule) to the moment a target Service has the event, through the
// receiver, its store, the forwarder and the loopback proxy, with two
// targets per resource.

type e2ePhase struct {
	Rate       float64
	Ack        loadResult // meetergo's side: the receiver's answers
	Expected   int        // deliveries (two per accepted event)
	Delivered  int        // deliveries the targets got in time
	Duplicates int        // deliveries of an event a target already had
	lat        []int64    // due time to a target's receipt, sorted
	ServerCPU  time.Duration
	Commits    commitStats // the store's group commits (events and delivery states)
	Peak       process     // the operator's largest RSS sample
	Busy       float64     // share of the machine's CPU in use
}

func (p e2ePhase) Pct(q float64) time.Duration {
	return loadResult{lat: p.lat}.Pct(q)
}

// e2eTargets are two targets that time what they get against the schedule.
type e2eTargets struct {
	base time.Time

	mu   sync.Mutex
	tag  uint32
	due  []atomic.Int64 // nanoseconds after base; 0 until sent
	seen [2][]bool
	lat  []int64
	dups int
}

// reset prepares for a phase of n events under tag.
func (t *e2eTargets) reset(tag uint32, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tag, t.due = tag, make([]atomic.Int64, n)
	t.seen = [2][]bool{make([]bool, n), make([]bool, n)}
	t.lat, t.dups = make([]int64, 0, 2*n), 0
}

func (t *e2eTargets) sent(i int64, due time.Duration) { t.due[i].Store(int64(due)) }

func (t *e2eTargets) got(k int, body []byte) {
	now := time.Since(t.base)
	at := bytes.Index(body, []byte(`"id":"`))
	if at < 0 {
		return
	}
	tag, i, ok := parseID(body[at+6:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok || tag != t.tag || i >= uint64(len(t.due)) {
		return
	}
	if t.seen[k][i] {
		t.dups++
		return
	}
	t.seen[k][i] = true
	t.lat = append(t.lat, int64(now)-t.due[i].Load())
}

func (t *e2eTargets) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.lat)
}

// endToEnd offers each rate for d to a resource with two targets.
func endToEnd(ctx context.Context, env *opEnv, bodies *bodySet, rates []float64, d time.Duration, conns int) ([]e2ePhase, error) {
	tg := &e2eTargets{base: time.Now()}
	for k, name := range []string{"e2e-a", "e2e-b"} {
		if err := env.target(ctx, name, fmt.Sprintf("192.0.2.%d", 11+k), sink(func(b []byte) { tg.got(k, b) })); err != nil {
			return nil, err
		}
	}
	_, path, err := env.webhook(ctx, "e2e", "e2e-a", "e2e-b")
	if err != nil {
		return nil, err
	}
	t := target{addr: env.ReceiverAddr(), path: path}
	// A few events first, so that connections to the targets are open, as
	// they would be in steady operation.
	bodies.tag = 0xe2e0ffff
	n0 := 20
	tg.reset(bodies.tag, n0)
	openLoop(t, bodies, 50, time.Duration(n0)*20*time.Millisecond, 4, &hooks{base: tg.base, sent: tg.sent})
	waitFor(func() bool { return tg.count() >= 2*n0 }, 10*time.Second)

	var out []e2ePhase
	for i, rate := range rates {
		n := int(rate * d.Seconds())
		bodies.tag = 0xe2e00000 + uint32(i)
		tg.reset(bodies.tag, n)
		p0, m0, c0 := readProcess(env.OperatorPID()), scrape(env.MetricsURL), readMachineCPU()
		smp := startSampler(env.OperatorPID())
		ack := openLoop(t, bodies, rate, d, conns, &hooks{base: tg.base, sent: tg.sent})
		waitFor(func() bool { return tg.count() >= 2*ack.Accepted }, 30*time.Second)
		peak := smp.stop()
		p := e2ePhase{Rate: rate, Ack: ack, Expected: 2 * ack.Accepted, ServerCPU: readProcess(env.OperatorPID()).CPU - p0.CPU,
			Commits: commitsBetween(m0, scrape(env.MetricsURL)), Busy: busy(c0, readMachineCPU()), Peak: peak}
		tg.mu.Lock()
		p.lat = slices.Clone(tg.lat)
		p.Duplicates = tg.dups
		tg.mu.Unlock()
		slices.Sort(p.lat)
		p.Delivered = len(p.lat)
		fmt.Printf("    %5.0f/s: %d of %d deliveries, p50 %v p99 %v p99.9 %v max %v (ack p99 %v); %.1f writes/commit, %v/commit; machine busy %.0f%%, operator %v/event\n",
			rate, p.Delivered, p.Expected, p.Pct(50), p.Pct(99), p.Pct(99.9), p.Pct(100), ack.Pct(99), p.Commits.WritesPer, p.Commits.MeanDuration, 100*p.Busy, p.ServerCPU/time.Duration(max(1, ack.Accepted)))
		out = append(out, p)
	}
	return out, nil
}

func waitFor(cond func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
