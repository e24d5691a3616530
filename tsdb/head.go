package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"unsafe"
)

// The head: the samples of one series not yet in partitions, kept compressed.
//
// Float samples that arrive in time order (the usual case) are appended to head
// chunks: delta-of-delta timestamps as in Gorilla, the start timestamp when it
// changes, and values as differences of decimal mantissas while they are short
// decimals, else XOR'd as in Gorilla; lossless for every float64 bit pattern,
// about 1-5 bytes a sample instead of a 32-byte struct, and with no pointers for
// the garbage collector to scan. A chunk is sealed after headChunkSamples
// samples. The chunks never leave memory (the WAL is the head's durable form),
// so their encoding is free to change; it is described below at headEncoder.
//
// Everything else — histogram samples, and float samples at or before the
// newest timestamp of the series (out-of-order samples and rewrites of a
// timestamp) — goes to a small sorted overflow list of plain samples, which wins
// over the chunks on equal timestamps: a sample only goes to a chunk when it is
// newer than every sample of the series, so an overflow sample with the same
// timestamp as a chunk sample was always written after it.

// headChunkSamples is how many samples a head chunk holds before it is sealed.
const headChunkSamples = 240

// head holds one series' samples. The encoder comes first: an in-order sample
// touches only it and, once every 64 bits, the open chunk's bytes, so that
// appending to a series costs few cache misses when there are many series.
type head struct {
	enc    headEncoder
	n      int         // distinct timestamps held
	maxT   int64       // newest timestamp held, if n > 0
	openLo int64       // first timestamp in the open chunk
	sealed []headChunk // full chunks, oldest first
	raw    []sample    // overflow: sorted by t, unique t
}

