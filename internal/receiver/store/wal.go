package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// The log (write-ahead log) makes writes durable with one fdatasync per
// group of writes. It is two files, used in turn: the commit loop appends
// records of the current epoch to one; when that is sealed (see store.go)
// the checkpointer applies its epoch to the bbolt file while the loop
// goes on with the next epoch in the other file, which it overwrites from
// the start. The files are filled with zeros when they are created, so
// that an append overwrites blocks the file already has and its
// fdatasync has no file-system metadata to write.
//
// A record is
//
//	crc uint32 | length uint32 | epoch uint64 | offset uint64 | ops
//
// in little endian, the CRC (Castagnoli) over everything after it. A
// record is valid only at the offset it names and with the epoch of the
// file's first record, so a torn record, zeros, or records left from an
// earlier use of the file end the file's log.

const (
	walHeaderSize = 24
	walFilePrefix = "receiver.log."
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Kinds of op.
const (
	opPut    uint8 = 1
	opDelete uint8 = 2
	opSeq    uint8 = 3 // the events bucket's sequence is at least n
)

// op is one change to the database: a blind write, whose effect does not
// depend on what the database holds, so that applying a log again, or
// applying it to a database that already has part of it, gives the same
// result.
type op struct {
	kind   uint8
	bucket bucketID
	key    []byte
	value  []byte
	n      uint64
}

// encodeRecord encodes ops as a record of epoch at offset, in a buffer of
// its own, and points every op's key and value into it: the overlay keeps
// those, so that the caller's memory (a request body) is free once the
// write returns.
func encodeRecord(epoch uint64, offset int64, ops []op) []byte {
	n := walHeaderSize
	for i := range ops {
		o := &ops[i]
		n += 2 + binary.MaxVarintLen64
		if o.kind != opSeq {
			n += binary.MaxVarintLen64 + len(o.key) + len(o.value)
		}
	}
	buf := make([]byte, walHeaderSize, n)
	for i := range ops {
		o := &ops[i]
		buf = append(buf, o.kind, byte(o.bucket))
		if o.kind == opSeq {
			buf = binary.AppendUvarint(buf, o.n)
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(len(o.key)))
		at := len(buf)
		buf = append(buf, o.key...)
		o.key = buf[at:len(buf):len(buf)]
		buf = binary.AppendUvarint(buf, uint64(len(o.value)))
		at = len(buf)
		buf = append(buf, o.value...)
		o.value = buf[at:len(buf):len(buf)]
	}
	h := buf[:walHeaderSize]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(buf)-walHeaderSize))
	binary.LittleEndian.PutUint64(h[8:], epoch)
	binary.LittleEndian.PutUint64(h[16:], uint64(offset))
	binary.LittleEndian.PutUint32(h[0:], crc32.Checksum(buf[4:], crcTable))
	return buf
}

// errEndOfLog ends a file's log.
var errEndOfLog = errors.New("end of log")

// readRecord decodes the record at offset of data, which must be of
// epoch (0: any) and have been written at fileOffset in its file. It
// returns the record's ops, its epoch and its length.
func readRecord(data []byte, offset int64, epoch uint64, fileOffset int64) ([]op, uint64, int64, error) {
	if int64(len(data)) < offset+walHeaderSize {
		return nil, 0, 0, errEndOfLog
	}
	h := data[offset : offset+walHeaderSize]
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	e := binary.LittleEndian.Uint64(h[8:])
	if binary.LittleEndian.Uint64(h[16:]) != uint64(fileOffset) || e == 0 || (epoch != 0 && e != epoch) ||
		int64(len(data)) < offset+walHeaderSize+n {
		return nil, 0, 0, errEndOfLog
	}
	rec := data[offset+4 : offset+walHeaderSize+n]
	if crc32.Checksum(rec, crcTable) != binary.LittleEndian.Uint32(h[0:]) {
		return nil, 0, 0, errEndOfLog
	}
	ops, err := decodeOps(data[offset+walHeaderSize : offset+walHeaderSize+n])
	if err != nil {
		// A record with a valid CRC that does not decode was written by a
		// different version: refuse to guess.
		return nil, 0, 0, fmt.Errorf("store: log record at %d: %w", offset, err)
	}
	return ops, e, walHeaderSize + n, nil
}

