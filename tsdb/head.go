package tsdb

import (
	"fmt"
	"math"
	"sort"
	"unsafe"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The head: the samples of one series not yet in partitions, kept compressed.
//
// Float samples that arrive in time order (the usual case) are appended to
// Prometheus XOR2 chunks (Gorilla-style delta-of-delta timestamps and XOR
// values, start timestamps included, lossless for every float64 bit pattern),
// about 1-3 bytes a sample instead of a 32-byte struct, and with no pointers for
// the garbage collector to scan. A chunk is sealed after headChunkSamples
// samples. Everything else — histogram samples, and float samples at or before
// the newest timestamp of the series (out-of-order samples and rewrites of a
// timestamp) — goes to a small sorted overflow list of plain samples, which wins
// over the chunks on equal timestamps: a sample only goes to a chunk when it is
// newer than every sample of the series, so an overflow sample with the same
// timestamp as a chunk sample was always written after it.

// headChunkSamples is how many samples a head chunk holds before it is sealed.
const headChunkSamples = 240

type head struct {
	sealed []headChunk
	open   *chunkenc.XOR2Chunk // chunk being appended to, nil if none
	app    chunkenc.Appender   // open's appender
	openN  int                 // samples in open
	openLo int64               // first timestamp in open
	openHi int64               // last timestamp in open
	raw    []sample            // overflow: sorted by t, unique t
	n      int                 // distinct timestamps held
	maxT   int64               // newest timestamp held, if n > 0
}

// headChunk is a sealed XOR2 chunk.
type headChunk struct {
	b          []byte
	mint, maxt int64
}

// empty reports whether the head holds no sample; a nil head is empty.
func (h *head) empty() bool { return h == nil || h.n == 0 }

// insert stores s, replacing a sample with the same timestamp; it reports
// whether a new timestamp was added.
func (h *head) insert(s sample) bool {
	if h.n == 0 {
		h.maxT = math.MinInt64
	}
	if s.fh == nil && s.t > h.maxT {
		if h.open == nil || h.openN >= headChunkSamples {
			h.cut()
		}
		h.app.Append(s.st, s.t, s.v)
		if h.openN == 0 {
			h.openLo = s.t
		}
		h.openN++
		h.openHi = s.t
		h.maxT = s.t
		h.n++
		return true
	}
	i := sort.Search(len(h.raw), func(i int) bool { return h.raw[i].t >= s.t })
	if i < len(h.raw) && h.raw[i].t == s.t {
		h.raw[i] = s
		return false
	}
	h.raw = append(h.raw, sample{})
	copy(h.raw[i+1:], h.raw[i:])
	h.raw[i] = s
	if s.t > h.maxT {
		h.maxT = s.t
	} else if h.n > 0 && h.chunksContain(s.t) {
		return false
	}
	h.n++
	return true
}

// cut seals the open chunk, if any, and starts a new one.
func (h *head) cut() {
	if h.open != nil && h.openN > 0 {
		h.open.Compact()
		h.sealed = append(h.sealed, headChunk{b: h.open.Bytes(), mint: h.openLo, maxt: h.openHi})
	}
	h.open = chunkenc.NewXOR2Chunk()
	app, err := h.open.Appender()
	if err != nil {
		panic(fmt.Sprintf("tsdb: cannot append to a new chunk: %v", err))
	}
	h.app, h.openN = app, 0
}

// chunksContain reports whether a chunk holds a sample at t.
func (h *head) chunksContain(t int64) bool {
	found := false
	h.chunkSamples(nil, t, t, func(sample) { found = true })
	return found
}

// chunkSamples calls fn with each chunk sample in [mint, maxt], in order.
func (h *head) chunkSamples(it chunkenc.Iterator, mint, maxt int64, fn func(sample)) chunkenc.Iterator {
	read := func(c chunkenc.Chunk) {
		it = c.Iterator(it)
		for it.Next() != chunkenc.ValNone {
			t, v := it.At()
			if t > maxt {
				break
			}
			if t >= mint {
				fn(sample{t: t, st: it.AtST(), v: v})
			}
		}
		if err := it.Err(); err != nil {
			panic(fmt.Sprintf("tsdb: head chunk does not decode: %v", err))
		}
	}
	for _, c := range h.sealed {
		if c.maxt < mint || c.mint > maxt {
			continue
		}
		chk, _ := chunkenc.FromData(chunkenc.EncXOR2, c.b)
		read(chk)
	}
	if h.openN > 0 && h.openLo <= maxt {
		read(h.open)
	}
	return it
}

// samples appends the head's samples in [mint, maxt] to dst, sorted by t.
func (h *head) samples(dst []sample, mint, maxt int64) []sample {
	if h == nil || h.n == 0 || mint > maxt {
		return dst
	}
	lo := sort.Search(len(h.raw), func(i int) bool { return h.raw[i].t >= mint })
	hi := sort.Search(len(h.raw), func(i int) bool { return h.raw[i].t > maxt })
	raw := h.raw[lo:hi]
	if free := cap(dst) - len(dst); free < h.n {
		dst = append(make([]sample, 0, len(dst)+min(h.n, 1<<16)), dst...)
	}
	if len(raw) == 0 {
		h.chunkSamples(nil, mint, maxt, func(s sample) { dst = append(dst, s) })
		return dst
	}
	h.chunkSamples(nil, mint, maxt, func(s sample) {
		for len(raw) > 0 && raw[0].t < s.t {
			dst = append(dst, raw[0])
			raw = raw[1:]
		}
		if len(raw) > 0 && raw[0].t == s.t {
			s = raw[0] // written later than the chunk's sample
			raw = raw[1:]
		}
		dst = append(dst, s)
	})
	return append(dst, raw...)
}

// minT returns the oldest timestamp held; the head must not be empty.
func (h *head) minT() int64 {
	t := int64(math.MaxInt64)
	if len(h.sealed) > 0 {
		t = h.sealed[0].mint
	} else if h.openN > 0 {
		t = h.openLo
	}
	if len(h.raw) > 0 {
		t = min(t, h.raw[0].t)
	}
	return t
}

// spans reports whether the head's samples span part of [mint, maxt].
func (h *head) spans(mint, maxt int64) bool {
	return h != nil && h.n > 0 && h.maxT >= mint && h.minT() <= maxt
}

// contains reports whether the head holds a sample at t.
func (h *head) contains(t int64) bool {
	if h == nil {
		return false
	}
	i := sort.Search(len(h.raw), func(i int) bool { return h.raw[i].t >= t })
	return i < len(h.raw) && h.raw[i].t == t || h.chunksContain(t)
}

// bytes estimates the memory the head takes.
func (h *head) bytes() int {
	if h == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*h)) + cap(h.sealed)*int(unsafe.Sizeof(headChunk{})) + cap(h.raw)*int(unsafe.Sizeof(sample{}))
	for _, c := range h.sealed {
		n += cap(c.b)
	}
	if h.open != nil {
		n += cap(h.open.Bytes()) + 128 // the chunk, its appender
	}
	return n
}
