package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/decimal"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
)

// Float blocks: the columnar encoding of a run of float samples of one series. The
// byte layout is in FORMAT.md ("Float block"). Every column is verified after
// encoding by decoding it again; a column whose VictoriaMetrics encoding does not
// give back the exact same bits is written with the lossless fallback instead.

const (
	blockValuesXOR = 1 << 0 // values column uses the XOR byte-plane fallback
	blockHasST     = 1 << 1 // a start-timestamp column follows the values
	blockTSRaw     = 1 << 2 // timestamp column uses the zigzag-delta fallback
	blockSTRaw     = 1 << 3 // start-timestamp column uses the zigzag-delta fallback

	// maxBlockSamples bounds one block, so that a decoder never allocates more than
	// this many items from a few corrupt bytes.
	maxBlockSamples = 1 << 16
)

// blockEncoder is the working memory of block encoding, reused from one block
// (and series) to the next while a partition is written: encoding allocated as
// much as the samples it encoded, several times over.
type blockEncoder struct {
	runs    []chunkRun
	ts, sts []int64
	vs      []float64
	block   []byte
	enc     []byte    // a column as VictoriaMetrics marshals it
	plain   []byte    // a column unwrapped from VictoriaMetrics' zstd
	ints    []int64   // decimal mantissas
	backI   []int64   // a column decoded back, to check it
	backF   []float64 // values decoded back from decimals, to check them
}

// appendFloatBlock appends the block of ts, sts, vs to dst (equal lengths,
// 1..maxBlockSamples, ts non-decreasing; sts nil when no sample has a start
// timestamp). With plain, no
// column is compressed by VictoriaMetrics' own zstd pass (its ZSTD marshal types
// are stored as the plain types they wrap). The partition's frame compression
// then does that work for all columns of the frame together: a float block of a
// few hundred samples compressed on its own pays about 75 bytes of zstd headers
// and tables, a plain one about nothing, which is what lets a series chunk be
// cut into blocks that reads of part of a partition can skip (runFloatSpan).
func (e *blockEncoder) appendFloatBlock(dst []byte, ts, sts []int64, vs []float64, plain bool) []byte {
	n := len(ts)
	flagsAt := len(dst)
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(n))
	var flags byte

	var ok bool
	dst, ok = e.appendIntColumn(dst, ts, true, plain)
	if !ok {
		flags |= blockTSRaw
	}

	dst, ok = e.appendDecimalColumn(dst, vs, plain)
	if !ok {
		flags |= blockValuesXOR
		dst = appendXORColumn(dst, vs)
	}

	if sts != nil {
		flags |= blockHasST
		dst, ok = e.appendIntColumn(dst, sts, false, plain)
		if !ok {
			flags |= blockSTRaw
		}
	}
	dst[flagsAt] = flags
	return dst
}

// appendIntColumn appends a as a VictoriaMetrics-encoded column when that decodes
// back to a exactly (ok), and as zigzag deltas otherwise.
func (e *blockEncoder) appendIntColumn(dst []byte, a []int64, sorted, plain bool) ([]byte, bool) {
	start := len(dst)
	enc, mt, first := e.marshalInts(a, sorted, plain)
	back, err := encoding.UnmarshalValues(e.backI[:0], enc, mt, first, len(a))
	e.backI = back
	if err == nil && int64sEqual(back, a) {
		dst = append(dst, byte(mt))
		dst = binary.AppendVarint(dst, first)
		dst = binary.AppendUvarint(dst, uint64(len(enc)))
		return append(dst, enc...), true
	}
	dst = dst[:start]
	var prev int64
	for _, v := range a {
		dst = binary.AppendVarint(dst, v-prev)
		prev = v
	}
	return dst, false
}

// appendDecimalColumn appends vs through VictoriaMetrics' decimal conversion when
// that is bit-exact for every value.
func (e *blockEncoder) appendDecimalColumn(dst []byte, vs []float64, plain bool) ([]byte, bool) {
	va, exp := decimal.AppendFloatToDecimal(e.ints[:0], vs)
	e.ints = va
	back := decimal.AppendDecimalToFloat(e.backF[:0], va, exp)
	e.backF = back
	if len(back) != len(vs) {
		return dst, false
	}
	for i := range vs {
		if math.Float64bits(back[i]) != math.Float64bits(vs[i]) {
			return dst, false
		}
	}
	enc, mt, first := e.marshalInts(va, false, plain)
	va2, err := encoding.UnmarshalValues(e.backI[:0], enc, mt, first, len(va))
	e.backI = va2
	if err != nil || !int64sEqual(va, va2) {
		return dst, false
	}
	dst = append(dst, byte(mt))
	dst = binary.AppendVarint(dst, first)
	dst = binary.AppendVarint(dst, int64(exp))
	dst = binary.AppendUvarint(dst, uint64(len(enc)))
	return append(dst, enc...), true
}

