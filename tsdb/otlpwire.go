package tsdb

import (
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
}

func (w *wireTranslator) Resource(raw []byte) {
	w.endResource()
	res, err := otlpwire.Resource(raw)
	if err != nil { // Scan accepted the body: this does not happen
		res.Attributes().Clear()
	}
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
	if w.tr.scope != nil {
		w.tr.scope.mu.RUnlock()
		w.tr.scope = nil
	}
}

func (w *wireTranslator) Scope(name, version []byte) {
	w.endScope()
	w.scope = w.tr.enterScope(w.base, string(name), string(version))
}

func (w *wireTranslator) Metric(m *otlpwire.Metric) {
	kind, typ := KindGauge, "gauge"
	if m.Kind == otlpwire.Sum && m.Monotonic {
		kind, typ = KindCounter, "counter"
	}
	unit := string(m.Unit)
	w.name = MetricName(string(m.Name), unit, kind)
	w.sum, w.delta = m.Kind == otlpwire.Sum, m.Kind == otlpwire.Sum && m.Delta
	w.tr.db.meta.set(w.name, Metadata{Type: typ, Help: string(m.Description), Unit: unit})
}

func (w *wireTranslator) Decoded(m pmetric.Metric) {
	w.latest = max(w.latest, w.tr.metric(m, w.scope))
}

func (w *wireTranslator) Point(p *otlpwire.Point) {
	tr := w.tr
	tr.points++
	t := int64(p.Time) / 1e6
	w.latest = max(w.latest, t)
	// tr.scope.mu is read-locked (enterScope): a new entry is put with the
	// lock let go for the while, as in cachedLabels.
	tr.sig = appendSignature(tr.sig[:0], p.Attrs, w.name, "", "")
	e := tr.scope.wire[string(tr.sig)]
	if e == nil {
		attrs, err := otlpwire.Attributes(p.Attrs)
		if err != nil { // Scan accepted the body: this does not happen
			tr.reject(1, "malformed data point: "+err.Error())
			return
		}
		e = &cachedLabels{lset: tr.buildLabels(w.name, w.scope, attrs, "", "")}
		tr.scope.mu.RUnlock()
		tr.scope.put(tr.scope.wire, tr.sig, e)
		tr.scope.mu.RLock()
	}
	v := p.Value()
	if p.NoRecordedValue() {
		v = math.Float64frombits(value.StaleNaN)
	}
	tr.numberPoint(e, w.sum, w.delta, t, int64(p.Start)/1e6, v)
}
