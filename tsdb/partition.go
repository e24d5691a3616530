package tsdb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
)

// Partition files: the immutable compressed store of one time range
// (FORMAT.md, "Partition file"). A partition is written under a temporary name,
// fsync'd and renamed; it is never modified afterwards, only deleted whole.

const (
	partMagic      = "OPTP"
	partVersion    = 1
	partHeaderSize = 8
	partFooterSize = 40
	partSuffix     = ".part"

	compNone = 0
	compZstd = 1

	// maxChunkSize bounds a decompressed series chunk.
	maxChunkSize = 256 << 20
)

var (
	zenc, _ = zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithAllLitEntropyCompression(true),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(true))
	zdec, _ = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxChunkSize))
)

// chunkRef locates one series' chunk in a partition.
type chunkRef struct {
	off, length uint64 // the whole chunk record, checksum included
	mint, maxt  int64
	n           uint64 // samples
}

type partition struct {
	path       string
	seq        uint64 // order of creation; a higher seq wins on equal timestamps
	mint, maxt int64
	size       int64
	f          *os.File
	series     map[uint32]chunkRef // by DB series id
}

// partSeries is one series handed to writePartition.
type partSeries struct {
	lset    labels.Labels
	id      uint32
	samples []sample // sorted by t, unique t, non-empty
}

// appendChunkRecord appends the framed, possibly compressed chunk record of raw.
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

// decodeChunkRecord verifies a chunk record and returns its series chunk bytes.
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
// new partition file in dir covering [mint, maxt] and returns it opened. A series
// with no samples is left out.
func writePartition(dir string, seq uint64, mint, maxt int64, n int, next func(i int) (partSeries, error)) (*partition, error) {
	name := fmt.Sprintf("p-%d-%d-%020d%s", mint, maxt, seq, partSuffix)
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, ".tmp-"+name)
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

	var body, raw []byte
	refs := make(map[uint32]chunkRef, n)
	for i := 0; i < n; i++ {
		s, err := next(i)
		if err != nil {
			return nil, err
		}
		if len(s.samples) == 0 {
			continue
		}
		raw = appendSeriesChunk(raw[:0], s.samples)
		start := off + uint64(len(buf))
		buf = appendChunkRecord(buf, raw)
		ref := chunkRef{
			off:    start,
			length: off + uint64(len(buf)) - start,
			mint:   s.samples[0].t,
			maxt:   s.samples[len(s.samples)-1].t,
			n:      uint64(len(s.samples)),
		}
		refs[s.id] = ref
		body = appendLabels(body, s.lset)
		body = binary.AppendUvarint(body, ref.off)
		body = binary.AppendUvarint(body, ref.length)
		body = binary.AppendVarint(body, ref.mint)
		body = binary.AppendVarint(body, ref.maxt)
		body = binary.AppendUvarint(body, ref.n)
		if len(buf) >= 1<<20 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	indexOff := off + uint64(len(buf))
	index := binary.AppendUvarint(make([]byte, 0, len(body)+10), uint64(len(refs)))
	index = append(index, body...)
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
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("cannot rename partition: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	rf, err := os.Open(final)
	if err != nil {
		return nil, fmt.Errorf("cannot open partition: %w", err)
	}
	return &partition{path: final, seq: seq, mint: mint, maxt: maxt, size: int64(off), f: rf, series: refs}, nil
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
	if hdr[4] != partVersion {
		return nil, fmt.Errorf("cannot read partition %q: format version %d is not supported (want %d)", path, hdr[4], partVersion)
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
		ref := chunkRef{off: r.uvarint(), length: r.uvarint(), mint: r.varint(), maxt: r.varint(), n: r.uvarint()}
		if r.err == nil && (ref.off < partHeaderSize || ref.length > idxOff || ref.off+ref.length > idxOff) {
			r.fail("chunk %d+%d outside the data section", ref.off, ref.length)
		}
		pi.lsets = append(pi.lsets, lset)
		pi.refs = append(pi.refs, ref)
	}
	if r.err != nil {
		return nil, &CorruptionError{File: path, Offset: int64(idxOff), Err: fmt.Errorf("index: %w", r.err)}
	}
	return pi, nil
}

// readChunk returns the samples of series id within [mint, maxt], appended to dst.
func (p *partition) readChunk(dst []sample, id uint32, mint, maxt int64) ([]sample, error) {
	ref, ok := p.series[id]
	if !ok || ref.maxt < mint || ref.mint > maxt {
		return dst, nil
	}
	rec := make([]byte, ref.length)
	if _, err := p.f.ReadAt(rec, int64(ref.off)); err != nil {
		return dst, corruptf(p.path, int64(ref.off), "cannot read chunk of %d bytes: %v", ref.length, err)
	}
	raw, err := decodeChunkRecord(rec)
	if err != nil {
		return dst, &CorruptionError{File: p.path, Offset: int64(ref.off), Err: err}
	}
	start := len(dst)
	dst, err = decodeSeriesChunk(dst, raw)
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
