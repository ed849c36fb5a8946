package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// killChildEnv makes the test binary a writer process for
// TestAcknowledgedWritesSurviveSIGKILL: it writes to the store in the
// directory the variable names (keys prefixed with killPrefixEnv) and
// prints each event's number once its writes returned, until killed.
const (
	killChildEnv  = "STORE_TEST_KILL_CHILD"
	killPrefixEnv = "STORE_TEST_KILL_PREFIX"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir, os.Getenv(killPrefixEnv)))
	}
	os.Exit(m.Run())
}

// killBody is event i's body: some small, some large.
func killBody(key string, i int) []byte {
	n := 3 << 10
	if i%5 == 0 {
		n = 60 << 10
	}
	return append(bytes.Repeat([]byte{'a' + byte(i%26)}, n), key...)
}

func killChild(dir, prefix string) int {
	// Checkpoints every few milliseconds: the kill lands during one, or
	// between one and the log, as likely as not.
	s, err := Open(dir, Options{CheckpointInterval: 3 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				key := prefix + strconv.Itoa(i)
				in := incoming(key, "t")
				in.Body = killBody(key, i)
				acc, err := s.Accept(ctx, in)
				if err == nil && i%2 == 0 { // half of them delivered
					err = s.Finish(ctx, Key{acc.Event.Seq, "t"})
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Println(i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// TestAcknowledgedWritesSurviveSIGKILL kills a process writing to the store
// with SIGKILL, three times, and checks after each that every write that
// returned is there: events with their bodies, deliveries finished, keys
// remembered; and that the store opens and takes writes again.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	for round := range 3 {
		prefix := fmt.Sprintf("r%d-", round)
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killPrefixEnv+"="+prefix)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[int]bool{}
		sc := bufio.NewScanner(stdout)
		for len(acked) < 300 && sc.Scan() {
			i, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatal(err)
			}
			acked[i] = true
		}
		_ = cmd.Process.Kill()
		for sc.Scan() { // printed before the kill landed: acknowledged too
			if i, err := strconv.Atoi(sc.Text()); err == nil {
				acked[i] = true
			}
		}
		_ = cmd.Wait()
		if len(acked) < 300 {
			t.Fatalf("round %d: the writer stopped after %d events", round, len(acked))
		}

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: opening after SIGKILL: %v", round, err)
		}
		pending := map[string]uint64{} // event id -> seq, this round's
		if err := s.Load(func(ev Event, _ Delivery) {
			if strings.HasPrefix(ev.ID, "msg_"+prefix) {
				pending[strings.TrimPrefix(ev.ID, "msg_")] = ev.Seq
			}
		}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range acked {
			key := prefix + strconv.Itoa(i)
			seq, ok := pending[key]
			switch {
			case i%2 == 0 && ok:
				t.Errorf("round %d: event %d was delivered, but its delivery came back", round, i)
			case i%2 == 1 && !ok:
				t.Errorf("round %d: acknowledged event %d lost", round, i)
			case i%2 == 1:
				if body, err := s.Body(seq); err != nil || !bytes.Equal(body, killBody(key, i)) {
					t.Errorf("round %d: event %d: body %d bytes, %v", round, i, len(body), err)
				}
			}
			if acc, err := s.Accept(ctx, incoming(key, "t")); err != nil || !acc.Duplicate {
				t.Errorf("round %d: the key of event %d was forgotten (%+v, %v)", round, i, acc, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
