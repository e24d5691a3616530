package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// sample is one stored point: a float (fh == nil) or a float native histogram.
type sample struct {
	t  int64 // timestamp, milliseconds since the Unix epoch
	st int64 // start timestamp in milliseconds, 0 when unknown
	v  float64
	fh *histogram.FloatHistogram
}

// Series chunks: all samples of one series inside one partition, as a sequence of
// runs (FORMAT.md, "Series chunk"). A run is either a float block or one Prometheus
// float-histogram chunk with start timestamps (chunkenc.EncFloatHistogramST). In
// a chunk of more than one run, float blocks are written as runFloatSpan: led by
// their time range, so that a read of part of the partition's time skips the
// blocks outside it undecoded, and plain (blockEncoder.appendFloatBlock).
const (
	runFloat     = 1
	runHistogram = 2
	runFloatSpan = 3
)

// A float block ends once it holds floatRunMinSamples samples and spans
// floatRunSpan or more, or holds maxBlockSamples. A day's partition of a series
// sampled every 15 s then has 12 blocks of 480 samples, and a read of one hour
// decodes one or two of them instead of 5,760 samples; a two-hour partition
// keeps one block. Shorter blocks cost more: on node-exporter data six hours
// took 0.5% more bytes in three blocks than in one, 2.3% more in six one-hour
// blocks, which also made reads of a two-hour partition slower.
const (
	floatRunSpan       = 2 * 3_600_000 // ms
	floatRunMinSamples = 120
)

// chunkRun is a run of samples of one kind, ss[i:j].
type chunkRun struct{ i, j int }

// appendSeriesChunk appends the runs encoding samples ss (sorted by t, unique
// t) to dst.
func (e *blockEncoder) appendSeriesChunk(dst []byte, ss []sample) []byte {
	runs := e.runs[:0]
	for i := 0; i < len(ss); {
		j := i + 1
		if ss[i].fh == nil {
			for j < len(ss) && ss[j].fh == nil && j-i < maxBlockSamples &&
				(j-i < floatRunMinSamples || ss[j].t-ss[i].t < floatRunSpan) {
				j++
			}
		} else {
			for j < len(ss) && ss[j].fh != nil {
				j++
			}
		}
		runs = append(runs, chunkRun{i, j})
		i = j
	}
	e.runs = runs
	var prevEnd int64 // the last timestamp of the previous runFloatSpan
	for _, r := range runs {
		i, j := r.i, r.j
		if ss[i].fh != nil {
			dst = appendHistogramChunks(dst, ss[i:j])
			continue
		}
		n := j - i
		ts, vs := slices.Grow(e.ts[:0], n)[:n], slices.Grow(e.vs[:0], n)[:n]
		e.ts, e.vs = ts, vs
		var sts []int64
		for k := i; k < j; k++ {
			ts[k-i] = ss[k].t
			vs[k-i] = ss[k].v
			if ss[k].st != 0 && sts == nil {
				sts = slices.Grow(e.sts[:0], n)[:n]
				e.sts = sts
			}
		}
		if sts != nil {
			for k := i; k < j; k++ {
				sts[k-i] = ss[k].st
			}
		}
		// The partition's index holds the time range of a series' only run;
		// each of several runs leads with its own.
		kind, block := byte(runFloat), e.block[:0]
		if len(runs) > 1 {
			kind = runFloatSpan
			block = binary.AppendVarint(block, ts[0]-prevEnd)
			block = binary.AppendUvarint(block, uint64(ts[len(ts)-1]-ts[0]))
			prevEnd = ts[len(ts)-1]
		}
		block = e.appendFloatBlock(block, ts, sts, vs, kind == runFloatSpan)
		e.block = block
		dst = append(dst, kind)
		dst = binary.AppendUvarint(dst, uint64(len(block)))
		dst = append(dst, block...)
	}
	return dst
}

