package logindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The record log of a partition: a header followed by frames, each frame one
// zstd-compressed block of records written by one WriteLogs call. It is the
// write-ahead log (fsync'd before a write is acknowledged, replayed into Bleve after
// a crash) and the record store (records are read back by id). FORMAT.md has the
// byte layout.

const (
	recordLogName   = "records"
	recordLogMagic  = "OPLOGS"
	recordLogVer    = 1
	headerSize      = 8
	frameHeaderSize = 8
	// maxFramePayload bounds a frame's compressed size (and what a reader will
	// allocate for one).
	maxFramePayload = 256 << 20
	// maxFrameRecords is the most records one frame holds (the record index in an
	// id is 16 bits).
	maxFrameRecords = 65535
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is matched (errors.Is) by every CorruptionError.
var ErrCorrupt = errors.New("corrupt record log")

// CorruptionError says where a record log is damaged.
type CorruptionError struct {
	Path   string
	Offset int64
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt record log %q at offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxFramePayload*4))
)

// appendRecordLogHeader appends the file header.
func appendRecordLogHeader(dst []byte) []byte {
	dst = append(dst, recordLogMagic...)
	return binary.BigEndian.AppendUint16(dst, recordLogVer)
}

func checkRecordLogHeader(path string, b []byte) error {
	if len(b) < headerSize || string(b[:6]) != recordLogMagic {
		return &CorruptionError{Path: path, Offset: 0, Err: errors.New("bad magic")}
	}
	if v := binary.BigEndian.Uint16(b[6:8]); v != recordLogVer {
		return fmt.Errorf("cannot read record log %q: format version %d, this build reads %d", path, v, recordLogVer)
	}
	return nil
}

// appendFrame appends a frame holding the encoded records recs (each already
// encoded by appendRecord) to dst. scratch is reused for the uncompressed block.
func appendFrame(dst, scratch []byte, recs [][]byte) ([]byte, []byte) {
	size := binary.MaxVarintLen64
	for _, r := range recs {
		size += binary.MaxVarintLen64 + len(r)
	}
	scratch = slices.Grow(scratch[:0], size)
	scratch = binary.AppendUvarint(scratch, uint64(len(recs)))
	for _, r := range recs {
		scratch = binary.AppendUvarint(scratch, uint64(len(r)))
		scratch = append(scratch, r...)
	}
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	dst = zenc.EncodeAll(scratch, dst)
	payload := dst[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst, scratch
}

// frame is a decoded frame: the uncompressed block and where each record starts.
type frame struct {
	off  int64 // offset of the frame in the file
	end  int64 // offset just past the frame
	data []byte
	recs [][]byte // sub-slices of data

	blocksOnce sync.Once // blockList works out blocks once
	blocks     [][]int32
	blocksErr  error
}

// readFrame reads and decodes the frame at off. size is the file's valid size.
func readFrame(f io.ReaderAt, path string, off, size int64) (*frame, error) {
	if off+frameHeaderSize > size {
		return nil, &CorruptionError{Path: path, Offset: off, Err: fmt.Errorf("frame header past end of %d bytes", size)}
	}
	var hdr [frameHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return nil, fmt.Errorf("cannot read frame header at %d of %q: %w", off, path, err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:4]))
	sum := binary.LittleEndian.Uint32(hdr[4:])
	if n == 0 || n > maxFramePayload || off+frameHeaderSize+n > size {
		return nil, &CorruptionError{Path: path, Offset: off, Err: fmt.Errorf("frame length %d does not fit in %d bytes", n, size-off-frameHeaderSize)}
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, off+frameHeaderSize); err != nil {
		return nil, fmt.Errorf("cannot read frame of %d bytes at %d of %q: %w", n, off, path, err)
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, &CorruptionError{Path: path, Offset: off, Err: errors.New("checksum mismatch")}
	}
	data, err := zdec.DecodeAll(payload, nil)
	if err != nil {
		return nil, &CorruptionError{Path: path, Offset: off, Err: fmt.Errorf("cannot decompress %d bytes: %w", n, err)}
	}
	fr := &frame{off: off, end: off + frameHeaderSize + n, data: data}
	cnt, k := binary.Uvarint(data)
	if k <= 0 || cnt > maxFrameRecords {
		return nil, &CorruptionError{Path: path, Offset: off, Err: errors.New("bad record count")}
	}
	p := k
	fr.recs = make([][]byte, 0, cnt)
	for i := uint64(0); i < cnt; i++ {
		l, k := binary.Uvarint(data[p:])
		if k <= 0 || l > uint64(len(data)-p-k) {
			return nil, &CorruptionError{Path: path, Offset: off, Err: fmt.Errorf("record %d overruns the block", i)}
		}
		p += k
		fr.recs = append(fr.recs, data[p:p+int(l)])
		p += int(l)
	}
	if p != len(data) {
		return nil, &CorruptionError{Path: path, Offset: off, Err: fmt.Errorf("%d trailing bytes in block", len(data)-p)}
	}
	return fr, nil
}

// frameCache keeps the most recently read frames of a partition.
type frameCache struct {
	mu    sync.Mutex
	max   int
	items map[int64]*frame
	order []int64 // FIFO of offsets
}

