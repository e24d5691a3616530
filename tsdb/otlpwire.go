package tsdb

import (
	"bytes"
	"context"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"outpost/internal/otlpwire"
)

// WriteMetricsWire is WriteMetrics for a request in its protobuf wire form,
// which otlpwire.Scan accepted: it stores the same series and samples, and
// answers the same, without decoding the gauges and sums into pdata. A point's
// series is found by the bytes of its attributes as sent; only the attributes
// of a series not seen before, and each resource, are decoded (see otlpwire).
// The metrics Scan decoded (histograms, summaries) go through WriteMetrics'
// mapping.
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
	name       string // of the metric
	sum, delta bool

	// The scope's order of series in its previous request, the point's place
	// in it, and this request's order once it departs from it.
	prev   *scopeOrder
	at     int
	differ *scopeOrder
}

func (w *wireTranslator) Resource(raw []byte) {
	w.endResource()
	// Scan accepted the body, so pdata decodes the resource (FuzzScan checks
	// it); were it not to, the resource would be an empty one.
	res, _ := otlpwire.Resource(raw)
	w.base, w.info = w.tr.resourceLabels(res)
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
	switch {
	case w.differ != nil:
		sc.order.Store(w.differ)
	case w.prev != nil && w.at < len(w.prev.entries):
		sc.order.Store(w.prev.prefix(w.at)) // fewer points than last time
	}
	w.prev, w.at, w.differ = nil, 0, nil
}

func (w *wireTranslator) Scope(name, version []byte) {
	w.endScope()
	w.scope = w.tr.enterScope(w.base, string(name), string(version))
	w.prev = w.tr.scope.order.Load()
}

// entry returns the cache entry of the series with key tr.sig, nil if none:
// the entry at the point's place in the scope's previous order when the key
// is the same, else the one in the map. It notes the point's series in this
// request's order.
func (w *wireTranslator) entry() *cachedLabels {
	tr, i := w.tr, w.at
	w.at++
	if w.differ == nil && w.prev != nil && i < len(w.prev.entries) && bytes.Equal(w.prev.key(i), tr.sig) {
		return w.prev.entries[i]
	}
	if w.differ == nil {
		// The first point not as before: the order from here on is new.
		w.differ = w.prev.prefix(i)
	}
	return tr.scope.wire[string(tr.sig)]
}

func (w *wireTranslator) Metric(m *otlpwire.Metric) {
	tr := w.tr
	counter := m.Kind == otlpwire.Sum && m.Monotonic
	w.sum, w.delta = m.Kind == otlpwire.Sum, m.Kind == otlpwire.Sum && m.Delta
	// tr.scope.mu is read-locked (enterScope).
	tr.sig = append(appendSignature(tr.sig[:0], m.Name, string(m.Unit), string(m.Description), ""), byte(m.Kind), boolByte(counter))
	f := tr.scope.families[string(tr.sig)]
	if f == nil {
		kind, typ := KindGauge, "gauge"
		if counter {
			kind, typ = KindCounter, "counter"
		}
		unit := string(m.Unit)
		f = putHeld(tr.scope, tr.scope.families, tr.sig,
			&family{name: MetricName(string(m.Name), unit, kind), md: Metadata{Type: typ, Help: string(m.Description), Unit: unit}})
	}
	meta := &tr.db.meta
	if g := f.gen.Load(); g == 0 || g != meta.gen.Load() {
		f.gen.Store(meta.set(f.name, f.md))
	}
	w.name = f.name
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
	// tr.scope.mu is read-locked (enterScope).
	tr.sig = appendSignature(tr.sig[:0], p.Attrs, w.name, "", "")
	e := w.entry()
	if e == nil {
		attrs, err := otlpwire.Attributes(p.Attrs)
		if err != nil { // Scan accepted the body: this does not happen
			tr.reject(1, "malformed data point: "+err.Error())
			return
		}
		e = putHeld(tr.scope, tr.scope.wire, tr.sig, &cachedLabels{lset: tr.buildLabels(w.name, w.scope, attrs, "", "")})
	}
	if w.differ != nil {
		w.differ.add(tr.sig, e)
	}
	v := p.Value()
	if p.NoRecordedValue() {
		v = math.Float64frombits(value.StaleNaN)
	}
	tr.numberPoint(e, w.sum, w.delta, t, int64(p.Start)/1e6, v)
}
