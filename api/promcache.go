package api

import (
	"container/list"
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/annotations"
)

// The range-query cache. Each step of a range query is evaluated on its own: its
// value depends only on the stored samples at and before the step's time (given
// the expression, the step and the lookback), not on the query's start or end.
// So the answer of a query asked again over an overlapping range (a dashboard's
// refresh, a panel reloaded, a range zoomed out) can be assembled from the steps
// already answered plus the steps evaluated now, as Thanos' and Cortex' query
// frontends and VictoriaMetrics do.
//
// Unlike theirs, it is exact: the TSDB reports every change to what queries
// read (ChangeFeed) with the earliest time it touches, and the cache forgets the
// steps at and after that time, in its entries and in the answers being
// computed. A late sample, a new series backfilled into the past, and a
// partition removed by retention or quarantine all change answers, and all are
// reported. Expressions that read after a step's time (a negative offset) or at
// a fixed time (the @ modifier) are not cached.

// ChangeFeed is implemented by a MetricsDB that reports changes to what queries
// read (*tsdb.DB): fn is called after each change with the earliest sample time
// (Unix milliseconds) it may have touched. The Prometheus API caches range
// queries only over a MetricsDB that has it.
type ChangeFeed interface {
	OnChange(fn func(from int64))
}

// rangeKey names the answers of one expression on one grid of steps.
type rangeKey struct {
	query    string
	step     int64 // ms
	phase    int64 // start mod step: steps of keys that differ here never meet
	lookback time.Duration
}

// maxEntries bounds the entries, which a change may have to walk: a few
// dashboards' panels, many times over.
const maxEntries = 1024

// rangeEntry is a cached answer: the steps first, first+step, … last.
type rangeEntry struct {
	key         rangeKey
	first, last int64
	step        int64
	mat         promql.Matrix // sorted by labels; each series' points sorted; read-only
	bytes       int64
	elem        *list.Element
}

// flight is a range query being answered: changes during it lower from, and
// its answer is kept only for the steps before from.
type flight struct {
	from int64
	last int64
}

type rangeCache struct {
	max int64 // bytes

	mu      sync.Mutex
	bytes   int64
	entries map[rangeKey]*rangeEntry
	lru     list.List // of *rangeEntry, most recently used first
	flights map[*flight]struct{}
	// horizon and flightHorizon are at least the latest step of any entry and
	// of any flight: changes from after both concern none, and do not take the
	// lock; changes from after horizon do not look at the entries.
	horizon, flightHorizon atomic.Int64

	results *prometheus.CounterVec
	size    prometheus.GaugeFunc
	// evaluated counts the steps evaluated by the engine (tests).
	evaluated atomic.Int64
}

// newRangeCache returns a cache of at most max bytes, kept exact by feed.
func newRangeCache(feed ChangeFeed, max int64, reg prometheus.Registerer) *rangeCache {
	c := &rangeCache{max: max, entries: map[rangeKey]*rangeEntry{}, flights: map[*flight]struct{}{}}
	c.horizon.Store(math.MinInt64)
	c.flightHorizon.Store(math.MinInt64)
	c.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_query_range_cache_requests_total",
		Help: "Range queries by how the cache answered them: hit (every step cached), partial, miss, or uncacheable (negative offset, @ modifier).",
	}, []string{"result"})
	c.size = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outpost_query_range_cache_bytes",
		Help: "Bytes of range-query answers the cache holds.",
	}, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(c.bytes)
	})
	if reg != nil {
		reg.MustRegister(c.results, c.size)
	}
	feed.OnChange(c.changed)
	return c
}

// cacheable reports whether every step of expr reads only samples at or before
// its own time, and none at a fixed time.
func cacheable(expr parser.Expr) bool {
	ok := true
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			ok = ok && n.Timestamp == nil && n.StartOrEnd == 0 && n.OriginalOffset >= 0 && n.OriginalOffsetExpr == nil
		case *parser.SubqueryExpr:
			ok = ok && n.Timestamp == nil && n.StartOrEnd == 0 && n.OriginalOffset >= 0 && n.OriginalOffsetExpr == nil
		}
		return nil
	})
	return ok
}

