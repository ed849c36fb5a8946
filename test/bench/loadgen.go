package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The load generator: plain HTTP/1.1 over a fixed pool of keep-alive
// connections to 127.0.0.1, written for this harness so that it costs as
// little CPU as possible (it shares the machine's cores with the server it
// measures): each request is one writev of a prepared header and the body,
// each answer is read with one bufio.Reader and no allocation.
//
// Open loop (fixed rate): request i is due at start + i/rate whether or not
// earlier ones were answered; a dispatcher hands due requests to the
// connections, and latency is measured from the due time, so time spent
// waiting for a free connection counts (no coordinated omission).
// Closed loop (saturation): every connection sends its next request as
// soon as the previous one is answered.

// bodySet is what a load run sends: realistic payloads, a fraction of them
// large. Each request gets its own appointment id (written into a copy of
// the template), so the receiver never sees a duplicate.
type bodySet struct {
	small, large []byte // templates
	idAt         [2]int // offset of the 36-character id in small, large
	largeEvery   int    // every n-th request is large (0: none)
	tag          uint32 // distinguishes runs: the id's first 8 hex digits
}

// newBodySet prepares templates; large may be nil.
func newBodySet(small, large []byte, largeEvery int) (*bodySet, error) {
	b := &bodySet{small: small, large: large, largeEvery: largeEvery}
	for i, t := range [][]byte{small, large} {
		if t == nil {
			continue
		}
		at := bytes.Index(t, []byte(`"id":"`))
		if at < 0 || len(t) < at+6+36 {
			return nil, errors.New("loadgen: the payload has no id")
		}
		b.idAt[i] = at + 6
	}
	if large == nil {
		b.largeEvery = 0
	}
	return b, nil
}

// body writes request i's body into buf (a per-connection copy of the
// template) and returns it.
func (b *bodySet) body(bufs *[2][]byte, i int64) []byte {
	k := 0
	if b.largeEvery > 0 && i%int64(b.largeEvery) == int64(b.largeEvery)-1 {
		k = 1
	}
	if bufs[k] == nil {
		bufs[k] = bytes.Clone([][]byte{b.small, b.large}[k])
	}
	buf := bufs[k]
	putID(buf[b.idAt[k]:b.idAt[k]+36], b.tag, uint64(i))
	return buf
}

// putID writes a uuid-shaped id: tag-0000-4000-8000-<i in 12 hex digits>.
func putID(dst []byte, tag uint32, i uint64) {
	const hex = "0123456789abcdef"
	for j := 7; j >= 0; j-- {
		dst[j] = hex[tag&15]
		tag >>= 4
	}
	copy(dst[8:24], "-0000-4000-8000-")
	for j := 35; j >= 24; j-- {
		dst[j] = hex[i&15]
		i >>= 4
	}
}

// parseID reads the request number back from an id written by putID.
func parseID(id []byte) (tag uint32, i uint64, ok bool) {
	if len(id) < 36 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(string(id[:8]), 16, 32)
	n, err2 := strconv.ParseUint(string(id[24:36]), 16, 64)
	return uint32(t), n, err1 == nil && err2 == nil
}

// loadResult is what one load run measured.
type loadResult struct {
	Rate     float64 // offered per second; 0 for closed loop
	Conns    int
	Duration time.Duration // from the first due time to the last answer
	Sent     int
	OK       int // 200 answers
	Accepted int // 200 answers saying "accepted" (the receiver's word; the bare handler says nothing)
	Failed   int // other statuses and transport errors
	// FirstError describes the first failure.
	FirstError string
	// lat are the latencies of 200 answers (nanoseconds), sorted.
	lat []int64
}

// Throughput is 200 answers per second.
func (r loadResult) Throughput() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.OK) / r.Duration.Seconds()
}

// Pct is a latency percentile (0 < p < 100).
func (r loadResult) Pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return time.Duration(r.lat[min(max(i, 0), len(r.lat)-1)])
}

// target is where load goes.
type target struct {
	addr string // host:port on 127.0.0.1
	path string
}

// conn is one keep-alive connection.
type conn struct {
	t    target
	c    net.Conn
	br   *bufio.Reader
	hdr  []byte
	bufs [2][]byte
	ans  [64]byte
}

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// do sends body and reads the answer: its status and whether its body
// says "accepted".
func (c *conn) do(body []byte) (status int, accepted bool, err error) {
	if c.c == nil {
		conn, err := net.DialTimeout("tcp", c.t.addr, 5*time.Second)
		if err != nil {
			return 0, false, err
		}
		c.c = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 4096)
		} else {
			c.br.Reset(conn)
		}
	}
	c.hdr = append(c.hdr[:0], "POST "...)
	c.hdr = append(c.hdr, c.t.path...)
	c.hdr = append(c.hdr, " HTTP/1.1\r\nHost: "...)
	c.hdr = append(c.hdr, c.t.addr...)
	c.hdr = append(c.hdr, "\r\nUser-Agent: meetergo-bench\r\nContent-Type: application/json\r\nContent-Length: "...)
	c.hdr = strconv.AppendInt(c.hdr, int64(len(body)), 10)
	c.hdr = append(c.hdr, "\r\n\r\n"...)
	bufs := net.Buffers{c.hdr, body}
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := bufs.WriteTo(c.c); err != nil {
		c.close()
		return 0, false, err
	}
	status, accepted, keep, err := c.readAnswer()
	if err != nil || !keep {
		c.close()
	}
	return status, accepted, err
}

