package traceindex

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func testBlock(t testing.TB, c *codec) ([]byte, []pcommon.TraceID, ptrace.Traces) {
	td := build(
		sp{trace: 1, span: 1, svc: "a", name: "x", start: t0, dur: time.Millisecond, attrs: map[string]any{"http.route": "/r"}},
		sp{trace: 2, span: 2, parent: 1, svc: "b", name: "y", start: t0, dur: time.Second, err: true},
	)
	ids := []pcommon.TraceID{tid(1), tid(2)}
	v, err := c.appendBlock(nil, ids, td)
	if err != nil {
		t.Fatal(err)
	}
	return v, ids, td
}

func TestBlockRoundTrip(t *testing.T) {
	c, err := newCodec(maxBlockRaw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	v, ids, td := testBlock(t, c)
	h, got, _, err := c.decodeBlock(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.traces() != 2 {
		t.Fatalf("%d traces", h.traces())
	}
	for i, id := range ids {
		if g, _ := h.traceID(uint32(i)); g != id {
			t.Errorf("trace %d: %v, want %v", i, g, id)
		}
	}
	var m ptrace.ProtoMarshaler
	a, _ := m.MarshalTraces(td)
	b, _ := m.MarshalTraces(got)
	if !bytes.Equal(a, b) {
		t.Error("decoded block differs from the original")
	}
	// Named damages are reported, not panicked on.
	damages := map[string][]byte{
		"empty":          {},
		"bad version":    append([]byte{9}, v[1:]...),
		"truncated ids":  v[:10],
		"truncated zstd": v[:len(v)-5],
		"flipped byte":   func() []byte { d := bytes.Clone(v); d[len(d)-3] ^= 0xff; return d }(),
		"huge count":     {blockVersion, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge raw size":  append(append([]byte{blockVersion, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f), v[len(v)-20:]...),
	}
	for name, d := range damages {
		if _, _, _, err := c.decodeBlock(d, nil); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestCorruptionIsReported(t *testing.T) {
	ix := openTest(t, nil)
	mustWrite(t, ix, build(sp{trace: 1, span: 1, svc: "s", name: "x", start: t0.Add(-time.Minute), dur: 1}))
	p := ix.parts[0]
	err := p.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocks)
		k, v := b.Cursor().First()
		d := bytes.Clone(v)
		d[len(d)-2] ^= 0xff
		return b.Put(bytes.Clone(k), d)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ix.Trace(t.Context(), tid(1))
	var ce *CorruptionError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Bucket != "blocks" {
		t.Fatalf("err %v, want a corruption error in the blocks bucket", err)
	}
	// Make the index consistent again for the cleanup check: drop everything.
	if _, err := ix.DropBefore(t0.Add(48 * time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	c, err := newCodec(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	v, _, _ := testBlock(f, c)
	f.Add(v)
	f.Add(v[:len(v)/2])
	f.Add([]byte{blockVersion, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		// The decoders the reads use must not panic on anything.
		c.traceSpans(b, tid(1), nil, nil)
		if _, raw, err := c.decompress(b, nil); err == nil {
			forSpanLinks(raw, func([]byte, *spanLink) error { return nil })
		}
		h, td, _, err := c.decodeBlock(b, nil)
		if err != nil {
			return
		}
		// Whatever decodes must encode again.
		ids := make([]pcommon.TraceID, h.traces())
		for i := range ids {
			ids[i], _ = h.traceID(uint32(i))
		}
		if _, err := c.appendBlock(nil, ids, td); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzDecodeIndexValues(f *testing.F) {
	pc := piece{root: true, ord: 3, minStart: 1e18, maxEnd: 1e18 + 5e6, spans: 15, errors: 1, svc: 2, op: 9}
	f.Add(appendPiece(nil, &pc))
	f.Add(appendPosting(nil, 100, []postingTrace{{ord: 1, spans: []postingSpan{{start: 150, dur: 7, err: true}, {start: 100, dur: 1}}}}))
	f.Add(appendOrds(nil, []uint32{0, 5, 300}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePiece(b); err == nil {
			if q, err := decodePiece(appendPiece(nil, &p)); err != nil || q != p {
				t.Fatalf("piece %+v does not round-trip: %+v, %v", p, q, err)
			}
		}
		scanPosting(b, 0, func(int64, int64, bool) bool { return true }, func(uint32, int64) bool { return true })
		scanOrds(b, func(uint32) {})
	})
}

// FuzzWirePayload checks the wire-level payload walkers against pdata's
// unmarshaller: whatever pdata decodes, the walkers must decode alike.
func FuzzWirePayload(f *testing.F) {
	td := build(
		sp{trace: 1, span: 1, svc: "a", name: "x", start: t0, dur: time.Millisecond, attrs: map[string]any{"http.route": "/r"}},
		sp{trace: 2, span: 2, parent: 1, svc: "b", name: "y", start: t0, dur: time.Second, err: true},
		sp{trace: 1, span: 3, parent: 1, svc: "b", name: "z", start: t0, dur: time.Second},
	)
	var m ptrace.ProtoMarshaler
	raw, _ := m.MarshalTraces(td)
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Fuzz(func(t *testing.T, raw []byte) {
		var u ptrace.ProtoUnmarshaler
		want, uerr := u.UnmarshalTraces(raw)
		id := tid(1)
		filtered, kept, err := filterPayload(nil, raw, id)
		linkErr := forSpanLinks(raw, func([]byte, *spanLink) error { return nil })
		if uerr != nil {
			return // malformed: the walkers may or may not notice, but must not panic
		}
		// Stored payloads are pdata's own encoding; compare on those (pdata
		// also tolerates odd unknown fields the walkers refuse).
		if canon, err := m.MarshalTraces(want); err != nil || !bytes.Equal(canon, raw) {
			return
		}
		if err != nil || linkErr != nil {
			t.Fatalf("pdata decodes the payload, walkers fail: %v / %v", err, linkErr)
		}
		n, links := 0, 0
		rss := want.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				links += spans.Len()
				for k := 0; k < spans.Len(); k++ {
					if spans.At(k).TraceID() == id {
						n++
					}
				}
			}
		}
		if kept != n {
			t.Fatalf("filter kept %d spans of the trace, pdata sees %d", kept, n)
		}
		got, err := u.UnmarshalTraces(filtered)
		if err != nil || got.SpanCount() != n {
			t.Fatalf("filtered payload: %d spans, err %v; want %d", got.SpanCount(), err, n)
		}
		seen := 0
		forSpanLinks(raw, func([]byte, *spanLink) error { seen++; return nil })
		if seen != links {
			t.Fatalf("span walker saw %d spans, pdata %d", seen, links)
		}
	})
}

// decodeBlock decodes a whole block value (the reads decode only parts). buf is scratch space that may be
// reused by the caller for the next call; the returned Traces does not alias it.
func (c *codec) decodeBlock(b []byte, buf []byte) (blockHeader, ptrace.Traces, []byte, error) {
	h, raw, err := c.decompress(b, buf)
	if err != nil {
		return h, ptrace.Traces{}, raw, err
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(raw)
	if err != nil {
		return h, ptrace.Traces{}, raw, fmt.Errorf("cannot unmarshal block payload of %d bytes: %w", len(raw), err)
	}
	return h, td, raw, nil
}
