package tsdb

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

func FuzzWALSegment(f *testing.F) {
	var seg []byte
	seg = append(seg, walMagic...)
	var p []byte
	p = append(p, 1)
	p = appendLabels(append(p[:0], 0), labels.FromStrings("a", "b"))
	seg = appendWALRecord(seg, recSeries, p)
	seg = appendWALRecord(seg, recFloats, []byte{1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f})
	seg = appendWALRecord(seg, recHistograms, append([]byte{1, 0, 4, 0}, appendHistogram(nil, testHistogram())...))
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		db := &DB{byHash: map[uint64]*memSeries{}, postings: nil}
		db.postings = newPostings()
		db.allPostings = newBitmap()
		refs := map[uint64]*memSeries{}
		decodeWALSegment("fuzz", b, func(typ byte, payload []byte) error {
			return db.replayRecord(refs, typ, payload)
		})
	})
}

func testHistogram() *histogram.FloatHistogram {
	return &histogram.FloatHistogram{
		Schema: 1, Count: 10, Sum: 20, ZeroCount: 1, ZeroThreshold: 0.001,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []float64{4, 5},
	}
}

func FuzzSeriesChunk(f *testing.F) {
	ss := []sample{{t: 1, v: 1}, {t: 2, v: math.NaN()}, {t: 3, st: 1, v: 2}}
	ss = append(ss, sample{t: 4, fh: testHistogram()}, sample{t: 5, fh: testHistogram()})
	raw := appendSeriesChunk(nil, ss)
	f.Add(appendChunkRecord(nil, raw))
	f.Add(raw)
	f.Add(appendChunkRecord(nil, appendSeriesChunk(nil, []sample{{t: 1, v: 0.1}, {t: 2, v: 0.2}})))
	var long []sample // float blocks with time ranges
	for i := range 600 {
		long = append(long, sample{t: int64(i) * 60_000, v: float64(i % 7)})
	}
	f.Add(appendSeriesChunk(nil, long))
	f.Fuzz(func(t *testing.T, rec []byte) {
		// Both layers: the framed record (checksum, compression) and, since a
		// mutated record rarely keeps a valid checksum, the runs directly.
		if raw, err := decodeChunkRecord(rec); err == nil {
			decodeSeriesChunk(nil, raw)
		}
		decodeSeriesChunk(nil, rec)
		decodeSeriesChunkRange(nil, rec, 3_600_000, 7_200_000)
	})
}
