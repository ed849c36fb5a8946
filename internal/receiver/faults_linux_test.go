//go:build linux

package receiver

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	webhooksv1alpha1 "github.com/meetergo-operator/meetergo-operator/api/v1alpha1"
)

// TestAFullDiskAnswers503UntilSpaceFrees puts the receiver's data
// directory on a 2 MiB tmpfs, lets it take events while its target is
// down, then fills the file system with another file: events are answered
// 503 and the ready check fails; once the other file is deleted, the
// receiver takes events again by itself, and nothing acknowledged is lost.
// It needs root (mount); elsewhere it is skipped.
func TestAFullDiskAnswers503UntilSpaceFrees(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting the tmpfs: %v", err)
		}
	})
	x := startExtraReceiver(t, Options{DataDir: dir, RetryBaseDelay: faultRetryBase, RetryMaxDelay: faultRetryMax})
	x.refusals.hold = faultHold // 30 s in production
	ns := namespace(t)
	tg, up := switchable(t)
	service(t, ns, "crm", tg)
	w := webhook(t, ns, "hook", webhooksv1alpha1.MeetergoWebhookSpec{
		EventTypes: []webhooksv1alpha1.EventType{"booking_created"},
		Targets:    []webhooksv1alpha1.Target{toTarget("crm", "/")},
		Delivery:   webhooksv1alpha1.DeliverySpec{MaxAttempts: 50},
	})
	x.sees(t, w)
	var acked [][]byte
	for range 5 {
		body := booking(t)
		code, err := post(x.endpoint(w, 0), body, "application/json")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK))
		acked = append(acked, body)
	}

	// Another file takes every block left.
	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	more, refused, refusal := fillUntilRefused(t, x.endpoint(w, 0), 200)
	acked = append(acked, more...)
	t.Logf("with the disk full, %d more events fitted in free pages, then 503", len(more))
	g.Expect(refusal).To(Equal(answers[outcomeUnavailable].text))
	g.Expect(x.logs.String()).To(And(ContainSubstring("storing an event"), ContainSubstring("no space left on device")))
	g.Expect(x.ready()).To(MatchError(ContainSubstring("receiver store")))

	// Space comes back.
	g.Expect(os.Remove(filler)).To(Succeed())
	g.Eventually(x.ready, 30*time.Second).Should(Succeed())
	var last []byte
	g.Eventually(func() int {
		last = booking(t)
		code, _ := post(x.endpoint(w, 0), last, "application/json")
		return code
	}, 30*time.Second).Should(Equal(http.StatusOK))
	acked = append(acked, last)
	up.Store(true)
	expectAllDelivered(t, tg, acked)
	expectNeverDelivered(t, tg, refused)
}

// fillDisk writes path until its file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	chunk := make([]byte, 64<<10)
	for range 1 << 12 { // at most 256 MiB, far more than the 2 MiB tmpfs
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				for range 1 << 12 { // the last blocks, 512 bytes at a time
					if _, err := f.Write(chunk[:512]); err != nil {
						return
					}
				}
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the file system did not fill")
}
