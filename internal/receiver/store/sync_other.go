//go:build !linux

package store

import "os"

// fdatasync writes f's data to stable storage.
func fdatasync(f *os.File) error { return f.Sync() }
