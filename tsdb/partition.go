package tsdb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"

	"outpost/internal/atomicfile"
)

// Partition files: the immutable compressed store of one time range
// (FORMAT.md, "Partition file"). A partition is written under a temporary name,
// fsync'd and renamed; it is never modified afterwards, only deleted whole.

const (
	partMagic = "OPTP"
	// partVersion is the version written. Version 2 files (no float runs
	// with a time range, runFloatSpan) and version 1 files (also one frame per
	// series, without in-frame positions in the index) are still read.
	partVersion    = 3
	partHeaderSize = 8
	partFooterSize = 40
	partSuffix     = ".part"

	compNone = 0
	compZstd = 1

	// maxChunkSize bounds a decompressed frame.
	maxChunkSize = 256 << 20

	// frameTarget is the decompressed size after which a frame is closed: the
	// series chunks of neighbouring series (in label order) share a frame, so
	// that one zstd frame's tables and headers are paid for many series.
	frameTarget = 16 << 10
)

var (
	zenc, _ = zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithAllLitEntropyCompression(true),
		zstd.WithEncoderConcurrency(1),
		// Frames are small and indexes a few MiB at most: a 1 MiB window
		// compresses them as well as the 8 MiB default and keeps the encoder's
		// history buffers small.
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(true))
	zdec, _ = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxChunkSize))
)

// chunkRef locates one series' chunk in a partition.
type chunkRef struct {
	off, length uint64 // the whole frame record holding the chunk, checksum included
	// inOff, inLen locate the series chunk in the decompressed frame; inLen 0
	// means the whole frame (version 1 files).
	inOff, inLen uint32
	mint, maxt   int64
	n            uint64 // samples
}

type partition struct {
	path       string
	seq        uint64 // order of creation; a higher seq wins on equal timestamps
	mint, maxt int64
	size       int64
	f          *os.File
	series     *partRefs // chunks by DB series id
}

// partSeries is one series handed to writePartition.
type partSeries struct {
	lset    labels.Labels
	id      uint32
	samples []sample // sorted by t, unique t, non-empty
}

