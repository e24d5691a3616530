package traceindex

// Bucket names and key encodings of a partition file, in one place. FORMAT.md
// documents the same layout for people; keep them in step.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// formatVersion is written into every partition's meta bucket. A partition with a
// higher version is refused at open.
const formatVersion = 1

// blockVersion is the first byte of every stored block value.
const blockVersion = 1

var (
	bucketMeta    = []byte("meta")    // "version", "start", "end", "spread"
	bucketSvc     = []byte("svc")     // svcID(4) -> service name
	bucketOp      = []byte("op")      // svcID(4) opID(4) -> kind(1) name
	bucketAttr    = []byte("attr")    // attrID(4) -> attribute key
	bucketBlocks  = []byte("blocks")  // seq(8) -> block value
	bucketBTime   = []byte("btime")   // minStart(8) seq(8) -> maxStart(8)
	bucketTraces  = []byte("traces")  // traceID(16) seq(8) -> piece value
	bucketOpIdx   = []byte("opidx")   // svcID(4) opID(4) base(8) seq(8) -> posting
	bucketErrIdx  = []byte("erridx")  // svcID(4) base(8) seq(8) -> posting (error spans)
	bucketAttrIdx = []byte("attridx") // svcID(4) attrID(4) uvarint(len) value base(8) seq(8) -> ords

	allBuckets = [][]byte{bucketMeta, bucketSvc, bucketOp, bucketAttr, bucketBlocks,
		bucketBTime, bucketTraces, bucketOpIdx, bucketErrIdx, bucketAttrIdx}

	metaVersion = []byte("version")
	metaStart   = []byte("start")
	metaEnd     = []byte("end")
	metaSpread  = []byte("spread")
)

// Fill percents: buckets whose keys arrive in increasing order are packed tighter.
const (
	fillAppend = 0.9
	fillRandom = 0.5
)

// ErrCorrupt is wrapped by every error caused by stored bytes that do not decode.
var ErrCorrupt = errors.New("corrupt trace data")

