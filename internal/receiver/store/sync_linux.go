package store

import (
	"os"
	"syscall"
)

// fdatasync writes f's data (not its times) to stable storage.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