// readAnswer parses an HTTP/1.1 answer with a Content-Length (what Go's
// server sends for short answers).
func (c *conn) readAnswer() (status int, accepted, keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, false, err
	}
	length, keep := -1, true
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return status, false, false, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return status, false, false, err
			}
		case asciiEqualFold(name, "connection") && asciiEqualFold(value, "close"):
			keep = false
		case asciiEqualFold(name, "transfer-encoding"):
			return status, false, false, errors.New("chunked answers are not expected")
		}
	}
	if length < 0 {
		return status, false, false, errors.New("answer without Content-Length")
	}
	n := min(length, len(c.ans))
	if _, err := io.ReadFull(c.br, c.ans[:n]); err != nil {
		return status, false, false, err
	}
	if _, err := c.br.Discard(length - n); err != nil {
		return status, false, false, err
	}
	return status, bytes.Contains(c.ans[:n], []byte(`"accepted"`)), keep, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// tally collects one connection's results.
type tally struct {
	ok, accepted, failed int
	firstErr             string
	lat                  []int64
}

func (t *tally) add(status int, accepted bool, err error, lat time.Duration) {
	switch {
	case err != nil:
		t.failed++
		if t.firstErr == "" {
			t.firstErr = err.Error()
		}
	case status != 200:
		t.failed++
		if t.firstErr == "" {
			t.firstErr = "HTTP " + strconv.Itoa(status)
		}
	default:
		t.ok++
		if accepted {
			t.accepted++
		}
		t.lat = append(t.lat, int64(lat))
	}
}

func merge(res *loadResult, ts []*tally) {
	for _, t := range ts {
		res.OK += t.ok
		res.Accepted += t.accepted
		res.Failed += t.failed
		if res.FirstError == "" {
			res.FirstError = t.firstErr
		}
		res.lat = append(res.lat, t.lat...)
	}
	slices.Sort(res.lat)
}

// hooks let a run observe requests: sent is called with a request's number
// and due time (as an offset from base) just before it is sent.
type hooks struct {
	base time.Time
	sent func(i int64, due time.Duration)
}

// openLoop offers rate requests a second for d over conns connections.
func openLoop(t target, bodies *bodySet, rate float64, d time.Duration, conns int, h *hooks) loadResult {
	n := int64(rate * d.Seconds())
	res := loadResult{Rate: rate, Conns: conns, Sent: int(n)}
	period := float64(time.Second) / rate
	due := make(chan int64, n)
	ts := make([]*tally, conns)
	start := time.Now().Add(20 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range conns {
		ts[w] = &tally{lat: make([]int64, 0, n/int64(conns)+16)}
		wg.Go(func() {
			c := &conn{t: t}
			defer c.close()
			for i := range due {
				at := start.Add(time.Duration(float64(i) * period))
				if h != nil && h.sent != nil {
					h.sent(i, at.Sub(h.base))
				}
				status, acc, err := c.do(bodies.body(&c.bufs, i))
				ts[w].add(status, acc, err, time.Since(at))
			}
		})
	}
	// The dispatcher hands out every request that is due, then sleeps
	// until the next one is. It sleeps in nanosleep on a thread of its own:
	// time.Sleep wakes up to a millisecond late, which would count as
	// latency of every request.
	runtime.LockOSThread()
	for i := int64(0); i < n; {
		now := time.Since(start)
		for ; i < n && float64(i)*period <= float64(now); i++ {
			due <- i
		}
		if i < n {
			ts := syscall.NsecToTimespec(int64(start.Add(time.Duration(float64(i) * period)).Sub(time.Now())))
			_ = syscall.Nanosleep(&ts, nil)
		}
	}
	runtime.UnlockOSThread()
	close(due)
	wg.Wait()
	res.Duration = time.Since(start)
	merge(&res, ts)
	return res
}

// closedLoop keeps conns requests under way for d (after a warm-up that is
// not counted) and counts what was answered; begin and end are called at
// the start and the end of the counted time.
func closedLoop(t target, bodies *bodySet, d, warmup time.Duration, conns int, begin, end func()) loadResult {
	res := loadResult{Conns: conns}
	var next atomic.Int64
	var measuring, stop atomic.Bool
	ts := make([]*tally, conns)
	var wg sync.WaitGroup
	for w := range conns {
		ts[w] = &tally{lat: make([]int64, 0, 4096)}
		wg.Go(func() {
			c := &conn{t: t}
			defer c.close()
			for !stop.Load() {
				i := next.Add(1)
				began := time.Now()
				status, acc, err := c.do(bodies.body(&c.bufs, i))
				if measuring.Load() && !stop.Load() {
					ts[w].add(status, acc, err, time.Since(began))
				}
			}
		})
	}
	time.Sleep(warmup)
	begin()
	measuring.Store(true)
	began := time.Now()
	time.Sleep(d)
	stop.Store(true)
	res.Duration = time.Since(began)
	end()
	wg.Wait()
	merge(&res, ts)
	res.Sent = res.OK + res.Failed
	return res
}