// CorruptionError says where undecodable stored bytes were found.
type CorruptionError struct {
	Path   string // partition file
	Bucket string
	Key    []byte
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt trace data in %s bucket %q key %x: %v", e.Path, e.Bucket, e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is reports true for ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// seqKey is the key of the blocks bucket.
func seqKey(seq uint64) []byte { return u64(make([]byte, 0, 8), seq) }

// btimeKey is minStart(8) seq(8).
func btimeKey(minStart int64, seq uint64) []byte {
	return u64(u64(make([]byte, 0, 16), uint64(minStart)), seq)
}

// pieceKey is traceID(16) seq(8).
func pieceKey(id pcommon.TraceID, seq uint64) []byte {
	b := make([]byte, 0, 24)
	b = append(b, id[:]...)
	return u64(b, seq)
}

// opPrefix is svcID(4) opID(4); an op index key appends base(8) seq(8).
func opPrefix(svc, op uint32) []byte { return u32(u32(make([]byte, 0, 24), svc), op) }

// svcPrefix is svcID(4); the error index key appends base(8) seq(8).
func svcPrefix(svc uint32) []byte { return u32(make([]byte, 0, 20), svc) }

// attrPrefix is svcID(4) attrID(4) uvarint(len(value)) value; an attribute index
// key appends base(8) seq(8).
func attrPrefix(svc, attr uint32, value string) []byte {
	b := make([]byte, 0, 8+binary.MaxVarintLen64+len(value)+16)
	b = u32(u32(b, svc), attr)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

// withTimeSeq appends base(8) seq(8) to an index prefix.
func withTimeSeq(prefix []byte, base int64, seq uint64) []byte {
	return u64(u64(prefix, uint64(base)), seq)
}

// splitTimeSeq reads base(8) seq(8) from the end of an index key.
func splitTimeSeq(k []byte) (base int64, seq uint64, ok bool) {
	if len(k) < 16 {
		return 0, 0, false
	}
	n := len(k)
	return int64(binary.BigEndian.Uint64(k[n-16:])), binary.BigEndian.Uint64(k[n-8:]), true
}

// piece is what one block holds of one trace: the value of a traces bucket entry.
//
//	flags(1)  bit 0: the piece holds a root span (one without a parent)
//	uvarint   ordinal of the trace in the block's trace table
//	8 bytes   earliest span start, Unix ns, big endian
//	uvarint   latest span end minus earliest start, ns
//	uvarint   span count
//	uvarint   error span count
//	uvarint   svcID of the root span (or, without a root, of the earliest span)
//	uvarint   opID of the same span
type piece struct {
	root     bool
	ord      uint32
	minStart int64
	maxEnd   int64
	spans    uint32
	errors   uint32
	svc, op  uint32
	// firstStart is the start of the span named by svc/op (not stored).
	firstStart int64
}

func appendPiece(b []byte, p *piece) []byte {
	var flags byte
	if p.root {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(p.ord))
	b = u64(b, uint64(p.minStart))
	b = binary.AppendUvarint(b, uint64(p.maxEnd-p.minStart))
	b = binary.AppendUvarint(b, uint64(p.spans))
	b = binary.AppendUvarint(b, uint64(p.errors))
	b = binary.AppendUvarint(b, uint64(p.svc))
	return binary.AppendUvarint(b, uint64(p.op))
}

func decodePiece(b []byte) (piece, error) {
	var p piece
	if len(b) < 1 {
		return p, errors.New("empty piece")
	}
	p.root = b[0]&1 != 0
	r := reader{b: b[1:]}
	p.ord = uint32(r.uvarint())
	p.minStart = int64(r.fixed64())
	p.maxEnd = p.minStart + int64(r.uvarint())
	p.spans = uint32(r.uvarint())
	p.errors = uint32(r.uvarint())
	p.svc = uint32(r.uvarint())
	p.op = uint32(r.uvarint())
	if r.err != nil {
		return p, fmt.Errorf("cannot decode piece of %d bytes: %w", len(b), r.err)
	}
	return p, nil
}

// A posting is the value of an op or error index entry: for each trace of the
// block with matching spans, the spans' start (relative to the key's base time),
// duration and error flag.
//
//	repeated {
//	  uvarint ordinal
//	  uvarint n
//	  n × { uvarint start-base ; uvarint duration<<1 | error }
//	}
type postingSpan struct {
	start int64 // absolute, ns
	dur   int64
	err   bool
}

type postingTrace struct {
	ord   uint32
	spans []postingSpan
}

func appendPosting(b []byte, base int64, traces []postingTrace) []byte {
	for _, t := range traces {
		b = binary.AppendUvarint(b, uint64(t.ord))
		b = binary.AppendUvarint(b, uint64(len(t.spans)))
		for _, s := range t.spans {
			b = binary.AppendUvarint(b, uint64(s.start-base))
			d := uint64(s.dur) << 1
			if s.err {
				d |= 1
			}
			b = binary.AppendUvarint(b, d)
		}
	}
	return b
}

// scanPosting calls fn for every trace of a posting value with a span for which
// match returns true; it stops early when fn returns false.
func scanPosting(b []byte, base int64, match func(start, dur int64, err bool) bool, fn func(ord uint32, start int64) bool) error {
	r := reader{b: b}
	for len(r.b) > 0 && r.err == nil {
		ord := r.uvarint()
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return fmt.Errorf("posting claims %d spans in %d bytes", n, len(r.b))
		}
		best, found := int64(0), false
		for i := uint64(0); i < n; i++ {
			start := base + int64(r.uvarint())
			d := r.uvarint()
			dur, isErr := int64(d>>1), d&1 != 0
			if match(start, dur, isErr) && (!found || start > best) {
				best, found = start, true
			}
		}
		if r.err != nil {
			break
		}
		if found && !fn(uint32(ord), best) {
			return nil
		}
	}
	if r.err != nil {
		return fmt.Errorf("cannot decode posting of %d bytes: %w", len(b), r.err)
	}
	return nil
}

// Attribute index values are a list of uvarint trace ordinals.
func appendOrds(b []byte, ords []uint32) []byte {
	for _, o := range ords {
		b = binary.AppendUvarint(b, uint64(o))
	}
	return b
}

func scanOrds(b []byte, fn func(ord uint32)) error {
	r := reader{b: b}
	for len(r.b) > 0 && r.err == nil {
		o := r.uvarint()
		if r.err == nil {
			fn(uint32(o))
		}
	}
	if r.err != nil {
		return fmt.Errorf("cannot decode ordinals of %d bytes: %w", len(b), r.err)
	}
	return nil
}

// reader decodes varints and fixed-width integers, remembering the first error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("unexpected end of data")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) fixed64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
