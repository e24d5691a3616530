package tsdb

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// Querier returns a Prometheus querier over the samples in [mint, maxt]
// (milliseconds, inclusive). Each Select reads a consistent snapshot.
func (db *DB) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{db: db, mint: mint, maxt: maxt}, nil
}

// ChunkQuerier returns a chunk querier over [mint, maxt]; its chunks are
// re-encoded from the samples Querier returns.
func (db *DB) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return &chunkQuerier{querier{db: db, mint: mint, maxt: maxt}}, nil
}

// StartTime returns the oldest timestamp stored, or math.MaxInt64 when empty.
func (db *DB) StartTime() (int64, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t := int64(math.MaxInt64)
	for _, p := range db.parts {
		t = min(t, p.mint)
	}
	for _, f := range db.flushing {
		for _, h := range f.series {
			t = min(t, h.minT())
		}
	}
	for _, s := range db.series {
		if s != nil && !s.head.empty() {
			t = min(t, s.head.minT())
		}
	}
	return t, nil
}

type querier struct {
	db         *DB
	mint, maxt int64
}

func (q *querier) Close() error { return nil }

// postingsFor returns the ids of the series matching every matcher. db.mu must be
// held.
func (db *DB) postingsFor(ms []*labels.Matcher) *roaring.Bitmap {
	var res *roaring.Bitmap
	var negative []*labels.Matcher
	for _, m := range ms {
		if m.Matches("") {
			negative = append(negative, m)
			continue
		}
		values := db.postings[m.Name]
		u := roaring.New()
		if m.Type == labels.MatchEqual {
			values[m.Value].orInto(u)
		} else {
			for v, l := range values {
				if m.Matches(v) {
					l.orInto(u)
				}
			}
		}
		if res == nil {
			res = u
		} else {
			res.And(u)
		}
	}
	if res == nil {
		res = db.allPostings.Clone()
	}
	for _, m := range negative {
		for v, l := range db.postings[m.Name] {
			if !m.Matches(v) {
				l.removeFrom(res)
			}
		}
	}
	return res
}

// Select returns the series matching ms that have samples in the querier's range,
// sorted by labels.
func (q *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	if hints != nil && hints.Func == "series" {
		// Only the labels are wanted (the series API): no sample is read.
		return &seriesSet{list: q.db.selectLabels(mint, maxt, ms), i: -1}
	}
	out, err := q.db.selectSeries(ctx, mint, maxt, ms)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return &seriesSet{list: out, i: -1}
}

func (db *DB) selectSeries(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) ([]*listSeries, error) {
	db.mu.RLock()
	sel, lists, bad, err := db.readParts(ctx, db.postingsFor(ms), mint, maxt)
	if err != nil && bad == nil {
		db.mu.RUnlock()
		return nil, err
	}
	var out []*listSeries
	for i, s := range sel {
		if bad != nil {
			break
		}
		if i%1024 == 0 && ctx.Err() != nil {
			db.mu.RUnlock()
			return nil, ctx.Err()
		}
		for _, f := range db.flushing {
			if ss := f.series[s.id].samples(nil, mint, maxt); len(ss) > 0 {
				lists[i] = append(lists[i], ss)
			}
		}
		if ss := s.head.samples(nil, mint, maxt); len(ss) > 0 {
			lists[i] = append(lists[i], ss)
		}
		merged := mergeSamples(lists[i])
		lists[i] = nil
		if hasHistograms(merged) {
			// Counter-reset hints depend on the samples before the range, as they
			// do in Prometheus' chunks: read from the start, then trim.
			_, merged, bad, err = db.collect(nil, s, math.MinInt64, maxt)
			if bad != nil {
				break
			}
			merged = window(canonicalize(merged), mint, maxt)
		}
		if len(merged) == 0 {
			continue
		}
		out = append(out, &listSeries{lset: s.lset, samples: merged})
	}
	db.mu.RUnlock()
	if bad != nil {
		db.dropPartition(bad, err)
		return nil, fmt.Errorf("cannot read series: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].lset, out[j].lset) < 0 })
	return out, nil
}

// selectLabels returns, sorted by labels and without samples, the series
// matching ms whose head or partition chunks span part of [mint, maxt], as
// Prometheus' series API answers from chunk bounds.
func (db *DB) selectLabels(mint, maxt int64, ms []*labels.Matcher) []*listSeries {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []*listSeries
	it := db.postingsFor(ms).Iterator()
	for it.HasNext() {
		s := db.series[it.Next()]
		if db.spans(s, mint, maxt) {
			out = append(out, &listSeries{lset: s.lset})
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].lset, out[j].lset) < 0 })
	return out
}

