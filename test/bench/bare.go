package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/meetergo-operator/meetergo-operator/internal/localenv"
)

// The baseline: a bare net/http handler that reads the body and answers
// 200, in a process of its own like the operator, so that both are
// measured alike. The harness starts itself again with -serve-bare.

// serveBare runs the bare handler on addr until killed.
func serveBare(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	fmt.Fprintln(os.Stderr, srv.Serve(ln))
	os.Exit(1)
}

// bareProcess is a running bare server.
type bareProcess struct {
	addr       string
	cmd        *exec.Cmd
	unregister func()
}

func startBare() (*bareProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := localenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-bare", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			b := &bareProcess{addr: addr, cmd: cmd}
			b.unregister = onInterrupt(b.stop)
			return b, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("the bare server did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bareProcess) pid() int { return b.cmd.Process.Pid }

func (b *bareProcess) stop() {
	if b.unregister != nil {
		b.unregister()
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}
