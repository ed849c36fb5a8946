package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Everything the harness starts (control planes, operator processes, the
// bare server) registers how to stop it, so that an interrupted run
// leaves nothing behind.
var interrupted struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// onInterrupt registers fn to run if the harness is interrupted; the
// returned function unregisters it.
func onInterrupt(fn func()) (remove func()) {
	interrupted.Lock()
	defer interrupted.Unlock()
	if interrupted.fns == nil {
		interrupted.fns = map[int]func(){}
	}
	id := interrupted.next
	interrupted.next++
	interrupted.fns[id] = fn
	return func() {
		interrupted.Lock()
		defer interrupted.Unlock()
		delete(interrupted.fns, id)
	}
}

// handleInterrupts stops what was started on SIGINT or SIGTERM, then exits.
func handleInterrupts() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "\n%s: stopping what was started\n", sig)
		interrupted.Lock()
		fns := make([]func(), 0, len(interrupted.fns))
		for i := interrupted.next - 1; i >= 0; i-- {
			if fn, ok := interrupted.fns[i]; ok {
				fns = append(fns, fn)
			}
		}
		interrupted.Unlock()
		for _, fn := range fns {
			fn()
		}
		os.Exit(1)
	}()
}