// spans reports whether series s has a head or partition chunk that spans part
// of [mint, maxt]. db.mu must be held.
func (db *DB) spans(s *memSeries, mint, maxt int64) bool {
	if s.head.spans(mint, maxt) {
		return true
	}
	for _, f := range db.flushing {
		if h := f.series[s.id]; h != nil && h.spans(mint, maxt) {
			return true
		}
	}
	for _, p := range db.parts {
		if ref, ok := p.series.get(s.id); ok && ref.maxt >= mint && ref.mint <= maxt {
			return true
		}
	}
	return false
}

// readParts returns the series with the given ids and, for each, its samples in
// [mint, maxt] from every partition, one list per partition in partition order.
// Each partition is read in file order, so that every frame is decompressed
// once. On a damaged partition it returns the partition and the error. db.mu
// must be held.
func (db *DB) readParts(ctx context.Context, ids *roaring.Bitmap, mint, maxt int64) ([]*memSeries, [][][]sample, *partition, error) {
	sel := make([]*memSeries, 0, ids.GetCardinality())
	it := ids.Iterator()
	for it.HasNext() {
		sel = append(sel, db.series[it.Next()])
	}
	lists := make([][][]sample, len(sel))
	type pos struct {
		i   int
		ref chunkRef
	}
	var order []pos
	for _, p := range db.parts {
		if p.maxt < mint || p.mint > maxt {
			continue
		}
		order = order[:0]
		for i, s := range sel {
			if ref, ok := p.series.get(s.id); ok && ref.maxt >= mint && ref.mint <= maxt {
				order = append(order, pos{i, ref})
			}
		}
		sort.Slice(order, func(a, b int) bool {
			x, y := order[a].ref, order[b].ref
			return x.off < y.off || x.off == y.off && x.inOff < y.inOff
		})
		var fc frameCache
		for k, o := range order {
			if k%1024 == 1023 && ctx.Err() != nil {
				return nil, nil, nil, ctx.Err()
			}
			ss, err := p.readChunk(nil, sel[o.i].id, mint, maxt, &fc)
			if err != nil {
				return sel, lists, p, err
			}
			if len(ss) > 0 {
				lists[o.i] = append(lists[o.i], ss)
			}
		}
	}
	return sel, lists, nil, nil
}

// collect gathers the samples of series s in [mint, maxt] from every source and
// merges them. It returns the partition that failed to read, if any.
func (db *DB) collect(lists [][]sample, s *memSeries, mint, maxt int64) ([][]sample, []sample, *partition, error) {
	for _, p := range db.parts {
		if p.maxt < mint || p.mint > maxt {
			continue
		}
		ss, err := p.readChunk(nil, s.id, mint, maxt, nil)
		if err != nil {
			return lists, nil, p, err
		}
		lists = append(lists, ss)
	}
	for _, f := range db.flushing {
		if ss := f.series[s.id].samples(nil, mint, maxt); len(ss) > 0 {
			lists = append(lists, ss)
		}
	}
	if ss := s.head.samples(nil, mint, maxt); len(ss) > 0 {
		lists = append(lists, ss)
	}
	return lists, mergeSamples(lists), nil, nil
}

func hasHistograms(ss []sample) bool {
	for i := range ss {
		if ss[i].fh != nil {
			return true
		}
	}
	return false
}

