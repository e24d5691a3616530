package tsdb

import (
	"context"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"outpost/internal/otlpwire"
)

// WriteMetricsWire is WriteMetrics for a request in its protobuf wire form,
// which otlpwire.Scan accepted: it stores the same series and samples, and
// answers the same, without decoding the gauges, sums and explicit-bucket
// histograms into pdata. A point's series is found by the bytes of its
// attributes as sent; only the attributes of a series not seen before, and
// each resource, are decoded (see otlpwire). The metrics Scan decoded
// (exponential histograms, summaries, points with exemplars) go through
// WriteMetrics' mapping.
func (db *DB) WriteMetricsWire(ctx context.Context, m *otlpwire.Metrics) (rejected int64, reason string, err error) {
	return db.writeTranslated(ctx, m.Points, func(tr *translator) {
		w := wireTranslator{tr: tr, latest: math.MinInt64}
		otlpwire.Walk(m, &w)
		w.endResource()
	})
}

// wireTranslator is the otlpwire.Visitor that feeds a translator.
type wireTranslator struct {
	tr         *translator
	base, info labels.Labels // of the resource
	latest     int64         // its latest point's time, Unix ms
	scope      labels.Labels
	name       string          // of the metric
	hist       histogramSeries // of a histogram
	sum, delta bool

	// The attributes of the point being translated, once decoded.
	attrs    pcommon.Map
	attrsErr error
	decoded  bool

	// This request's series and metrics in the scope, against those of the
	// scope's previous request.
	points  orderWalk[cachedLabels]
	metrics orderWalk[family]
}

func (w *wireTranslator) Resource(raw []byte) {
	w.endResource()
	w.base, w.info = w.tr.db.lcache.resources.get(raw, func() (base, info labels.Labels) {
		// Scan accepted the body, so pdata decodes the resource (FuzzScan
		// checks it); were it not to, the resource would be an empty one.
		res, _ := otlpwire.Resource(raw)
		return w.tr.resourceLabels(res)
	})
}

// endResource ends the scope and the resource being translated: target_info
// gets a sample at the resource's latest point.
func (w *wireTranslator) endResource() {
	w.endScope()
	if !w.info.IsEmpty() && w.latest != math.MinInt64 {
		w.tr.add(w.info, sample{t: w.latest, v: 1})
	}
	w.base, w.info, w.latest = labels.EmptyLabels(), labels.EmptyLabels(), math.MinInt64
}

func (w *wireTranslator) endScope() {
	sc := w.tr.scope
	if sc == nil {
		return
	}
	w.tr.leaveScope()
	w.points.end(&sc.order)
	w.metrics.end(&sc.familyOrder)
}

func (w *wireTranslator) Scope(name, version []byte) {
	w.endScope()
	w.scope = w.tr.enterScope(w.base, string(name), string(version))
	w.points.prev = w.tr.scope.order.Load()
	w.metrics.prev = w.tr.scope.familyOrder.Load()
}

func (w *wireTranslator) Metric(m *otlpwire.Metric) {
	tr := w.tr
	counter := m.Kind == otlpwire.Sum && m.Monotonic
	w.sum, w.delta = m.Kind == otlpwire.Sum, m.Kind != otlpwire.Gauge && m.Delta
	// tr.scope.mu is read-locked (enterScope).
	tr.sig = append(appendSignature(tr.sig[:0], m.Name, string(m.Unit), string(m.Description), ""), byte(m.Kind), boolByte(counter))
	f := w.metrics.find(tr.sig, tr.scope.families)
	if f == nil {
		kind, typ := KindGauge, "gauge"
		switch {
		case counter:
			kind, typ = KindCounter, "counter"
		case m.Kind == otlpwire.Histogram:
			kind, typ = KindHistogram, "histogram"
		}
		unit := string(m.Unit)
		f = &family{name: MetricName(string(m.Name), unit, kind), md: Metadata{Type: typ, Help: string(m.Description), Unit: unit}}
		if kind == KindHistogram {
			f.hist = histogramNames(f.name)
		}
		f = putHeld(tr.scope, tr.scope.families, tr.sig, f)
	}
	w.metrics.add(tr.sig, f)
	meta := &tr.db.meta
	if g := f.gen.Load(); g == 0 || g != meta.gen.Load() {
		f.gen.Store(meta.set(f.name, f.md))
	}
	w.name, w.hist = f.name, f.hist
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (w *wireTranslator) Decoded(m pmetric.Metric) {
	w.latest = max(w.latest, w.tr.metric(m, w.scope))
}

func (w *wireTranslator) Point(p *otlpwire.Point) {
	tr := w.tr
	tr.points++
	t := int64(p.Time) / 1e6
	w.latest = max(w.latest, t)
	w.decoded = false
	e, err := w.series(p.Attrs, w.name, "", "")
	if err != nil { // Scan accepted the body: this does not happen
		tr.reject(1, "malformed data point: "+err.Error())
		return
	}
	v := p.Value()
	if p.NoRecordedValue() {
		v = math.Float64frombits(value.StaleNaN)
	}
	tr.numberPoint(e, w.sum, w.delta, t, int64(p.Start)/1e6, v)
}

func (w *wireTranslator) HistogramPoint(p *otlpwire.HistogramPoint) {
	tr := w.tr
	tr.points++
	t := int64(p.Time) / 1e6
	w.latest = max(w.latest, t)
	w.decoded = false
	hp := histogramPoint{
		t: t, st: int64(p.Start) / 1e6, count: p.Count, sum: p.Sum, hasSum: p.HasSum, stale: p.NoRecordedValue(),
		bounds: p.ExplicitBounds(tr.bounds[:0]), counts: p.BucketCounts(tr.counts[:0]),
	}
	tr.bounds, tr.counts = hp.bounds, hp.counts
	tr.addHistogram(w.hist, &hp, w.delta, func(name, extraName, extraValue string) (*cachedLabels, error) {
		return w.series(p.Attrs, name, extraName, extraValue)
	})
}

// series returns the cache entry of the point's series with the given name
// and extra label, attrs being the point's attributes as sent; a series not
// seen before gets its labels from the attributes decoded, once per point.
func (w *wireTranslator) series(attrs []byte, name, extraName, extraValue string) (*cachedLabels, error) {
	tr := w.tr
	// tr.scope.mu is read-locked (enterScope).
	tr.sig = appendSignature(tr.sig[:0], attrs, name, extraName, extraValue)
	e := w.points.find(tr.sig, tr.scope.wire)
	if e == nil {
		if !w.decoded {
			w.attrs, w.attrsErr = otlpwire.Attributes(attrs)
			w.decoded = true
		}
		if w.attrsErr != nil {
			return nil, w.attrsErr
		}
		e = putHeld(tr.scope, tr.scope.wire, tr.sig, &cachedLabels{lset: tr.buildLabels(name, w.scope, w.attrs, extraName, extraValue)})
	}
	w.points.add(tr.sig, e)
	return e, nil
}