func (c *frameCache) get(off int64) *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[off]
}

func (c *frameCache) put(fr *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = make(map[int64]*frame)
	}
	if _, ok := c.items[fr.off]; ok {
		return
	}
	for len(c.order) >= c.max && len(c.order) > 0 {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[fr.off] = fr
	c.order = append(c.order, fr.off)
}

// openRecordLog opens (creating if needed) a record log, checks its header and
// scans its frames. It truncates a torn or damaged tail (what a crash leaves of
// writes that were never acknowledged) and returns the valid size and the offset
// of every frame at or after verifyFrom; frames before verifyFrom (already indexed)
// are only walked, not read. damage is the error found at the tail, nil if none.
func openRecordLog(path string, verifyFrom int64) (f *os.File, size int64, frames []int64, damage error, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, nil, nil, fmt.Errorf("cannot open record log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, nil, fmt.Errorf("cannot stat record log %q: %w", path, err)
	}
	fileSize := st.Size()
	if fileSize < headerSize {
		// A crash while creating: start afresh.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, 0, nil, nil, fmt.Errorf("cannot truncate record log %q: %w", path, err)
		}
		if _, err := f.WriteAt(appendRecordLogHeader(nil), 0); err != nil {
			f.Close()
			return nil, 0, nil, nil, fmt.Errorf("cannot write record log header %q: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, 0, nil, nil, fmt.Errorf("cannot sync record log %q: %w", path, err)
		}
		return f, headerSize, nil, nil, nil
	}
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		f.Close()
		return nil, 0, nil, nil, fmt.Errorf("cannot read record log header %q: %w", path, err)
	}
	if err := checkRecordLogHeader(path, hdr[:]); err != nil {
		f.Close()
		return nil, 0, nil, nil, err
	}
	off := int64(headerSize)
	var h [frameHeaderSize]byte
	for off < fileSize {
		if off+frameHeaderSize > fileSize {
			damage = &CorruptionError{Path: path, Offset: off, Err: errors.New("torn frame header")}
			break
		}
		if _, err := f.ReadAt(h[:], off); err != nil {
			f.Close()
			return nil, 0, nil, nil, fmt.Errorf("cannot read record log %q at %d: %w", path, off, err)
		}
		n := int64(binary.LittleEndian.Uint32(h[:4]))
		if n == 0 || n > maxFramePayload || off+frameHeaderSize+n > fileSize {
			damage = &CorruptionError{Path: path, Offset: off, Err: fmt.Errorf("torn frame: length %d, %d bytes left", n, fileSize-off-frameHeaderSize)}
			break
		}
		if off >= verifyFrom {
			payload := make([]byte, n)
			if _, err := f.ReadAt(payload, off+frameHeaderSize); err != nil {
				f.Close()
				return nil, 0, nil, nil, fmt.Errorf("cannot read record log %q at %d: %w", path, off, err)
			}
			if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
				damage = &CorruptionError{Path: path, Offset: off, Err: errors.New("checksum mismatch")}
				break
			}
			frames = append(frames, off)
		}
		off += frameHeaderSize + n
	}
	if off < fileSize {
		if err := f.Truncate(off); err != nil {
			f.Close()
			return nil, 0, nil, nil, fmt.Errorf("cannot truncate damaged tail of %q at %d: %w", path, off, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, 0, nil, nil, fmt.Errorf("cannot sync record log %q: %w", path, err)
		}
	}
	return f, off, frames, damage, nil
}

// writeBuffers are the scratch space of one WriteLogs call: the records
// encoded, the uncompressed block and the frame. They are pooled: grown afresh
// for every request of 1,000 records, they made about 4 KB of garbage per
// record.
type writeBuffers struct {
	recs  []byte   // the records encoded by appendRecord
	enc   [][]byte // each record's encoding, in recs
	block []byte   // appendFrame's uncompressed block
	frame []byte   // the frame
}

var writeBufferPool = sync.Pool{New: func() any { return new(writeBuffers) }}

// maxPooledWriteBuffer is the largest buffer put back into the pool; larger
// ones (from rare huge requests) are left to the collector.
const maxPooledWriteBuffer = 16 << 20

func getWriteBuffers() *writeBuffers { return writeBufferPool.Get().(*writeBuffers) }

func putWriteBuffers(wb *writeBuffers) {
	if cap(wb.recs) > maxPooledWriteBuffer || cap(wb.block) > maxPooledWriteBuffer || cap(wb.frame) > maxPooledWriteBuffer {
		return
	}
	clear(wb.enc)
	wb.enc = wb.enc[:0]
	writeBufferPool.Put(wb)
}

// encode encodes recs into wb.recs and wb.enc.
func (wb *writeBuffers) encode(recs []Record) {
	wb.recs = wb.recs[:0]
	wb.enc = slices.Grow(wb.enc[:0], len(recs))[:len(recs)]
	for i := range recs {
		start := len(wb.recs)
		wb.recs = appendRecord(wb.recs, &recs[i])
		wb.enc[i] = wb.recs[start:len(wb.recs):len(wb.recs)]
	}
}