// appendHistogramChunks encodes a run of histogram samples the way Prometheus' head
// cuts and flags its chunks, so counter-reset hints read back exactly as Prometheus
// would report them.
func appendHistogramChunks(dst []byte, ss []sample) []byte {
	var c chunkenc.Chunk
	var app chunkenc.Appender
	emit := func() {
		b := c.Bytes()
		dst = append(dst, runHistogram)
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	for _, s := range ss {
		prev := app
		if c == nil || (c.NumSamples() >= chunkenc.MinSamplesPerHistogramChunk && len(c.Bytes()) >= 2*chunkenc.TargetBytesPerHistogramChunk) || c.NumSamples() >= 4096 {
			if c != nil {
				emit()
			}
			c = chunkenc.NewFloatHistogramSTChunk()
			app, _ = c.Appender()
		} else {
			prev = nil
		}
		newChunk, recoded, napp, err := app.AppendFloatHistogram(prev, s.st, s.t, s.fh.Copy(), false)
		if err != nil {
			// Only appendOnly appends fail; this one is not.
			panic(fmt.Sprintf("tsdb: unexpected histogram append error: %v", err))
		}
		app = napp
		if newChunk != nil {
			if !recoded {
				emit()
			}
			c = newChunk
		}
	}
	if c != nil {
		emit()
	}
	return dst
}

// decodeSeriesChunk decodes the runs in b and appends their samples to dst.
func decodeSeriesChunk(dst []sample, b []byte) ([]sample, error) {
	return decodeSeriesChunkRange(dst, b, math.MinInt64, math.MaxInt64)
}

// decodeSeriesChunkRange is decodeSeriesChunk for a read of [mint, maxt]: it
// skips the float blocks with a time range (runFloatSpan) that ends before mint
// and stops at the first that begins after maxt. The blocks it decodes may
// append samples outside the range.
func decodeSeriesChunkRange(dst []sample, b []byte, mint, maxt int64) ([]sample, error) {
	var d blockDecoder
	return d.decodeSeriesChunkRange(dst, b, mint, maxt)
}

// decodeSeriesChunkRange is decodeSeriesChunkRange with d's working memory.
func (d *blockDecoder) decodeSeriesChunkRange(dst []sample, b []byte, mint, maxt int64) (_ []sample, err error) {
	r := &blockReader{b: b}
	var prevEnd int64
	for r.err == nil && r.off < len(b) {
		kind := r.byte()
		payload := r.bytes(r.uvarint())
		if r.err != nil {
			break
		}
		at := r.off - len(payload)
		switch kind {
		case runFloat:
			dst, err = d.decodeFloatBlock(dst, payload)
			if err != nil {
				return dst, fmt.Errorf("float run at byte %d: %w", at, err)
			}
		case runFloatSpan:
			pr := &blockReader{b: payload}
			delta, span := pr.varint(), pr.uvarint()
			lo := prevEnd + delta
			if pr.err != nil || (delta > 0 && lo < prevEnd) || (delta < 0 && lo > prevEnd) || span > math.MaxInt64 || lo > math.MaxInt64-int64(span) {
				return dst, fmt.Errorf("float run at byte %d: %w: bad time range", at, errFormat)
			}
			prevEnd = lo + int64(span)
			if lo > maxt {
				return dst, nil // runs come in time order
			}
			if prevEnd < mint {
				continue
			}
			dst, err = d.decodeFloatBlock(dst, payload[pr.off:])
			if err != nil {
				return dst, fmt.Errorf("float run at byte %d: %w", at, err)
			}
		case runHistogram:
			dst, err = decodeHistogramChunk(dst, payload)
			if err != nil {
				return dst, fmt.Errorf("histogram run at byte %d: %w", at, err)
			}
		default:
			r.fail("unknown run kind %d", kind)
		}
	}
	return dst, r.err
}

func decodeHistogramChunk(dst []sample, b []byte) (_ []sample, err error) {
	defer func() {
		// chunkenc trusts its input; a damaged chunk must not take the process down.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: histogram chunk: %v", errFormat, p)
		}
	}()
	if !histogramLayoutFits(b) {
		return dst, fmt.Errorf("%w: histogram chunk of %d bytes declares more buckets than it can hold", errFormat, len(b))
	}
	c, err := chunkenc.FromData(chunkenc.EncFloatHistogramST, b)
	if err != nil {
		return dst, fmt.Errorf("%w: %v", errFormat, err)
	}
	it := c.Iterator(nil)
	n := 0
	for it.Next() == chunkenc.ValFloatHistogram {
		t, fh := it.AtFloatHistogram(nil)
		dst = append(dst, sample{t: t, st: it.AtST(), fh: fh})
		n++
	}
	if err := it.Err(); err != nil {
		return dst, fmt.Errorf("%w: %v", errFormat, err)
	}
	if n != c.NumSamples() {
		return dst, fmt.Errorf("%w: histogram chunk holds %d samples, header says %d", errFormat, n, c.NumSamples())
	}
	return dst, nil
}

// canonicalize returns ss with every histogram run passed through the chunk
// encoding, so that samples read from memory carry the same counter-reset hints as
// samples read from partitions.
func canonicalize(ss []sample) []sample {
	has := false
	for i := range ss {
		if ss[i].fh != nil {
			has = true
			break
		}
	}
	if !has {
		return ss
	}
	out := make([]sample, 0, len(ss))
	for i := 0; i < len(ss); {
		j := i
		if ss[i].fh == nil {
			for j < len(ss) && ss[j].fh == nil {
				j++
			}
			out = append(out, ss[i:j]...)
		} else {
			for j < len(ss) && ss[j].fh != nil {
				j++
			}
			b := appendHistogramChunks(nil, ss[i:j])
			var err error
			out, err = decodeSeriesChunk(out, b)
			if err != nil {
				panic(fmt.Sprintf("tsdb: histogram chunk does not decode: %v", err))
			}
		}
		i = j
	}
	return out
}

