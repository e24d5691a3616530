package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"outpost/internal/atomicfile"
)

// The write-ahead log: numbered segment files in <dir>/wal, each a header followed
// by checksummed records (FORMAT.md, "WAL segment"). Records are buffered in memory
// by add and written and fsync'd by sync, which covers every record buffered before
// it started: concurrent writers share one fsync.

const (
	walMagic         = "OPWAL\x00\x00\x01"
	walHeaderSize    = 8
	walRecHeaderSize = 9 // u32 length, u32 crc32c, u8 type
	// walMaxRecord bounds one record so that a damaged length field cannot make the
	// reader allocate without limit.
	walMaxRecord = 64 << 20
	// walSegmentSize is the size after which a new segment is started.
	walSegmentSize = 128 << 20

	recSeries     = 1
	recFloats     = 2
	recHistograms = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type wal struct {
	dir string

	syncMu sync.Mutex // held while writing and fsyncing; taken before mu
	mu     sync.Mutex // guards the fields below
	f      *os.File
	seg    int
	size   int64
	buf    []byte
	spare  []byte
	seq    uint64 // records added so far
	err    error  // sticky write error: the log is unusable after it

	synced atomic.Uint64 // records known durable
}

func walSegmentPath(dir string, seg int) string {
	return filepath.Join(dir, fmt.Sprintf("%08d", seg))
}

// walSegments lists the segment numbers present in dir, ascending.
func walSegments(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list wal directory %q: %w", dir, err)
	}
	var segs []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || len(e.Name()) != 8 {
			continue
		}
		segs = append(segs, n)
	}
	sort.Ints(segs)
	return segs, nil
}

// openWAL starts writing a new segment numbered seg in dir.
func openWAL(dir string, seg int) (*wal, error) {
	w := &wal{dir: dir}
	if err := w.openSegment(seg); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wal) openSegment(seg int) error {
	p := walSegmentPath(w.dir, seg)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create wal segment: %w", err)
	}
	if _, err := f.Write([]byte(walMagic)); err != nil {
		f.Close()
		return fmt.Errorf("cannot write wal segment header %q: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync wal segment %q: %w", p, err)
	}
	if err := atomicfile.SyncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f, w.seg, w.size = f, seg, walHeaderSize
	return nil
}

// appendWALRecord appends a framed record of type typ with payload to dst.
func appendWALRecord(dst []byte, typ byte, payload []byte) []byte {
	return appendWALRecord2(dst, typ, nil, payload)
}

// appendWALRecord2 appends a framed record of type typ whose payload is the
// concatenation of p1 and p2.
func appendWALRecord2(dst []byte, typ byte, p1, p2 []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p1)+len(p2)))
	crc := crc32.Update(crc32.Checksum([]byte{typ}, castagnoli), castagnoli, p1)
	crc = crc32.Update(crc, castagnoli, p2)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	dst = append(dst, typ)
	dst = append(dst, p1...)
	return append(dst, p2...)
}

// add buffers framed records (built with appendWALRecord) and returns the sequence
// number to pass to sync.
func (w *wal) add(framed []byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, framed...)
	w.size += int64(len(framed))
	w.seq++
	return w.seq, nil
}

// segment returns the number of the segment records are currently added to.
func (w *wal) segment() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seg
}

// sync returns once the record numbered seq is durable.
func (w *wal) sync(seq uint64) error {
	if w.synced.Load() >= seq {
		return nil
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced.Load() >= seq {
		return nil
	}
	return w.flushLocked()
}

// flushLocked writes and fsyncs everything buffered. syncMu must be held.
func (w *wal) flushLocked() error {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	data := w.buf
	w.buf = w.spare[:0]
	upto := w.seq
	f := w.f
	w.mu.Unlock()

	var err error
	if len(data) > 0 {
		if _, err = f.Write(data); err != nil {
			err = fmt.Errorf("cannot write wal segment %q: %w", f.Name(), err)
		} else if err = f.Sync(); err != nil {
			err = fmt.Errorf("cannot sync wal segment %q: %w", f.Name(), err)
		}
	}
	w.mu.Lock()
	w.spare = data[:0]
	if err != nil {
		w.err = err
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.synced.Store(upto)
	return nil
}

// cut makes everything buffered durable and starts a new segment; it returns the
// new segment's number. Records added afterwards go to the new segment.
func (w *wal) cut() (int, error) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if err := w.flushLocked(); err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Close(); err != nil {
		w.err = fmt.Errorf("cannot close wal segment: %w", err)
		return 0, w.err
	}
	if err := w.openSegment(w.seg + 1); err != nil {
		w.err = err
		return 0, err
	}
	return w.seg, nil
}

// removeBefore deletes the segments numbered below seg.
func (w *wal) removeBefore(seg int) error {
	segs, err := walSegments(w.dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s >= seg {
			break
		}
		if err := os.Remove(walSegmentPath(w.dir, s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove wal segment: %w", err)
		}
	}
	return atomicfile.SyncDir(w.dir)
}

func (w *wal) close() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	ferr := w.flushLocked()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return ferr
	}
	err := w.f.Close()
	w.f = nil
	if w.err == nil {
		w.err = errors.New("wal is closed")
	}
	if ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("cannot close wal segment: %w", err)
	}
	return nil
}

// decodeWALSegment calls fn for every intact record of a segment's bytes b, in
// order. It returns the length of the intact prefix and, when the segment does not
// end cleanly after it, a *CorruptionError naming path and the offset.
func decodeWALSegment(path string, b []byte, fn func(typ byte, payload []byte) error) (int64, error) {
	if len(b) < walHeaderSize || string(b[:walHeaderSize]) != walMagic {
		return 0, corruptf(path, 0, "bad wal segment header")
	}
	off := walHeaderSize
	for off < len(b) {
		if len(b)-off < walRecHeaderSize {
			return int64(off), corruptf(path, int64(off), "torn record header: %d of %d bytes", len(b)-off, walRecHeaderSize)
		}
		n := binary.LittleEndian.Uint32(b[off:])
		crc := binary.LittleEndian.Uint32(b[off+4:])
		typ := b[off+8]
		if n > walMaxRecord {
			return int64(off), corruptf(path, int64(off), "record length %d exceeds the limit %d", n, walMaxRecord)
		}
		if uint64(len(b)-off-walRecHeaderSize) < uint64(n) {
			return int64(off), corruptf(path, int64(off), "torn record: %d of %d payload bytes", len(b)-off-walRecHeaderSize, n)
		}
		payload := b[off+walRecHeaderSize : off+walRecHeaderSize+int(n)]
		if got := crc32.Update(crc32.Checksum([]byte{typ}, castagnoli), castagnoli, payload); got != crc {
			return int64(off), corruptf(path, int64(off), "record checksum %08x, want %08x", got, crc)
		}
		if err := fn(typ, payload); err != nil {
			return int64(off), &CorruptionError{File: path, Offset: int64(off), Err: err}
		}
		off += walRecHeaderSize + int(n)
	}
	return int64(off), nil
}