// appendChunkRecord appends the framed, possibly compressed frame record of raw.
func appendChunkRecord(dst, raw []byte) []byte {
	start := len(dst)
	comp := zenc.EncodeAll(raw, nil)
	if len(comp) < len(raw) {
		dst = append(dst, compZstd)
		dst = binary.AppendUvarint(dst, uint64(len(comp)))
		dst = append(dst, comp...)
	} else {
		dst = append(dst, compNone)
		dst = binary.AppendUvarint(dst, uint64(len(raw)))
		dst = append(dst, raw...)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeChunkRecord verifies a frame record and returns its decompressed bytes.
func decodeChunkRecord(rec []byte) ([]byte, error) {
	if len(rec) < 6 {
		return nil, fmt.Errorf("%w: chunk record of %d bytes is too short", errFormat, len(rec))
	}
	body := rec[:len(rec)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(rec[len(rec)-4:]); got != want {
		return nil, fmt.Errorf("%w: chunk checksum %08x, want %08x", errFormat, got, want)
	}
	comp := body[0]
	n, k := binary.Uvarint(body[1:])
	if k <= 0 || n != uint64(len(body)-1-k) {
		return nil, fmt.Errorf("%w: chunk length field does not match the record", errFormat)
	}
	data := body[1+k:]
	switch comp {
	case compNone:
		return data, nil
	case compZstd:
		out, err := zdec.DecodeAll(data, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot decompress chunk: %v", errFormat, err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: unknown chunk compression %d", errFormat, comp)
	}
}

// writePartition writes n series, produced in label order by next(0..n-1), into a
// new partition file in dir and returns it opened; its time range is that of the
// samples. A series with no samples is left out; when no series has any, no file
// is written and the partition is nil. next's samples are not kept past the
// following call.
func writePartition(dir string, seq uint64, n int, next func(i int) (partSeries, error)) (*partition, error) {
	tmp := filepath.Join(dir, fmt.Sprintf(".tmp-%020d%s", seq, partSuffix))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create partition: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()

	buf := make([]byte, 0, 1<<20)
	buf = append(buf, partMagic...)
	buf = append(buf, partVersion, 0, 0, 0)
	off := uint64(0)
	flush := func() error {
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("cannot write partition %q: %w", tmp, err)
		}
		off += uint64(len(buf))
		buf = buf[:0]
		return nil
	}

	type entry struct {
		lset labels.Labels
		id   uint32
		ref  chunkRef
	}
	var (
		entries []entry // every series written, in label order
		pending int     // entries[pending:] are in the open frame
		frame   []byte  // the open frame, decompressed
	)
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	closeFrame := func() error {
		if len(frame) == 0 {
			return nil
		}
		start := off + uint64(len(buf))
		buf = appendChunkRecord(buf, frame)
		length := off + uint64(len(buf)) - start
		for i := pending; i < len(entries); i++ {
			entries[i].ref.off, entries[i].ref.length = start, length
		}
		pending, frame = len(entries), frame[:0]
		if len(buf) >= 1<<20 {
			return flush()
		}
		return nil
	}
	var enc blockEncoder
	for i := 0; i < n; i++ {
		s, err := next(i)
		if err != nil {
			return nil, err
		}
		if len(s.samples) == 0 {
			continue
		}
		at := len(frame)
		frame = enc.appendSeriesChunk(frame, s.samples)
		if len(frame)-at > math.MaxUint32 || len(frame) > maxChunkSize {
			return nil, fmt.Errorf("cannot write partition %q: series chunk of %d bytes is too large", tmp, len(frame)-at)
		}
		ref := chunkRef{
			inOff: uint32(at),
			inLen: uint32(len(frame) - at),
			mint:  s.samples[0].t,
			maxt:  s.samples[len(s.samples)-1].t,
			n:     uint64(len(s.samples)),
		}
		mint, maxt = min(mint, ref.mint), max(maxt, ref.maxt)
		entries = append(entries, entry{lset: s.lset, id: s.id, ref: ref})
		if len(frame) >= frameTarget {
			if err := closeFrame(); err != nil {
				return nil, err
			}
		}
	}
	if err := closeFrame(); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, nil // the deferred cleanup removes the file
	}
	ids := make([]uint32, len(entries))
	crefs := make([]chunkRef, len(entries))
	index := binary.AppendUvarint(nil, uint64(len(entries)))
	for i, e := range entries {
		ids[i], crefs[i] = e.id, e.ref
		index = appendLabels(index, e.lset)
		index = binary.AppendUvarint(index, e.ref.off)
		index = binary.AppendUvarint(index, e.ref.length)
		index = binary.AppendUvarint(index, uint64(e.ref.inOff))
		index = binary.AppendUvarint(index, uint64(e.ref.inLen))
		index = binary.AppendVarint(index, e.ref.mint)
		index = binary.AppendVarint(index, e.ref.maxt)
		index = binary.AppendUvarint(index, e.ref.n)
	}
	indexOff := off + uint64(len(buf))
	cidx := zenc.EncodeAll(index, nil)
	buf = append(buf, cidx...)
	buf = binary.LittleEndian.AppendUint64(buf, indexOff)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(cidx)))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(mint))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(maxt))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(cidx, castagnoli))
	buf = append(buf, partMagic...)
	if err := flush(); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("cannot sync partition %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("cannot close partition %q: %w", tmp, err)
	}
	final := filepath.Join(dir, fmt.Sprintf("p-%d-%d-%020d%s", mint, maxt, seq, partSuffix))
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("cannot rename partition: %w", err)
	}
	ok = true
	if err := atomicfile.SyncDir(dir); err != nil {
		return nil, err
	}
	rf, err := os.Open(final)
	if err != nil {
		return nil, fmt.Errorf("cannot open partition: %w", err)
	}
	return &partition{path: final, seq: seq, mint: mint, maxt: maxt, size: int64(off), f: rf, series: newPartRefs(mint, ids, crefs)}, nil
}