// appendHistogram appends the WAL encoding of fh (FORMAT.md, "Histogram").
func appendHistogram(dst []byte, fh *histogram.FloatHistogram) []byte {
	dst = append(dst, byte(fh.CounterResetHint))
	dst = binary.AppendVarint(dst, int64(fh.Schema))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(fh.ZeroThreshold))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(fh.ZeroCount))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(fh.Count))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(fh.Sum))
	dst = appendSpans(dst, fh.PositiveSpans)
	dst = appendFloats(dst, fh.PositiveBuckets)
	dst = appendSpans(dst, fh.NegativeSpans)
	dst = appendFloats(dst, fh.NegativeBuckets)
	dst = appendFloats(dst, fh.CustomValues)
	return dst
}

func appendSpans(dst []byte, spans []histogram.Span) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(spans)))
	for _, s := range spans {
		dst = binary.AppendVarint(dst, int64(s.Offset))
		dst = binary.AppendUvarint(dst, uint64(s.Length))
	}
	return dst
}

func appendFloats(dst []byte, fs []float64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(fs)))
	for _, f := range fs {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return dst
}

func (r *blockReader) histogram() *histogram.FloatHistogram {
	fh := &histogram.FloatHistogram{}
	hint := r.byte()
	if hint > byte(histogram.GaugeType) {
		r.fail("bad counter reset hint %d", hint)
	}
	fh.CounterResetHint = histogram.CounterResetHint(hint)
	schema := r.varint()
	if schema < math.MinInt32 || schema > math.MaxInt32 {
		r.fail("schema %d out of range", schema)
	}
	fh.Schema = int32(schema)
	fh.ZeroThreshold = math.Float64frombits(r.u64())
	fh.ZeroCount = math.Float64frombits(r.u64())
	fh.Count = math.Float64frombits(r.u64())
	fh.Sum = math.Float64frombits(r.u64())
	fh.PositiveSpans = r.spans()
	fh.PositiveBuckets = r.floats()
	fh.NegativeSpans = r.spans()
	fh.NegativeBuckets = r.floats()
	fh.CustomValues = r.floats()
	if r.err != nil {
		return nil
	}
	return fh
}

func (r *blockReader) spans() []histogram.Span {
	n := r.uvarint()
	if r.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("span count %d exceeds buffer", n)
		return nil
	}
	out := make([]histogram.Span, n)
	for i := range out {
		off := r.varint()
		l := r.uvarint()
		if off < math.MinInt32 || off > math.MaxInt32 || l > math.MaxUint32 {
			r.fail("span out of range")
		}
		out[i] = histogram.Span{Offset: int32(off), Length: uint32(l)}
	}
	return out
}

func (r *blockReader) floats() []float64 {
	n := r.uvarint()
	if r.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(r.b)-r.off)/8 {
		r.fail("float count %d exceeds buffer", n)
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(r.u64())
	}
	return out
}

// histogramLayoutFits reports whether the bucket layout that opens a float
// histogram chunk's bit stream (after its 3-byte header: the zero threshold, the
// schema as a varbit int, then positive and negative spans, each a varbit
// count followed by varbit length and offset pairs) declares no more buckets
// than the chunk has bits. chunkenc allocates a slice entry per bucket from the
// layout before it reads a sample, so a damaged layout could otherwise ask for
// gigabytes. A layout cut short passes: chunkenc reports it.
func histogramLayoutFits(b []byte) bool {
	if len(b) < 3 {
		return true
	}
	r := bitReader{b: b[3:]}
	if r.read(8) == 255 {
		r.read(64)
	}
	r.varbit() // schema
	limit := 8 * uint64(len(b))
	var buckets uint64
	for range 2 {
		n := r.varbit()
		for i := uint64(0); i < n && !r.short; i++ {
			buckets += r.varbit()
			r.varbit() // offset
			if buckets > limit {
				return false
			}
		}
	}
	return true
}

// varbit reads one of chunkenc's varbit numbers and returns its raw bits: a
// prefix of up to eight 1 bits ended by a 0 tells the width (0, 3, 6, 9, 12,
// 18, 25, 56 or 64 bits). For an unsigned number the bits are the value.
func (r *bitReader) varbit() uint64 {
	ones := 0
	for ones < 8 && r.read(1) == 1 {
		ones++
	}
	return r.read(varbitWidths[ones])
}

var varbitWidths = [9]uint{0, 3, 6, 9, 12, 18, 25, 56, 64}
