package receiver

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// idleBodiesHeapBound is what 500 connections that declare a 1 MB body and
// send a few bytes of it may add to the heap: the server's per-connection
// state and a body buffer that grows with the bytes received. (It used
// to be sized from Content-Length before any byte came: 1 MiB each, about
// 500 MiB here, against the chart's 256Mi limit.)
const idleBodiesHeapBound = 32 << 20

// TestIdleBodiesCostMemoryByBytesReceived holds 500 connections to the
// receiver that send their headers with Content-Length: 1000000 and then a
// few bytes of the body, and measures the heap once every request waits
// for the rest of its body.
func TestIdleBodiesCostMemoryByBytesReceived(t *testing.T) {
	const conns = 500
	g := NewWithT(t)
	var parked atomic.Int64
	all := make(chan struct{})
	x := startExtraReceiver(t, Options{BodyReadTimeout: 2 * time.Minute, hooks: &hooks{bodyWait: func() {
		if parked.Add(1) == conns {
			close(all)
		}
	}}})
	ns := namespace(t)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{EventTypes: []webhooksv1alpha1.EventType{"booking_created"}})
	x.sees(t, w)
	head := fmt.Sprintf("POST /hooks/%s HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"webhookType\":",
		tokens.Token(string(w.UID), 0))

	before := heapAfterGC()
	opened := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range opened {
			_ = c.Close()
		}
	}()
	for range conns {
		c, err := net.DialTimeout("tcp", x.Addr().String(), 10*time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		opened = append(opened, c)
		_, err = c.Write([]byte(head))
		g.Expect(err).NotTo(HaveOccurred())
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		t.Fatalf("only %d of %d requests reached their body within a minute", parked.Load(), conns)
	}
	after := heapAfterGC()
	grew := int64(after) - int64(before)
	t.Logf("heap grew by %.1f MiB for %d connections waiting for 1 MB bodies (%.1f KiB each); bound %d MiB",
		float64(grew)/(1<<20), conns, float64(grew)/conns/1024, idleBodiesHeapBound>>20)
	g.Expect(grew).To(BeNumerically("<", idleBodiesHeapBound), "heap growth for %d idle bodies", conns)
}

// heapAfterGC is the live heap after a collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestLargeBodyReadsAreBoundedWithinTheBodyDeadline: past smallBodyBytes a
// body waits for a large-body slot; with none free it gets
// os.ErrDeadlineExceeded (408) at the body deadline, or errClientGone when
// the client hangs up, having read no more than smallBodyBytes. A small
// body never waits; a slot, once free, is taken and given back.
func TestLargeBodyReadsAreBoundedWithinTheBodyDeadline(t *testing.T) {
	g := NewWithT(t)
	slots := make(chan struct{}, 1)
	slots <- struct{}{} // another large body holds the only slot
	large := bytes.Repeat([]byte("x"), 3*smallBodyBytes)

	b := &gatedBody{r: bytes.NewReader(large), slots: slots, deadline: time.Now().Add(50 * time.Millisecond)}
	got, err := io.ReadAll(b)
	g.Expect(err).To(MatchError(os.ErrDeadlineExceeded))
	g.Expect(got).To(HaveLen(smallBodyBytes), "read up to smallBodyBytes without a slot")

	gone := make(chan struct{})
	close(gone)
	b = &gatedBody{r: bytes.NewReader(large), slots: slots, deadline: time.Now().Add(time.Hour), gone: gone}
	_, err = io.ReadAll(b)
	g.Expect(err).To(MatchError(errClientGone))

	b = &gatedBody{r: bytes.NewReader(large[:smallBodyBytes-1]), slots: slots, deadline: time.Now().Add(time.Hour)}
	got, err = io.ReadAll(b)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(smallBodyBytes-1), "a small body never waits")

	<-slots // the other one is done
	b = &gatedBody{r: bytes.NewReader(large), slots: slots, deadline: time.Now().Add(time.Hour)}
	got, err = io.ReadAll(b)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(large))
	g.Expect(slots).To(HaveLen(1), "the slot is held while the body is")
	b.release()
	b.release()
	g.Expect(slots).To(BeEmpty())
}