func decodeOps(p []byte) ([]op, error) {
	var ops []op
	for len(p) > 0 {
		if len(p) < 2 {
			return nil, errors.New("truncated op")
		}
		o := op{kind: p[0], bucket: bucketID(p[1])}
		p = p[2:]
		if int(o.bucket) >= len(bucketNames) {
			return nil, fmt.Errorf("unknown bucket %d", o.bucket)
		}
		switch o.kind {
		case opSeq:
			v, k := binary.Uvarint(p)
			if k <= 0 {
				return nil, errors.New("bad sequence")
			}
			o.n, p = v, p[k:]
		case opPut, opDelete:
			var err error
			if o.key, p, err = readBytes(p); err != nil {
				return nil, err
			}
			if o.value, p, err = readBytes(p); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown op %d", o.kind)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

func readBytes(p []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || uint64(len(p)-k) < n {
		return nil, nil, errors.New("truncated op")
	}
	return p[k : k+int(n)], p[k+int(n):], nil
}

// logFile is one of the two files of the log.
type logFile struct {
	f    *os.File
	path string
	// epoch of the records being written (or waiting for a checkpoint);
	// off is where the next record goes.
	epoch uint64
	off   int64
	// size is the file's size: up to it, writes overwrite existing blocks.
	size int64
}

// openLogFile opens (or creates) a log file and tries to fill it with
// zeros up to size. A file system too small for that is no error: the log
// then grows as it is written, with slower syncs.
func openLogFile(path string, size int64) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lf := &logFile{f: f, path: path}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	lf.size = st.Size()
	if lf.size < size {
		if err := lf.fill(size); err != nil {
			// Leave the file as it was: whatever was zeroed stays usable.
			_ = f.Truncate(lf.size)
		}
	}
	// fill syncs the directory; if it could not run, the new file's entry
	// must be made durable all the same, or a power loss could take the
	// file, and the acknowledged records in it, with it.
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		return nil, err
	}
	return lf, nil
}

// fill writes zeros from the file's end up to size and syncs.
func (lf *logFile) fill(size int64) error {
	zeros := make([]byte, min(size-lf.size, 1<<20))
	for off := lf.size; off < size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), size-off)
		if _, err := lf.f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	if err := lf.f.Sync(); err != nil {
		return err
	}
	lf.size = size
	return syncDir(filepath.Dir(lf.path))
}

// read returns the records of the file's log: those of the epoch of its
// first record, up to the first that is not valid. It reads record by
// record, so memory holds the records, not the file.
func (lf *logFile) read() (epoch uint64, ops []op, err error) {
	size := lf.size
	var off int64
	var head [walHeaderSize]byte
	for off+walHeaderSize <= size {
		if _, err := lf.f.ReadAt(head[:], off); err != nil {
			return 0, nil, err
		}
		n := int64(binary.LittleEndian.Uint32(head[4:]))
		if n == 0 || off+walHeaderSize+n > size {
			break
		}
		rec := make([]byte, walHeaderSize+n)
		if _, err := lf.f.ReadAt(rec, off); err != nil {
			return 0, nil, err
		}
		got, e, _, err := readRecord(rec, 0, epoch, off)
		if errors.Is(err, errEndOfLog) {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		epoch = e
		ops = append(ops, got...)
		off += walHeaderSize + n
	}
	return epoch, ops, nil
}

// append writes a record durably at the end of the log. A failed append
// leaves the log as it was: the next one overwrites it.
func (lf *logFile) append(rec []byte) error {
	_, err := lf.f.WriteAt(rec, lf.off)
	if err == nil {
		err = fdatasync(lf.f)
	}
	if err != nil {
		// Whatever part of the record reached the file must not be read
		// as the log's continuation after a shorter record: zero it (as
		// far as the file system lets us).
		_, _ = lf.f.WriteAt(make([]byte, len(rec)), lf.off)
		return fmt.Errorf("store: writing the log: %w", err)
	}
	lf.off += int64(len(rec))
	lf.size = max(lf.size, lf.off)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}