// changed forgets what the change from from on may have made wrong.
func (c *rangeCache) changed(from int64) {
	if from > c.horizon.Load() && from > c.flightHorizon.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fh := int64(math.MinInt64)
	for f := range c.flights {
		f.from = min(f.from, from)
		fh = max(fh, f.last)
	}
	c.flightHorizon.Store(fh)
	if from > c.horizon.Load() {
		return
	}
	h := int64(math.MinInt64)
	for _, e := range c.entries {
		if e.last >= from {
			c.trimLocked(e, from)
		}
		if c.entries[e.key] == e {
			h = max(h, e.last)
		}
	}
	c.horizon.Store(h)
}

// trimLocked drops e's steps at and after from, and e when none is left. c.mu
// is held.
func (c *rangeCache) trimLocked(e *rangeEntry, from int64) {
	if from <= e.first {
		c.removeLocked(e)
		return
	}
	last := e.first + (from-1-e.first)/e.step*e.step // the latest step before from
	mat := cut(e.mat, e.first, last)
	c.bytes -= e.bytes
	*e = rangeEntry{key: e.key, first: e.first, last: last, step: e.step, mat: mat, bytes: matrixBytes(mat), elem: e.elem}
	c.bytes += e.bytes
}

func (c *rangeCache) removeLocked(e *rangeEntry) {
	delete(c.entries, e.key)
	c.lru.Remove(e.elem)
	c.bytes -= e.bytes
}

// begin registers a query answering steps up to last.
func (c *rangeCache) begin(last int64) *flight {
	f := &flight{from: math.MaxInt64, last: last}
	c.mu.Lock()
	c.flights[f] = struct{}{}
	if last > c.flightHorizon.Load() {
		c.flightHorizon.Store(last)
	}
	c.mu.Unlock()
	return f
}

// lookup returns the cached steps of key in [start, last]: their matrix and
// range; first > last when none.
func (c *rangeCache) lookup(key rangeKey, start, last int64) (promql.Matrix, int64, int64) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil || e.last < start || e.first > last {
		c.mu.Unlock()
		return nil, 1, 0
	}
	c.lru.MoveToFront(e.elem)
	mat, first, end := e.mat, max(e.first, start), min(e.last, last)
	c.mu.Unlock()
	return cut(mat, first, end), first, end
}

// finish ends flight f, keeping its answer mat (steps start … last) for the
// steps before any change reported during it.
func (c *rangeCache) finish(f *flight, key rangeKey, mat promql.Matrix, start, last int64, keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, f)
	if !keep {
		return
	}
	if f.from <= last {
		if f.from <= start {
			return
		}
		last = start + (f.from-1-start)/key.step*key.step
		mat = cut(mat, start, last)
	}
	e := &rangeEntry{key: key, first: start, last: last, step: key.step, mat: mat, bytes: matrixBytes(mat)}
	if e.bytes > c.max/4 {
		return // one answer may not push out most others
	}
	if old := c.entries[key]; old != nil {
		c.removeLocked(old)
	}
	e.elem = c.lru.PushFront(e)
	c.entries[key] = e
	c.bytes += e.bytes
	for c.bytes > c.max || len(c.entries) > maxEntries {
		c.removeLocked(c.lru.Back().Value.(*rangeEntry))
	}
	if last > c.horizon.Load() {
		c.horizon.Store(last)
	}
}

// cut returns the points of mat at steps first … last, without the series left
// with none. The points are shared with mat.
func cut(mat promql.Matrix, first, last int64) promql.Matrix {
	out := make(promql.Matrix, 0, len(mat))
	for _, s := range mat {
		fl := s.Floats[sort.Search(len(s.Floats), func(i int) bool { return s.Floats[i].T >= first }):]
		fl = fl[:sort.Search(len(fl), func(i int) bool { return fl[i].T > last })]
		hs := s.Histograms[sort.Search(len(s.Histograms), func(i int) bool { return s.Histograms[i].T >= first }):]
		hs = hs[:sort.Search(len(hs), func(i int) bool { return hs[i].T > last })]
		if len(fl)+len(hs) == 0 {
			continue
		}
		out = append(out, promql.Series{Metric: s.Metric, Floats: fl, Histograms: hs})
	}
	return out
}

