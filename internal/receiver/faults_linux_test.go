//go:build linux

package receiver

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	tg, up := switchable(t)
	w := hookTo(t, x, tg)
	acked := postAcked(t, x, w, 5)

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
	acked = append(acked, acceptedAgain(t, x, w))
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

// TestAFailedDiskAnswers503AndKeepsWhatItAcknowledged puts the data
// directory on an ext4 file system of its own (a loop device) and shuts
// that file system down while the receiver runs, as the kernel does when
// the disk fails (ext4's EXT4_IOC_SHUTDOWN, without flushing its journal):
// every write then fails with EIO. The receiver answers 503 instead of
// acknowledging, the log and the readiness check say so; a receiver
// started on the file system mounted again delivers every event that was
// acknowledged before, and none that was refused. It needs root, mkfs.ext4
// and loop devices; elsewhere it is skipped.
func TestAFailedDiskAnswers503AndKeepsWhatItAcknowledged(t *testing.T) {
	g := NewWithT(t)
	dir, img := t.TempDir(), filepath.Join(t.TempDir(), "data.ext4")
	mountExt4(t, img, dir)
	tg, up := switchable(t)
	x := startExtraReceiver(t, Options{DataDir: dir, RetryBaseDelay: faultRetryBase, RetryMaxDelay: faultRetryMax})
	w := hookTo(t, x, tg)
	acked := postAcked(t, x, w, 20)

	unavailable := testutil.ToFloat64(eventsTotal.WithLabelValues("booking_created", outcomeUnavailable))
	failures := testutil.ToFloat64(commitFailures)
	shutdownFS(t, dir)
	refused := booking(t)
	code, err := post(x.endpoint(w, 0), refused, "application/json")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusServiceUnavailable), "an event the store cannot keep must not be acknowledged")
	g.Expect(x.logs.String()).To(And(ContainSubstring("storing an event"), ContainSubstring("input/output error")))
	g.Expect(x.ready()).To(MatchError(ContainSubstring("receiver store")))
	g.Expect(testutil.ToFloat64(eventsTotal.WithLabelValues("booking_created", outcomeUnavailable)) - unavailable).To(BeNumerically(">=", 1))
	g.Expect(testutil.ToFloat64(commitFailures) - failures).To(BeNumerically(">=", 1))
	// Stopping cannot write the final checkpoint; that is expected here.
	t.Logf("stopping on the failed file system: %v", x.stop())

	// The disk comes back (in a cluster: the pod is rescheduled and the
	// volume mounted again).
	unmountExt4(t, dir)
	mountExt4(t, img, dir)
	y := startExtraReceiver(t, Options{DataDir: dir, RetryBaseDelay: faultRetryBase, RetryMaxDelay: faultRetryMax})
	y.sees(t, w)
	up.Store(true)
	expectAllDelivered(t, tg, acked)
	expectNeverDelivered(t, tg, refused)
}

// mountExt4 mounts img (created with mkfs.ext4 when missing) on dir and
// unmounts it when the test ends; it skips the test where that cannot be.
func mountExt4(t *testing.T, img, dir string) {
	t.Helper()
	if _, err := os.Stat(img); err != nil {
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 64<<20); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
			t.Skipf("cannot make an ext4 file system (mkfs.ext4): %v: %s", err, out)
		}
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an ext4 image (needs root and loop devices): %v: %s", err, out)
	}
	t.Cleanup(func() { unmountExt4(t, dir) })
}

func unmountExt4(t *testing.T, dir string) {
	t.Helper()
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil || st.Dev == parent.Dev {
		return // not mounted (any more)
	}
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("unmounting %s: %v: %s", dir, err, out)
	}
}

// shutdownFS shuts down the ext4 file system holding dir, as after a disk
// failure: from then on every read and write on it fails with EIO.
func shutdownFS(t *testing.T, dir string) {
	t.Helper()
	const ext4IOCShutdown = 0x8004587d // _IOR('X', 125, __u32)
	const goingFlagsNoLogFlush = 2     // EXT4_GOING_FLAGS_NOLOGFLUSH
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	flags := uint32(goingFlagsNoLogFlush)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ext4IOCShutdown, uintptr(unsafe.Pointer(&flags))); errno != 0 {
		t.Fatalf("EXT4_IOC_SHUTDOWN: %v", errno)
	}
}
