package traceindex

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A block is the stored form of the spans one request brought into one partition
// (at most Options.MaxBlockSpans of them):
//
//	byte       blockVersion (1)
//	uvarint    number of traces T
//	T × 16     trace ids, in ordinal order (postings refer to traces by ordinal)
//	uvarint    length of the uncompressed payload
//	...        one zstd frame (with its content checksum) holding the payload: an
//	           OTLP TracesData protobuf message with the block's spans, grouped by
//	           resource and scope as they arrived and ordered by trace within a scope
//
// The header can be read without decompressing the payload.

// codec compresses and decompresses block payloads. Both halves are safe for
// concurrent use.
type codec struct {
	enc    *zstd.Encoder
	dec    *zstd.Decoder
	maxRaw int
}

func newCodec(maxRaw int) (*codec, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(uint64(maxRaw)+1<<10))
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("cannot create zstd decoder: %w", err)
	}
	return &codec{enc: enc, dec: dec, maxRaw: maxRaw}, nil
}

func (c *codec) close() {
	c.enc.Close()
	c.dec.Close()
}

// appendBlock appends the block value for td, whose traces in ordinal order are
// ids, to dst.
func (c *codec) appendBlock(dst []byte, ids []pcommon.TraceID, td ptrace.Traces) ([]byte, error) {
	var m ptrace.ProtoMarshaler
	raw, err := m.MarshalTraces(td)
	if err != nil {
		return dst, fmt.Errorf("cannot marshal %d spans: %w", td.SpanCount(), err)
	}
	if len(raw) > c.maxRaw {
		return dst, fmt.Errorf("cannot store block of %d bytes: limit is %d", len(raw), c.maxRaw)
	}
	dst = append(dst, blockVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = append(dst, id[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(raw)))
	return c.enc.EncodeAll(raw, dst), nil
}

// blockHeader is the part of a block readable without decompression.
type blockHeader struct {
	ids     []byte // T × 16 bytes; aliases the block value
	rawLen  int
	payload []byte // aliases the block value
}

func (h *blockHeader) traces() int { return len(h.ids) / 16 }

func (h *blockHeader) traceID(ord uint32) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if int(ord) >= h.traces() {
		return id, false
	}
	copy(id[:], h.ids[16*int(ord):])
	return id, true
}

func parseBlockHeader(b []byte, maxRaw int) (blockHeader, error) {
	var h blockHeader
	if len(b) < 1 {
		return h, fmt.Errorf("empty block")
	}
	if b[0] != blockVersion {
		return h, fmt.Errorf("unknown block version %d", b[0])
	}
	r := reader{b: b[1:]}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b))/16 {
		return h, fmt.Errorf("block claims %d traces in %d bytes", n, len(r.b))
	}
	h.ids = r.bytes(int(n) * 16)
	raw := r.uvarint()
	if r.err != nil {
		return h, fmt.Errorf("cannot decode block header of %d bytes: %w", len(b), r.err)
	}
	if raw > uint64(maxRaw) {
		return h, fmt.Errorf("block payload of %d bytes exceeds limit %d", raw, maxRaw)
	}
	h.rawLen = int(raw)
	h.payload = r.b
	return h, nil
}

// decompress returns the header and uncompressed payload of a block value,
// appending the payload to buf[:0].
func (c *codec) decompress(b []byte, buf []byte) (blockHeader, []byte, error) {
	h, err := parseBlockHeader(b, c.maxRaw)
	if err != nil {
		return h, buf, err
	}
	raw, err := c.dec.DecodeAll(h.payload, buf[:0])
	if err != nil {
		return h, buf, fmt.Errorf("cannot decompress block payload of %d bytes: %w", len(h.payload), err)
	}
	if len(raw) != h.rawLen {
		return h, raw, fmt.Errorf("block payload is %d bytes, header says %d", len(raw), h.rawLen)
	}
	return h, raw, nil
}

// traceSpans decodes only the spans of trace id from a block value. buf and
// filtered are scratch space returned for reuse.
func (c *codec) traceSpans(b []byte, id pcommon.TraceID, buf, filtered []byte) (ptrace.Traces, []byte, []byte, error) {
	_, raw, err := c.decompress(b, buf)
	if err != nil {
		return ptrace.Traces{}, raw, filtered, err
	}
	filtered, _, err = filterPayload(filtered[:0], raw, id)
	if err != nil {
		return ptrace.Traces{}, raw, filtered, fmt.Errorf("cannot read block payload of %d bytes: %w", len(raw), err)
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(filtered)
	if err != nil {
		return ptrace.Traces{}, raw, filtered, fmt.Errorf("cannot unmarshal spans of trace %v: %w", id, err)
	}
	return td, raw, filtered, nil
}