// window returns a copy of the samples of ss within [mint, maxt].
func window(ss []sample, mint, maxt int64) []sample {
	lo := sort.Search(len(ss), func(i int) bool { return ss[i].t >= mint })
	hi := sort.Search(len(ss), func(i int) bool { return ss[i].t > maxt })
	if lo >= hi {
		return nil
	}
	return slices.Clone(ss[lo:hi])
}

// LabelValues returns the values of label name, among the series matching ms when
// given, sorted.
func (q *querier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	db := q.db
	db.mu.RLock()
	defer db.mu.RUnlock()
	var ids *roaring.Bitmap
	if len(ms) > 0 {
		ids = db.postingsFor(ms)
	}
	var out []string
	for v, l := range db.postings[name] {
		if ids == nil || l.intersects(ids) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out, nil, nil
}

// LabelNames returns the label names in use, among the series matching ms when
// given, sorted.
func (q *querier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	db := q.db
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []string
	if len(ms) == 0 {
		for name := range db.postings {
			out = append(out, name)
		}
	} else {
		seen := map[string]struct{}{}
		it := db.postingsFor(ms).Iterator()
		for it.HasNext() {
			db.series[it.Next()].lset.Range(func(l labels.Label) { seen[l.Name] = struct{}{} })
		}
		for name := range seen {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil, nil
}

type chunkQuerier struct{ querier }

func (q *chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(q.querier.Select(ctx, sortSeries, hints, ms...))
}

type seriesSet struct {
	list []*listSeries
	i    int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.list) }
func (s *seriesSet) At() storage.Series                { return s.list[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

type listSeries struct {
	lset    labels.Labels
	samples []sample
}

func (s *listSeries) Labels() labels.Labels { return s.lset }

// Iterator returns an iterator over the series' samples, reusing it when it is
// one this package made.
func (s *listSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if si, ok := it.(*sampleIterator); ok {
		*si = sampleIterator{ss: s.samples, i: -1}
		return si
	}
	return &sampleIterator{ss: s.samples, i: -1}
}

// sampleIterator walks materialised samples. It does what
// storage.NewListSeriesIteratorWithCopy does over them, without an interface
// call for each field of each sample read.
type sampleIterator struct {
	ss []sample
	i  int
}

// millis is a time in milliseconds since the Unix epoch.
type millis = int64

func (it *sampleIterator) typ() chunkenc.ValueType {
	if it.ss[it.i].fh != nil {
		return chunkenc.ValFloatHistogram
	}
	return chunkenc.ValFloat
}

func (it *sampleIterator) Next() chunkenc.ValueType {
	if it.i >= len(it.ss)-1 {
		it.i = len(it.ss)
		return chunkenc.ValNone
	}
	it.i++
	return it.typ()
}

// Seek moves to the first sample at or after t, never backwards. (Its
// parameter's type is spelt millis, an alias of int64, so that go vet does not
// take the method for an io.Seeker's.)
func (it *sampleIterator) Seek(t millis) chunkenc.ValueType {
	it.i = max(it.i, 0)
	if it.i >= len(it.ss) {
		return chunkenc.ValNone
	}
	if it.ss[it.i].t < t {
		rest := it.ss[it.i:]
		it.i += sort.Search(len(rest), func(k int) bool { return rest[k].t >= t })
		if it.i >= len(it.ss) {
			return chunkenc.ValNone
		}
	}
	return it.typ()
}

func (it *sampleIterator) At() (int64, float64) { s := &it.ss[it.i]; return s.t, s.v }
func (it *sampleIterator) AtT() int64           { return it.ss[it.i].t }
func (it *sampleIterator) AtST() int64          { return it.ss[it.i].st }
func (it *sampleIterator) Err() error           { return nil }

// AtHistogram: samples hold no integer histograms.
func (it *sampleIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	return it.ss[it.i].t, nil
}

// AtFloatHistogram copies the histogram into fh when one is given, as callers
// that pass one expect; else it returns the stored one, not to be changed.
func (it *sampleIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	s := &it.ss[it.i]
	if fh == nil || s.fh == nil {
		return s.t, s.fh
	}
	s.fh.CopyTo(fh)
	return s.t, fh
}