// headChunk is a sealed chunk.
type headChunk struct {
	b          []byte
	mint, maxt int64
	n          int
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
		if h.enc.n >= headChunkSamples {
			h.seal()
		}
		if h.enc.n == 0 {
			h.openLo = s.t
		}
		h.enc.append(s)
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

// seal moves the open chunk to the sealed ones, in its own slice when that
// has little room to spare, else in a copy of its size. The next chunk starts
// with room for one of the same size and a little more, so that it grows once
// at most.
func (h *head) seal() {
	size := len(h.enc.out) + (int(h.enc.nacc)+7)/8
	var b []byte
	if spare := cap(h.enc.out) - size; spare >= 0 && spare <= size/8 {
		b = h.enc.bytes(nil)
	} else {
		b = h.enc.bytes(make([]byte, 0, size))
	}
	h.sealed = append(h.sealed, headChunk{b: b, mint: h.openLo, maxt: h.enc.t, n: h.enc.n})
	h.enc = headEncoder{out: make([]byte, 0, len(b)+len(b)/16)}
}

// openN is the number of samples in the open chunk, openHi its last timestamp.
func (h *head) openN() int    { return h.enc.n }
func (h *head) openHi() int64 { return h.enc.t }

// chunksContain reports whether a chunk holds a sample at t.
func (h *head) chunksContain(t int64) bool {
	found := false
	h.chunkSamples(t, t, func(sample) { found = true })
	return found
}

// chunkSamples calls fn with each chunk sample in [mint, maxt], in order.
func (h *head) chunkSamples(mint, maxt int64, fn func(sample)) {
	for _, c := range h.sealed {
		if c.maxt < mint || c.mint > maxt {
			continue
		}
		decodeHeadChunk(c.b, c.n, mint, maxt, fn)
	}
	if h.enc.n > 0 && h.openLo <= maxt && h.enc.t >= mint {
		var buf [512]byte
		decodeHeadChunk(h.enc.bytes(buf[:0]), h.enc.n, mint, maxt, fn)
	}
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
		h.chunkSamples(mint, maxt, func(s sample) { dst = append(dst, s) })
		return dst
	}
	h.chunkSamples(mint, maxt, func(s sample) {
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
	} else if h.enc.n > 0 {
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
	return n + cap(h.enc.out)
}

// headEncoder appends in-order float samples to a bit stream, most significant
// bit first:
//
//   - The first sample: t, st and the value's bits, 64 bits each.
//   - Every later sample: its start timestamp, if it differs from the previous
//     one, as the code 11111 and 64 bits; then the delta-of-delta of t (the
//     difference between this sample's distance from the previous one and
//     that one's from its own previous; the second sample's previous distance
//     is 0), as 0 for none, 10 and 8 bits, 110 and 14 bits, 1110 and 20 bits
//     (two's complement), or 11110 and 64 bits; then the value.
//
// Values are of two kinds. Most values a program exports are short decimals
// (12.34, 4096, 0.002), and the difference between two of them is a small
// integer in their last digit, which takes fewer bits than the XOR of their
// float64 bits. So the encoder keeps the latest value as a decimal m·10⁻ᵏ
// (k in 0…15, |m| < 2⁵³) when one gives back its exact bits (float64(m)/10ᵏ,
// a correctly rounded division), and a value is written as:
//
//   - 0: the same bits as the previous value;
//   - while the previous value is such a decimal: 10 and the difference of
//     the mantissas at the same k, when that gives back the exact bits, as
//     0 and 7 bits, 10 and 14 bits, 110 and 24 bits or 111 and 64 bits (two's
//     complement); else the XOR codes below, each after a 1;
//   - the previous value's bits XOR'd with this one's: 10 and the XOR's bits
//     inside the previous XOR's window when its leading and trailing zeros
//     are at least the window's, else 11, 5 bits of leading zeros (at most
//     31), 6 bits of the number of meaningful bits (64 as 0) and those bits,
//     which become the window.
//
// The first value of a chunk sets k to the least that represents it, or none;
// a value that needs more digits than k (written XOR'd) sets k to the least
// above it that represents it, or none for the rest of the chunk. The decoder
// follows the same rules from the values it decodes.
//
// Differences are taken modulo 2⁶⁴, so every int64 timestamp round-trips.
// Whole 64-bit words go to out; the bits after them wait in acc, so that most
// samples write only to the encoder.
type headEncoder struct {
	acc    uint64 // bits not yet in out, right-aligned
	t      int64  // latest timestamp
	tDelta uint64 // latest distance between timestamps
	v      uint64 // latest value's bits
	st     int64  // latest start timestamp
	m      int64  // latest value's decimal mantissa, if k >= 0
	n      int    // samples encoded
	k      int8   // latest value's decimal exponent, -1 if none
	nacc   uint8  // bits in acc, < 64
	lead   uint8  // the value window's leading zeros; 0xff: no window yet
	trail  uint8  // the value window's trailing zeros
	out    []byte // whole words of the stream
}

// put appends the low nbits (≤ 64) of u, which has no other bit set.
func (e *headEncoder) put(u uint64, nbits uint) {
	free := 64 - uint(e.nacc)
	if nbits < free {
		e.acc = e.acc<<nbits | u
		e.nacc += uint8(nbits)
		return
	}
	rest := nbits - free
	e.out = binary.BigEndian.AppendUint64(e.out, e.acc<<free|u>>rest)
	e.acc = u & (1<<rest - 1)
	e.nacc = uint8(rest)
}

func (e *headEncoder) append(s sample) {
	vb := math.Float64bits(s.v)
	if e.n == 0 {
		if e.out == nil {
			// Room for the first sample's 24 bytes and some more: a chunk
			// grown from nothing takes seven allocations.
			e.out = make([]byte, 0, 64)
		}
		e.put(uint64(s.t), 64)
		e.put(uint64(s.st), 64)
		e.put(vb, 64)
		e.t, e.tDelta, e.v, e.st, e.lead, e.n = s.t, 0, vb, s.st, 0xff, 1
		e.k, e.m = findDecimal(vb, 0)
		return
	}
	if s.st != e.st {
		e.put(0b11111, 5)
		e.put(uint64(s.st), 64)
		e.st = s.st
	}
	delta := uint64(s.t) - uint64(e.t)
	switch dod := int64(delta - e.tDelta); {
	case dod == 0:
		e.put(0, 1)
	case dod >= -1<<7 && dod < 1<<7:
		e.put(0b10<<8|uint64(dod)&(1<<8-1), 10)
	case dod >= -1<<13 && dod < 1<<13:
		e.put(0b110<<14|uint64(dod)&(1<<14-1), 17)
	case dod >= -1<<19 && dod < 1<<19:
		e.put(0b1110<<20|uint64(dod)&(1<<20-1), 24)
	default:
		e.put(0b11110, 5)
		e.put(uint64(dod), 64)
	}
	e.t, e.tDelta = s.t, delta
	e.n++
	x := vb ^ e.v
	if x == 0 {
		e.put(0, 1)
		return
	}
	e.v = vb
	if e.k >= 0 {
		if m, ok := decimalAt(vb, int(e.k)); ok {
			switch d := m - e.m; {
			case d >= -1<<6 && d < 1<<6:
				e.put(0b100<<7|uint64(d)&(1<<7-1), 10)
			case d >= -1<<13 && d < 1<<13:
				e.put(0b1010<<14|uint64(d)&(1<<14-1), 18)
			case d >= -1<<23 && d < 1<<23:
				e.put(0b10110<<24|uint64(d)&(1<<24-1), 29)
			default:
				e.put(0b10111, 5)
				e.put(uint64(d), 64)
			}
			e.m = m
			return
		}
		e.put(1, 1)
		e.k, e.m = findDecimal(vb, int(e.k)+1)
	}
	lead, trail := uint8(min(bits.LeadingZeros64(x), 31)), uint8(bits.TrailingZeros64(x))
	if e.lead != 0xff && lead >= e.lead && trail >= e.trail {
		e.put(0b10, 2)
		e.put(x>>e.trail, 64-uint(e.lead)-uint(e.trail))
		return
	}
	sig := 64 - uint(lead) - uint(trail)
	e.put(0b11<<11|uint64(lead)<<6|uint64(sig&63), 13)
	e.put(x>>trail, sig)
	e.lead, e.trail = lead, trail
}

// pow10 holds the powers of ten that float64 represents exactly and that
// decimals use.
var pow10 = [16]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// decimalAt returns m with float64(m)/10ᵏ bit for bit the value vb and
// |m| < 2⁵³, if there is one.
func decimalAt(vb uint64, k int) (int64, bool) {
	f := math.Float64frombits(vb) * pow10[k]
	if !(f > -1<<53 && f < 1<<53) { // NaN too
		return 0, false
	}
	m := int64(math.Round(f))
	return m, math.Float64bits(float64(m)/pow10[k]) == vb
}

// findDecimal returns the least k from `from` on at which vb is a decimal, and
// its mantissa, or k = -1.
func findDecimal(vb uint64, from int) (int8, int64) {
	for k := from; k < len(pow10); k++ {
		if m, ok := decimalAt(vb, k); ok {
			return int8(k), m
		}
	}
	return -1, 0
}

// bytes appends the stream, its last byte padded with zero bits, to dst; with
// dst nil, to out itself.
func (e *headEncoder) bytes(dst []byte) []byte {
	if dst == nil {
		dst = e.out
	} else {
		dst = append(dst, e.out...)
	}
	if e.nacc == 0 {
		return dst
	}
	var w [8]byte
	binary.BigEndian.PutUint64(w[:], e.acc<<(64-e.nacc))
	return append(dst, w[:(e.nacc+7)/8]...)
}

// decodeHeadChunk calls fn with each of the n samples of chunk b that lie in
// [mint, maxt], in order. Each sample's codes are told apart by the number of
// leading 1 bits of the reader's buffer, filled up to 57 bits first.
func decodeHeadChunk(b []byte, n int, mint, maxt int64, fn func(sample)) {
	r := bitReader{b: b}
	t, st, vb := int64(r.read(64)), int64(r.read(64)), r.read(64)
	k, m := findDecimal(vb, 0)
	var delta uint64
	var lead, trail uint
	for i := 0; ; {
		if t > maxt {
			break
		}
		if t >= mint {
			fn(sample{t: t, st: st, v: math.Float64frombits(vb)})
		}
		if i++; i == n || r.short {
			break
		}
		r.fill()
		ones := uint(bits.LeadingZeros64(^r.buf))
		for ones >= 5 { // a new start timestamp first
			r.skip(5)
			st = int64(r.read(64))
			r.fill()
			ones = uint(bits.LeadingZeros64(^r.buf))
		}
		var dod uint64
		switch r.skip(ones + 1); ones {
		case 1:
			dod = signExtend(r.read(8), 8)
		case 2:
			dod = signExtend(r.read(14), 14)
		case 3:
			dod = signExtend(r.read(20), 20)
		case 4:
			dod = r.read(64)
		}
		delta += dod
		t = int64(uint64(t) + delta)
		r.fill()
		top := r.buf
		if top>>63 == 0 {
			r.skip(1) // the same value
			continue
		}
		if k >= 0 {
			if top>>62 == 0b10 {
				var d uint64
				switch ones := min(bits.LeadingZeros64(^(top << 2)), 3); ones {
				case 0:
					r.skip(3)
					d = signExtend(r.read(7), 7)
				case 1:
					r.skip(4)
					d = signExtend(r.read(14), 14)
				case 2:
					r.skip(5)
					d = signExtend(r.read(24), 24)
				default:
					r.skip(5) // 10111: no end bit
					d = r.read(64)
				}
				m += int64(d)
				vb = math.Float64bits(float64(m) / pow10[k])
				continue
			}
			r.skip(1)
			top <<= 1
		}
		if top>>62 == 0b11 {
			r.skip(2)
			lead = uint(r.read(5))
			sig := uint(r.read(6))
			if sig == 0 {
				sig = 64
			}
			trail = 64 - lead - sig
		} else {
			r.skip(2)
		}
		vb ^= r.read(64-lead-trail) << trail
		if k >= 0 {
			k, m = findDecimal(vb, int(k)+1)
		}
	}
	if r.short {
		panic(fmt.Sprintf("tsdb: head chunk of %d samples ends early (%d bytes)", n, len(b)))
	}
}

func signExtend(u uint64, nbits uint) uint64 {
	return uint64(int64(u<<(64-nbits)) >> (64 - nbits))
}

// bitReader reads big-endian bit fields, as headEncoder and chunkenc's bstream
// write them.
type bitReader struct {
	b     []byte // bytes not yet in buf
	buf   uint64 // next bits, left-aligned; after the first n, zeros or the bits that follow
	n     uint   // bits in buf
	short bool   // a read went past the end
}

// fill takes bytes into buf until it holds at least 57 bits, or b is empty.
func (r *bitReader) fill() {
	if r.n > 56 {
		return
	}
	if len(r.b) >= 8 {
		c := (64 - r.n) / 8
		r.buf |= binary.BigEndian.Uint64(r.b) >> r.n
		r.b = r.b[c:]
		r.n += 8 * c
		return
	}
	for r.n <= 56 && len(r.b) > 0 {
		r.buf |= uint64(r.b[0]) << (56 - r.n)
		r.b = r.b[1:]
		r.n += 8
	}
}

// skip drops the next nbits (at most n) bits.
func (r *bitReader) skip(nbits uint) {
	if nbits > r.n {
		r.short = true
		nbits = r.n
	}
	r.buf <<= nbits
	r.n -= nbits
}

// read returns the next nbits (0 to 64) bits; past the end it reads zeros.
func (r *bitReader) read(nbits uint) uint64 {
	if nbits <= r.n {
		u := r.buf >> (64 - nbits)
		r.buf <<= nbits
		r.n -= nbits
		return u
	}
	return r.readMore(nbits)
}

func (r *bitReader) readMore(nbits uint) uint64 {
	if nbits > 56 {
		hi := r.read(32)
		return hi<<(nbits-32) | r.read(nbits-32)
	}
	r.fill()
	if nbits > r.n {
		r.short = true
		r.buf &^= math.MaxUint64 >> r.n // zeros from here on
		r.n = nbits
	}
	u := r.buf >> (64 - nbits)
	r.buf <<= nbits
	r.n -= nbits
	return u
}