// marshalInts is VictoriaMetrics' encoding of a at full precision (as
// timestamps when sorted). With plain, a column VictoriaMetrics compressed with
// zstd is turned into the plain column inside it. The result is valid until the
// next call.
func (e *blockEncoder) marshalInts(a []int64, sorted, plain bool) ([]byte, encoding.MarshalType, int64) {
	var mt encoding.MarshalType
	var first int64
	if sorted {
		e.enc, mt, first = encoding.MarshalTimestamps(e.enc[:0], a, 64)
	} else {
		e.enc, mt, first = encoding.MarshalValues(e.enc[:0], a, 64)
	}
	if !plain {
		return e.enc, mt, first
	}
	var to encoding.MarshalType
	switch mt {
	case encoding.MarshalTypeZSTDNearestDelta2:
		to = encoding.MarshalTypeNearestDelta2
	case encoding.MarshalTypeZSTDNearestDelta:
		to = encoding.MarshalTypeNearestDelta
	default:
		return e.enc, mt, first
	}
	raw, err := encoding.DecompressZSTD(e.plain[:0], e.enc)
	if err != nil {
		return e.enc, mt, first // the compressed column is as good
	}
	e.plain = raw
	return raw, to, first
}

// appendXORColumn appends the lossless fallback: each value's bits XOR the previous
// value's bits, stored as 8 byte planes (all most significant bytes first).
func appendXORColumn(dst []byte, vs []float64) []byte {
	n := len(vs)
	start := len(dst)
	dst = slices.Grow(dst, 8*n)[:start+8*n]
	out := dst[start:]
	var prev uint64
	for i, v := range vs {
		b := math.Float64bits(v)
		x := b ^ prev
		prev = b
		for k := 0; k < 8; k++ {
			out[k*n+i] = byte(x >> (56 - 8*k))
		}
	}
	return dst
}

func int64sEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// blockReader walks a buffer, remembering the first error.
type blockReader struct {
	b   []byte
	off int
	err error
}

func (r *blockReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format+" at byte %d of %d", append([]any{errFormat}, append(args, r.off, len(r.b))...)...)
	}
}

func (r *blockReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("short buffer reading a byte")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *blockReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.off += n
	return v
}

func (r *blockReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.off += n
	return v
}

func (r *blockReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("length %d exceeds the %d bytes left", n, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

func (r *blockReader) u64() uint64 {
	s := r.bytes(8)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(s)
}

// blockDecoder is the working memory of block decoding (the columns before they
// become samples), reused from one block and series to the next of a read.
type blockDecoder struct {
	ts, sts, ints []int64
	vs            []float64
}

// decodeFloatBlock decodes one float block from b and appends its samples to
// dst.
func (d *blockDecoder) decodeFloatBlock(dst []sample, b []byte) ([]sample, error) {
	r := &blockReader{b: b}
	flags := r.byte()
	n := r.uvarint()
	if r.err == nil && (n == 0 || n > maxBlockSamples) {
		r.fail("sample count %d out of range", n)
	}
	if flags&^(blockValuesXOR|blockHasST|blockTSRaw|blockSTRaw) != 0 {
		r.fail("unknown flags %#x", flags)
	}
	if r.err != nil {
		return dst, r.err
	}
	ts := r.intColumn(d.ts[:0], int(n), flags&blockTSRaw != 0)
	d.ts = ts
	var vs []float64
	if flags&blockValuesXOR != 0 {
		planes := r.bytes(8 * n)
		if planes != nil {
			vs = slices.Grow(d.vs[:0], int(n))[:n]
			d.vs = vs
			var prev uint64
			for i := range vs {
				var x uint64
				for k := 0; k < 8; k++ {
					x |= uint64(planes[k*int(n)+i]) << (56 - 8*k)
				}
				prev ^= x
				vs[i] = math.Float64frombits(prev)
			}
		}
	} else {
		mt := encoding.MarshalType(r.byte())
		first := r.varint()
		e := r.varint()
		enc := r.bytes(r.uvarint())
		if r.err == nil {
			if e < math.MinInt16 || e > math.MaxInt16 {
				r.fail("decimal exponent %d out of range", e)
			} else if err := encoding.CheckMarshalType(mt); err != nil {
				r.fail("%v", err)
			} else {
				va, err := encoding.UnmarshalValues(d.ints[:0], enc, mt, first, int(n))
				if err != nil {
					r.fail("%v", err)
				} else {
					d.ints = va
					vs = decimal.AppendDecimalToFloat(d.vs[:0], va, int16(e))
					d.vs = vs
				}
			}
		}
	}
	var sts []int64
	if flags&blockHasST != 0 {
		sts = r.intColumn(d.sts[:0], int(n), flags&blockSTRaw != 0)
		d.sts = sts
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return dst, r.err
	}
	for i := 0; i < int(n); i++ {
		s := sample{t: ts[i], v: vs[i]}
		if sts != nil {
			s.st = sts[i]
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// intColumn decodes a column of n integers into dst's memory.
func (r *blockReader) intColumn(dst []int64, n int, raw bool) []int64 {
	if r.err != nil {
		return nil
	}
	if raw {
		out := slices.Grow(dst[:0], n)[:n]
		var prev int64
		for i := range out {
			prev += r.varint()
			out[i] = prev
		}
		if r.err != nil {
			return nil
		}
		return out
	}
	mt := encoding.MarshalType(r.byte())
	first := r.varint()
	enc := r.bytes(r.uvarint())
	if r.err != nil {
		return nil
	}
	if err := encoding.CheckMarshalType(mt); err != nil {
		r.fail("%v", err)
		return nil
	}
	out, err := encoding.UnmarshalValues(dst[:0], enc, mt, first, n)
	if err != nil {
		r.fail("%v", err)
		return nil
	}
	return out
}
