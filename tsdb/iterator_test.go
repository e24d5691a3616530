package tsdb

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// sampleList adapts samples to storage.Samples, for the list iterator the
// sampleIterator is compared with.
type sampleList []sample

func (l sampleList) Get(i int) chunks.Sample { return &l[i] }
func (l sampleList) Len() int                { return len(l) }

func (s *sample) T() int64                      { return s.t }
func (s *sample) ST() int64                     { return s.st }
func (s *sample) F() float64                    { return s.v }
func (s *sample) H() *histogram.Histogram       { return nil }
func (s *sample) FH() *histogram.FloatHistogram { return s.fh }

func (s *sample) Type() chunkenc.ValueType {
	if s.fh != nil {
		return chunkenc.ValFloatHistogram
	}
	return chunkenc.ValFloat
}

func (s *sample) Copy() chunks.Sample {
	c := *s
	if s.fh != nil {
		c.fh = s.fh.Copy()
	}
	return &c
}

// TestSampleIteratorMatchesList drives sampleIterator and Prometheus' list
// iterator with the same random Next and Seek calls over the same samples
// (floats and float histograms, and no samples at all) and expects the same
// answers at every step.
func TestSampleIteratorMatchesList(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 300 {
		n := rng.IntN(12)
		ss := make([]sample, n)
		tt := int64(rng.IntN(100))
		for i := range ss {
			tt += 1 + int64(rng.IntN(20))
			ss[i] = sample{t: tt, st: tt - 5, v: rng.Float64()}
			if rng.IntN(3) == 0 {
				ss[i].fh = &histogram.FloatHistogram{Count: float64(i), Sum: rng.Float64()}
			}
		}
		want := storage.NewListSeriesIteratorWithCopy(sampleList(ss))
		got := (&listSeries{samples: ss}).Iterator(nil)
		if round%2 == 1 {
			// A reused iterator must start over.
			got = (&listSeries{samples: ss}).Iterator(got)
		}
		for step := range 20 {
			var w, g chunkenc.ValueType
			if rng.IntN(2) == 0 {
				w, g = want.Next(), got.Next()
			} else {
				at := int64(rng.IntN(int(tt) + 30))
				w, g = want.Seek(at), got.Seek(at)
			}
			if w != g {
				t.Fatalf("round %d step %d: type %v, want %v", round, step, g, w)
			}
			switch w {
			case chunkenc.ValFloat:
				wt, wv := want.At()
				gt, gv := got.At()
				if wt != gt || wv != gv || want.AtT() != got.AtT() || want.AtST() != got.AtST() {
					t.Fatalf("round %d step %d: (%d, %v), want (%d, %v)", round, step, gt, gv, wt, wv)
				}
			case chunkenc.ValFloatHistogram:
				_, wh := want.AtFloatHistogram(nil)
				_, gh := got.AtFloatHistogram(nil)
				into := &histogram.FloatHistogram{}
				gt, copied := got.AtFloatHistogram(into)
				if wh != gh || copied != into || copied.Sum != wh.Sum || gt != want.AtT() {
					t.Fatalf("round %d step %d: histogram differs", round, step)
				}
			}
		}
	}
}

// TestSampleMerger: merging lists (in time order or not, sharing timestamps or
// not, some empty) gives each time's sample from the last list that has one, in
// time order, also with the merger's buffer reused from call to call.
func TestSampleMerger(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	var m sampleMerger
	for round := range 2000 {
		lists := make([][]sample, rng.IntN(4))
		at := int64(rng.IntN(50))
		for k := range lists {
			if rng.IntN(3) == 0 {
				at = int64(rng.IntN(50)) // may overlap the lists before
			}
			for range rng.IntN(6) {
				at += int64(1 + rng.IntN(3))
				lists[k] = append(lists[k], sample{t: at, v: float64(k)})
			}
		}
		// What it should be: the last list's sample at each time, by time.
		latest := map[int64]sample{}
		for _, l := range lists {
			for _, s := range l {
				latest[s.t] = s
			}
		}
		var want []sample
		for _, s := range latest {
			want = append(want, s)
		}
		sort.Slice(want, func(i, j int) bool { return want[i].t < want[j].t })
		got := m.merge(lists)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d samples, want %d", round, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("round %d: sample %d is %+v, want %+v", round, i, got[i], want[i])
			}
		}
	}
}