// matrixBytes is about the memory mat holds.
func matrixBytes(mat promql.Matrix) int64 {
	n := int64(24 * cap(mat))
	for _, s := range mat {
		n += int64(s.Metric.ByteSize()) + 16*int64(cap(s.Floats)) + 16*int64(cap(s.Histograms))
		for _, h := range s.Histograms {
			n += 160 + 8*int64(len(h.H.PositiveBuckets)+len(h.H.NegativeBuckets)+len(h.H.CustomValues)) +
				8*int64(len(h.H.PositiveSpans)+len(h.H.NegativeSpans))
		}
	}
	return n
}

// merge joins answers of disjoint step ranges, each sorted by labels and given
// in time order, into one sorted by labels. The points are copied (histograms
// too): the parts may be in the engine's pooled memory.
func merge(parts ...promql.Matrix) promql.Matrix {
	next := make([]int, len(parts)) // the next series of each part
	var out promql.Matrix
	same := make([]int, 0, len(parts))
	for {
		// The parts whose next series has the least labels.
		same = same[:0]
		for k, m := range parts {
			if next[k] == len(m) {
				continue
			}
			if len(same) > 0 {
				c := labels.Compare(m[next[k]].Metric, parts[same[0]][next[same[0]]].Metric)
				if c > 0 {
					continue
				}
				if c < 0 {
					same = same[:0]
				}
			}
			same = append(same, k)
		}
		if len(same) == 0 {
			return out
		}
		var nf, nh int
		for _, k := range same {
			nf += len(parts[k][next[k]].Floats)
			nh += len(parts[k][next[k]].Histograms)
		}
		s := promql.Series{Metric: parts[same[0]][next[same[0]]].Metric}
		if nf > 0 {
			s.Floats = make([]promql.FPoint, 0, nf)
		}
		if nh > 0 {
			s.Histograms = make([]promql.HPoint, 0, nh)
		}
		for _, k := range same {
			in := parts[k][next[k]]
			s.Floats = append(s.Floats, in.Floats...)
			for _, h := range in.Histograms {
				s.Histograms = append(s.Histograms, promql.HPoint{T: h.T, H: h.H.Copy()})
			}
			next[k]++
		}
		out = append(out, s)
	}
}

// cachedRange answers a range query through the cache: it evaluates with the
// engine only the steps of [start, last] the cache does not hold.
func (p *Prometheus) cachedRange(ctx context.Context, opts promql.QueryOpts, qs string, start, last, step int64) (promql.Matrix, annotations.Annotations, error) {
	c := p.cache
	key := rangeKey{query: qs, step: step, phase: ((start % step) + step) % step, lookback: opts.LookbackDelta()}
	f := c.begin(last)
	cached, ca, cb := c.lookup(key, start, last)
	var pieces [][2]int64
	switch {
	case ca > cb:
		pieces = append(pieces, [2]int64{start, last})
		c.results.WithLabelValues("miss").Inc()
	case start == ca && last == cb:
		c.results.WithLabelValues("hit").Inc()
		c.finish(f, key, nil, 0, 0, false) // the entry stays as it is
		return cached, nil, nil
	default:
		if start < ca {
			pieces = append(pieces, [2]int64{start, ca - step})
		}
		if last > cb {
			pieces = append(pieces, [2]int64{cb + step, last})
		}
		c.results.WithLabelValues("partial").Inc()
	}
	var (
		before, after []promql.Matrix
		annos         annotations.Annotations
	)
	for _, pc := range pieces {
		m, a, done, err := p.evalSplit(ctx, opts, qs, pc[0], pc[1], step)
		defer done() // once merged out of the engine's memory
		annos.Merge(a)
		if err != nil {
			c.finish(f, key, nil, 0, 0, false)
			return nil, annos, err
		}
		c.evaluated.Add((pc[1]-pc[0])/step + 1)
		if ca <= cb && pc[0] < ca {
			before = m
		} else {
			after = m
		}
	}
	mat := cached
	if len(pieces) > 0 {
		mat = merge(slices.Concat(before, []promql.Matrix{cached}, after)...)
		if mat == nil {
			mat = promql.Matrix{}
		}
	}
	// Annotations speak of the whole range evaluated; an answer with some is
	// not kept, so that a later answer never shows them for steps they did not
	// concern, or hides them.
	c.finish(f, key, mat, start, last, len(annos) == 0)
	return mat, annos, nil
}