func appendLabels(dst []byte, lset labels.Labels) []byte {
	dst = binary.AppendUvarint(dst, uint64(lset.Len()))
	lset.Range(func(l labels.Label) {
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	})
	return dst
}

func (r *blockReader) labels(b *labels.ScratchBuilder) labels.Labels {
	n := r.uvarint()
	if r.err != nil {
		return labels.EmptyLabels()
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("label count %d exceeds buffer", n)
		return labels.EmptyLabels()
	}
	b.Reset()
	for i := uint64(0); i < n; i++ {
		name := r.bytes(r.uvarint())
		value := r.bytes(r.uvarint())
		if r.err != nil {
			return labels.EmptyLabels()
		}
		b.Add(string(name), string(value))
	}
	b.Sort()
	return b.Labels()
}

// partitionIndex is the decoded index of a partition file: its series, in file
// order, with their chunk references.
type partitionIndex struct {
	mint, maxt int64
	lsets      []labels.Labels
	refs       []chunkRef
}

// readPartitionIndex verifies the footer and the index of the partition file f of
// the given size and decodes the index.
func readPartitionIndex(path string, f io.ReaderAt, size int64) (*partitionIndex, error) {
	if size < partHeaderSize+partFooterSize {
		return nil, corruptf(path, 0, "file of %d bytes is shorter than header and footer", size)
	}
	hdr := make([]byte, partHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("cannot read partition %q: %w", path, err)
	}
	if string(hdr[:4]) != partMagic {
		return nil, corruptf(path, 0, "bad magic %q", hdr[:4])
	}
	version := hdr[4]
	if version < 1 || version > partVersion {
		return nil, fmt.Errorf("cannot read partition %q: format version %d is not supported (want 1 to %d)", path, version, partVersion)
	}
	foot := make([]byte, partFooterSize)
	if _, err := f.ReadAt(foot, size-partFooterSize); err != nil {
		return nil, fmt.Errorf("cannot read partition %q: %w", path, err)
	}
	if string(foot[36:]) != partMagic {
		return nil, corruptf(path, size-partFooterSize, "bad footer magic (truncated file?)")
	}
	idxOff := binary.LittleEndian.Uint64(foot)
	idxLen := binary.LittleEndian.Uint64(foot[8:])
	pi := &partitionIndex{
		mint: int64(binary.LittleEndian.Uint64(foot[16:])),
		maxt: int64(binary.LittleEndian.Uint64(foot[24:])),
	}
	crc := binary.LittleEndian.Uint32(foot[32:])
	if idxOff < partHeaderSize || idxLen > uint64(size) || idxOff+idxLen != uint64(size-partFooterSize) {
		return nil, corruptf(path, size-partFooterSize, "index at %d+%d does not end at the footer (file size %d)", idxOff, idxLen, size)
	}
	cidx := make([]byte, idxLen)
	if _, err := f.ReadAt(cidx, int64(idxOff)); err != nil {
		return nil, fmt.Errorf("cannot read partition %q: %w", path, err)
	}
	if got := crc32.Checksum(cidx, castagnoli); got != crc {
		return nil, corruptf(path, int64(idxOff), "index checksum %08x, want %08x", got, crc)
	}
	idx, err := zdec.DecodeAll(cidx, nil)
	if err != nil {
		return nil, corruptf(path, int64(idxOff), "cannot decompress index: %v", err)
	}
	r := &blockReader{b: idx}
	n := r.uvarint()
	if n > uint64(len(idx)) {
		r.fail("series count %d exceeds index size", n)
	}
	var sb labels.ScratchBuilder
	for i := uint64(0); i < n && r.err == nil; i++ {
		lset := r.labels(&sb)
		ref := chunkRef{off: r.uvarint(), length: r.uvarint()}
		if version >= 2 {
			inOff, inLen := r.uvarint(), r.uvarint()
			if r.err == nil && (inLen == 0 || inOff > maxChunkSize || inLen > maxChunkSize-inOff) {
				r.fail("chunk %d+%d outside a frame", inOff, inLen)
			}
			ref.inOff, ref.inLen = uint32(inOff), uint32(inLen)
		}
		ref.mint, ref.maxt, ref.n = r.varint(), r.varint(), r.uvarint()
		if r.err == nil && (ref.off < partHeaderSize || ref.off > idxOff || ref.length > idxOff-ref.off) {
			r.fail("frame %d+%d outside the data section", ref.off, ref.length)
		}
		pi.lsets = append(pi.lsets, lset)
		pi.refs = append(pi.refs, ref)
	}
	if r.err != nil {
		return nil, &CorruptionError{File: path, Offset: int64(idxOff), Err: fmt.Errorf("index: %w", r.err)}
	}
	return pi, nil
}