// splitSteps is the fewest steps a part of a range query split across cores
// has: fewer, and the part's fixed cost (reading each series' samples from
// before its first step, for its ranges and the lookback) outweighs the gain.
const splitSteps = 60

// evalSplit evaluates qs at the steps start … last, in parts evaluated at once
// on the cores there are, and returns the parts' answers in time order. A new
// range query's wait is then about its evaluation's CPU divided by the cores.
func (p *Prometheus) evalSplit(ctx context.Context, opts promql.QueryOpts, qs string, start, last, step int64) (_ []promql.Matrix, _ annotations.Annotations, done func(), _ error) {
	steps := (last-start)/step + 1
	n := min(int64(p.parts), steps/splitSteps)
	if p.partEngine == nil || n <= 1 {
		m, a, done, err := p.evalRange(ctx, p.engine, opts, qs, start, last, step)
		return []promql.Matrix{m}, a, done, err
	}
	mats, annos, done, err := p.evalParts(ctx, opts, qs, start, last, step, n)
	var tooMany promql.ErrTooManySamples
	if errors.As(err, &tooMany) {
		// A part needed more than its share of MaxSamples: the query whole
		// may still fit.
		done()
		m, a, done, err := p.evalRange(ctx, p.engine, opts, qs, start, last, step)
		return []promql.Matrix{m}, a, done, err
	}
	return mats, annos, done, err
}

// evalParts evaluates qs at the steps start … last in n parts at once, with
// the part engine.
func (p *Prometheus) evalParts(ctx context.Context, opts promql.QueryOpts, qs string, start, last, step, n int64) (_ []promql.Matrix, _ annotations.Annotations, done func(), _ error) {
	steps := (last-start)/step + 1
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mats     = make([]promql.Matrix, n)
		annos    = make([]annotations.Annotations, n)
		dones    = make([]func(), n)
		failOnce sync.Once
		failed   error // the first part's error; the others are then cancelled
	)
	for i := range n {
		from := start + steps*i/n*step
		to := start + (steps*(i+1)/n-1)*step
		wg.Go(func() {
			var err error
			mats[i], annos[i], dones[i], err = p.evalRange(ctx, p.partEngine, opts, qs, from, to, step)
			if err != nil {
				failOnce.Do(func() { failed = err; cancel() })
			}
		})
	}
	wg.Wait()
	var all annotations.Annotations
	for _, a := range annos {
		all.Merge(a)
	}
	return mats, all, func() {
		for _, d := range dones {
			d()
		}
	}, failed
}

// evalRange evaluates qs at the steps start … last with engine. The
// answer is in the engine's pooled memory until done is called.
func (p *Prometheus) evalRange(ctx context.Context, engine *promql.Engine, opts promql.QueryOpts, qs string, start, last, step int64) (_ promql.Matrix, _ annotations.Annotations, done func(), _ error) {
	qry, err := engine.NewRangeQuery(ctx, p.limited(), opts, qs, time.UnixMilli(start), time.UnixMilli(last), time.Duration(step)*time.Millisecond)
	if err != nil {
		return nil, nil, func() {}, buildError{err}
	}
	res := qry.Exec(ctx)
	if res.Err != nil {
		qry.Close()
		return nil, res.Warnings, func() {}, res.Err
	}
	return res.Value.(promql.Matrix), res.Warnings, qry.Close, nil
}

// buildError is an error of building a query, not of running it: it is
// answered as Prometheus answers those (constructionError).
type buildError struct{ err error }

func (e buildError) Error() string { return e.err.Error() }
func (e buildError) Unwrap() error { return e.err }