// frameCache keeps the last frame a reader decompressed, for reading the chunks
// of one partition in file order, and the reader's block decoding memory. The
// zero value is empty.
type frameCache struct {
	off  uint64
	data []byte
	dec  blockDecoder
}

// chunkReadCap is a capacity for the samples of a read of [mint, maxt] from the
// chunk at ref: the chunk's samples, or, when the chunk holds more than two
// float blocks, their share by time plus room for the parts of the blocks at
// either end of the range that are decoded and dropped.
func chunkReadCap(ref chunkRef, mint, maxt int64) int {
	n := int(min(ref.n, 1<<16))
	lo, hi := max(mint, ref.mint), min(maxt, ref.maxt)
	span := float64(ref.maxt) - float64(ref.mint)
	if hi < lo || span <= 2*floatRunSpan {
		return n
	}
	if frac := (float64(hi) - float64(lo) + 2*floatRunSpan) / span; frac < 1 {
		n = int(frac*float64(n)) + 1
	}
	return n
}

// readChunk returns the samples of series id within [mint, maxt], appended to
// dst. fc, if not nil, is a cache for this partition's frames.
func (p *partition) readChunk(dst []sample, id uint32, mint, maxt int64, fc *frameCache) ([]sample, error) {
	ref, ok := p.series.get(id)
	if !ok || ref.maxt < mint || ref.mint > maxt {
		return dst, nil
	}
	var raw []byte
	if fc != nil && fc.data != nil && fc.off == ref.off {
		raw = fc.data
	} else {
		rec := make([]byte, ref.length)
		if _, err := p.f.ReadAt(rec, int64(ref.off)); err != nil {
			return dst, corruptf(p.path, int64(ref.off), "cannot read frame of %d bytes: %v", ref.length, err)
		}
		var err error
		if raw, err = decodeChunkRecord(rec); err != nil {
			return dst, &CorruptionError{File: p.path, Offset: int64(ref.off), Err: err}
		}
		if fc != nil {
			fc.off, fc.data = ref.off, raw
		}
	}
	if ref.inLen > 0 {
		if uint64(ref.inOff)+uint64(ref.inLen) > uint64(len(raw)) {
			return dst, corruptf(p.path, int64(ref.off), "chunk %d+%d outside the frame of %d bytes", ref.inOff, ref.inLen, len(raw))
		}
		raw = raw[ref.inOff : ref.inOff+ref.inLen]
	}
	if dst == nil {
		dst = make([]sample, 0, chunkReadCap(ref, mint, maxt))
	}
	start := len(dst)
	var dec blockDecoder
	d := &dec
	if fc != nil {
		d = &fc.dec
	}
	dst, err := d.decodeSeriesChunkRange(dst, raw, mint, maxt)
	if err != nil {
		return dst[:start], &CorruptionError{File: p.path, Offset: int64(ref.off), Err: err}
	}
	// Keep only the requested range.
	ss := dst[start:]
	lo := sort.Search(len(ss), func(i int) bool { return ss[i].t >= mint })
	hi := sort.Search(len(ss), func(i int) bool { return ss[i].t > maxt })
	n := copy(ss, ss[lo:hi])
	return dst[:start+n], nil
}
