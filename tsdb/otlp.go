package tsdb

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The OTLP → Prometheus mapping, following the OpenTelemetry specification
// "Prometheus and OpenMetrics Compatibility". README.md states the rules,
// including how job and instance are derived.

// WriteMetrics maps an OTLP batch onto Prometheus series and stores it. It returns
// once every accepted sample is durable. rejected counts the data points refused
// (invalid, or too old for the out-of-order window or the retention), with reason.
func (db *DB) WriteMetrics(ctx context.Context, md pmetric.Metrics) (rejected int64, reason string, err error) {
	return db.writeTranslated(ctx, md.DataPointCount(), func(tr *translator) { tr.translate(md) })
}

// writeTranslated stores what translate puts in the translator's batch; n is
// the number of data points, to size the batch.
func (db *DB) writeTranslated(ctx context.Context, n int, translate func(*translator)) (rejected int64, reason string, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", fmt.Errorf("cannot write metrics: %w", err)
	}
	bufs := translatorPool.Get().(*translatorBufs)
	tr := translator{
		db:      db,
		now:     db.opts.Now().UnixMilli(),
		id:      uint32(translatorIDs.Add(1)),
		promote: db.opts.PromoteResourceAttributes,
		batch:   grown(bufs.batch, n),
		entries: grown(bufs.entries, n),
		flat:    grown(bufs.flat, 2*n),
	}
	defer func() { bufs.put(tr.batch, tr.entries, tr.flat) }()
	translate(&tr)
	stRejected, stReason, err := db.appendBatch(tr.batch)
	// Remember the refs of the series resolved (even before a failure: those
	// series exist), so that their next points skip the series lookup.
	for _, i := range tr.unresolved {
		if e := tr.entries[i]; tr.batch[i].ref != 0 && e.ref.Load() == 0 {
			e.ref.Store(uint64(tr.batch[i].ref))
		}
	}
	if db.stats.collected.Load() > 0 {
		// A cached ref may name a collected series, which the batch's labels
		// created anew: keep the new ref.
		for i, e := range tr.entries {
			if e != nil && tr.batch[i].ref != 0 && e.ref.Load() != uint64(tr.batch[i].ref) {
				e.ref.Store(uint64(tr.batch[i].ref))
			}
		}
	}
	if err != nil {
		return 0, "", err
	}
	rejected = tr.rejected
	reasons := tr.reasons
	if stRejected > 0 {
		// A data point counts once however many of its samples were refused.
		rejected += min(stRejected, tr.points-tr.rejected)
		reasons = append(reasons, stReason)
	}
	return rejected, strings.Join(reasons, "; "), nil
}

// translatorBufs holds a translator's batch, cache entries and sample slab
// between requests: as long as the request's data points, allocating them
// afresh was a quarter of what OTLP ingest allocated. Nothing outside
// WriteMetrics keeps them (appendBatch copies the samples it stores).
type translatorBufs struct {
	batch   []seriesSamples
	entries []*cachedLabels
	flat    []sample
}

var translatorPool = sync.Pool{New: func() any { return new(translatorBufs) }}

// put keeps the buffers as last used for the next request, without what they
// point to. Only their used parts can hold anything: each use starts at length 0.
func (b *translatorBufs) put(batch []seriesSamples, entries []*cachedLabels, flat []sample) {
	if cap(batch) > maxPooled || cap(flat) > 2*maxPooled {
		return
	}
	clear(batch)
	clear(entries)
	clear(flat)
	b.batch, b.entries, b.flat = batch[:0], entries[:0], flat[:0]
	translatorPool.Put(b)
}

// grown returns s emptied, with room for n elements.
func grown[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s[:0]
}

// otlpState remembers running totals that turn delta temporality into cumulative
// series, by series key. It is not written anywhere of its own: the stored series
// is the running total, so a series missing here (after a restart) continues
// from its newest stored sample.
//
// Totals not added to for deltaIdle are dropped (forget), which bounds the
// memory to the delta series being sent; a dropped total that gets a delta
// again continues from its stored series too.
type otlpState struct {
	mu     sync.Mutex
	floats map[string]deltaFloat
	hists  map[string]deltaHist
}

// deltaIdle is how long a running total is kept in memory without a delta.
const deltaIdle = time.Hour

type deltaFloat struct {
	st    int64
	total float64
	used  int64 // Unix ms of the latest delta added, by the DB's clock
}

type deltaHist struct {
	st    int64
	total *histogram.FloatHistogram
	used  int64
}

func (s *otlpState) init() {
	s.floats = map[string]deltaFloat{}
	s.hists = map[string]deltaHist{}
}

// forget drops the running totals not added to since before (Unix ms) and
// returns how many it dropped.
func (s *otlpState) forget(before int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, d := range s.floats {
		if d.used < before {
			delete(s.floats, k)
			n++
		}
	}
	for k, d := range s.hists {
		if d.used < before {
			delete(s.hists, k)
			n++
		}
	}
	return n
}

type translator struct {
	db       *DB
	now      int64 // Unix ms by the DB's clock, when the batch came
	promote  []string
	batch    []seriesSamples
	entries  []*cachedLabels // by batch index: the cache entry of the series, or nil
	id       uint32          // tells this translator's marks in cache entries apart
	series   map[string]int  // labels key → index in batch, for series not from the cache
	flat     []sample        // the batch's first samples are cut from this slab
	points   int64
	rejected int64
	reasons  []string
	b        labels.Builder
	scopeKey []byte          // labels of the scope being translated, as bytes
	scope    *scopeCache     // its label cache
	attrs    pcommon.Map     // attributes of the point being translated (see point)
	attrsSig []byte          // their signature
	sig      []byte          // scratch for series signatures
	cum      []float64       // scratch for a histogram's cumulative bucket counts
	buckets  []*cachedLabels // and the cache entries of its series
	bounds   []float64       // and its bounds and bucket counts, when decoded
	counts   []uint64
	les      map[uint64]string // le values by the bits of their bound (see le)

	// unresolved lists the batch indexes of cache entries without a ref yet:
	// the refs appendBatch resolves are remembered in those entries, and only
	// they need looking at again (the others' memory is long out of the CPU's
	// caches by then).
	unresolved []int
}

func (tr *translator) reject(n int64, why string) {
	tr.rejected += n
	if len(tr.reasons) < 5 {
		tr.reasons = append(tr.reasons, why)
	}
}

// add adds a sample to the series with labels lset.
func (tr *translator) add(lset labels.Labels, s sample) {
	key := string(lset.Bytes(nil))
	i, ok := tr.series[key]
	if !ok {
		if tr.series == nil {
			tr.series = map[string]int{}
		}
		i = tr.newSeries(lset, nil)
		tr.series[key] = i
	}
	tr.appendSample(i, s)
}

// translatorIDs numbers translators (see cachedLabels.mark).
var translatorIDs atomic.Uint32

// addEntry adds a sample to the series of a label cache entry. The entry's mark
// says where the series is in this batch when this translator put it there; a
// mark left by another translator (a concurrent request, or an old one with the
// same wrapped id) is told apart by checking the batch, and at worst the series
// gets a second place in the batch, which appendBatch handles like any
// repeated series.
func (tr *translator) addEntry(e *cachedLabels, s sample) {
	if m := e.mark.Load(); uint32(m>>32) == tr.id {
		if i := int(uint32(m)); i < len(tr.entries) && tr.entries[i] == e {
			tr.appendSample(i, s)
			return
		}
	}
	i := tr.newSeries(e.lset, e)
	e.mark.Store(uint64(tr.id)<<32 | uint64(uint32(i)))
	tr.appendSample(i, s)
}

func (tr *translator) newSeries(lset labels.Labels, e *cachedLabels) int {
	var ref SeriesRef
	if e != nil {
		if ref = SeriesRef(e.ref.Load()); ref == 0 {
			tr.unresolved = append(tr.unresolved, len(tr.batch))
		}
	}
	tr.batch = append(tr.batch, seriesSamples{lset: lset, ref: ref})
	tr.entries = append(tr.entries, e)
	return len(tr.batch) - 1
}

// appendSample appends s to the samples of batch entry i. A series' first sample
// is cut from a slab: most series get one sample per request, and one
// allocation per series would dominate.
func (tr *translator) appendSample(i int, s sample) {
	b := &tr.batch[i]
	if len(b.samples) > 0 {
		b.samples = append(b.samples, s)
		return
	}
	if len(tr.flat) == cap(tr.flat) {
		tr.flat = make([]sample, 0, max(256, 2*cap(tr.flat)))
	}
	tr.flat = append(tr.flat, s)
	n := len(tr.flat)
	b.samples = tr.flat[n-1 : n : n]
}

func nsToMs(ts pcommon.Timestamp) int64 { return int64(ts) / 1e6 }

// resourceLabels returns the labels every series of a resource carries, and the
// target_info labels.
func (tr *translator) resourceLabels(res pcommon.Resource) (base, info labels.Labels) {
	attrs := res.Attributes()
	get := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	used := map[string]bool{"service.name": true, "service.namespace": true, "service.instance.id": true}
	job := get("service.name")
	if ns := get("service.namespace"); ns != "" && job != "" {
		job = ns + "/" + job
	}
	var extra []labels.Label
	if job == "" {
		if j := get("job"); j != "" {
			job = j
			used["job"] = true
		}
	}
	instance := get("service.instance.id")
	if instance == "" {
		// Without service.instance.id, the attributes that tell sources apart keep
		// them apart: the first present becomes instance, the others stay labels.
		for _, k := range []string{"instance", "host.name", "k8s.pod.name"} {
			if v := get(k); v != "" {
				if instance == "" {
					instance = v
					used[k] = true
				} else {
					extra = append(extra, labels.Label{Name: sanitizeLabel(k), Value: v})
				}
			}
		}
		if j := get("job"); j != "" && !used["job"] {
			extra = append(extra, labels.Label{Name: "exported_job", Value: j})
		}
	}
	b := labels.NewScratchBuilder(8)
	if job != "" {
		b.Add("job", job)
	}
	if instance != "" {
		b.Add("instance", instance)
	}
	for _, l := range extra {
		if l.Name == "instance" {
			l.Name = "exported_instance"
		}
		b.Add(l.Name, l.Value)
	}
	for _, k := range tr.promote {
		if v := get(k); v != "" && !used[k] {
			b.Add(sanitizeLabel(k), v)
		}
	}
	b.Sort()
	base = dedupe(b.Labels())

	ib := labels.NewScratchBuilder(attrs.Len() + 3)
	ib.Add(labels.MetricName, "target_info")
	if job != "" {
		ib.Add("job", job)
	}
	if instance != "" {
		ib.Add("instance", instance)
	}
	n := 0
	attrsToLabels(attrs, func(name, value string) {
		if name != "job" && name != "instance" {
			ib.Add(name, value)
			n++
		}
	}, used)
	if n == 0 {
		return base, labels.EmptyLabels()
	}
	ib.Sort()
	return base, dedupe(ib.Labels())
}

func dedupe(l labels.Labels) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	l.Range(func(x labels.Label) {
		if b.Get(x.Name) == "" {
			b.Set(x.Name, x.Value)
		}
	})
	return b.Labels()
}

// attrsToLabels calls fn with each attribute as a sanitized label, joining the
// values of attributes whose names collide with ";" in key order.
func attrsToLabels(attrs pcommon.Map, fn func(name, value string), skip map[string]bool) {
	type kv struct{ k, v string }
	byName := map[string][]kv{}
	attrs.Range(func(k string, v pcommon.Value) bool {
		if skip[k] {
			return true
		}
		s := v.AsString()
		if s == "" {
			return true
		}
		n := sanitizeLabel(k)
		byName[n] = append(byName[n], kv{k, s})
		return true
	})
	for n, kvs := range byName {
		sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
		vals := make([]string, len(kvs))
		for i, x := range kvs {
			vals[i] = x.v
		}
		fn(n, strings.Join(vals, ";"))
	}
}

func (tr *translator) translate(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		base, info := tr.resourceLabels(rm.Resource())
		var latest int64 = math.MinInt64
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			scope := tr.enterScope(base, sm.Scope().Name(), sm.Scope().Version())
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				if t := tr.metric(ms.At(k), scope); t > latest {
					latest = t
				}
			}
			tr.leaveScope()
		}
		if !info.IsEmpty() && latest != math.MinInt64 {
			tr.add(info, sample{t: latest, v: 1})
		}
	}
}

// enterScope returns the labels of a scope of the resource whose labels are
// base, and makes it the scope being translated: its label cache is read
// locked until leaveScope.
func (tr *translator) enterScope(base labels.Labels, name, version string) labels.Labels {
	scope := base
	if name != "" {
		b := labels.NewBuilder(base)
		b.Set("otel_scope_name", name)
		if version != "" {
			b.Set("otel_scope_version", version)
		}
		scope = b.Labels()
	}
	tr.scopeKey = scope.Bytes(tr.scopeKey[:0])
	tr.scope = tr.db.lcache.scope(tr.scopeKey)
	// The scope's entries are read under one read lock for the whole scope,
	// not one per point (see cachedLabels).
	tr.scope.mu.RLock()
	return scope
}

// leaveScope lets go of the scope enterScope made the one being translated.
func (tr *translator) leaveScope() {
	tr.scope.mu.RUnlock()
	tr.scope = nil
}

// point makes attrs the attributes of the data point being translated, for
// seriesLabels, cachedLabels and addPoint.
func (tr *translator) point(attrs pcommon.Map) {
	tr.attrs = attrs
	tr.attrsSig = appendAttrsSignature(tr.attrsSig[:0], attrs)
}

// seriesLabels builds the labels of one series of the current point: the point's
// attributes, then the resource and scope labels (which win on conflict), then
// the name and extra.
func (tr *translator) seriesLabels(name string, scope labels.Labels, extraName, extraValue string) labels.Labels {
	return tr.cachedLabels(name, scope, extraName, extraValue).lset
}

// cachedLabels is seriesLabels through the DB's label cache; the entry also
// carries the series' ref once known.
func (tr *translator) cachedLabels(name string, scope labels.Labels, extraName, extraValue string) *cachedLabels {
	tr.sig = appendSignature(tr.sig[:0], tr.attrsSig, name, extraName, extraValue)
	// tr.scope.mu is read-locked (enterScope).
	if e := tr.scope.m[string(tr.sig)]; e != nil {
		return e
	}
	return putHeld(tr.scope, tr.scope.m, tr.sig, &cachedLabels{lset: tr.buildLabels(name, scope, tr.attrs, extraName, extraValue)})
}

// addPoint adds a sample to the series the current point's identity maps to.
func (tr *translator) addPoint(name string, scope labels.Labels, extraName, extraValue string, s sample) {
	tr.addEntry(tr.cachedLabels(name, scope, extraName, extraValue), s)
}

func (tr *translator) buildLabels(name string, scope labels.Labels, attrs pcommon.Map, extraName, extraValue string) labels.Labels {
	b := &tr.b
	b.Reset(labels.EmptyLabels())
	attrsToLabels(attrs, func(n, v string) { b.Set(n, v) }, nil)
	scope.Range(func(l labels.Label) {
		if old := b.Get(l.Name); old != "" && old != l.Value && (l.Name == "job" || l.Name == "instance") {
			b.Set("exported_"+l.Name, old)
		}
		b.Set(l.Name, l.Value)
	})
	b.Set(labels.MetricName, name)
	if extraName != "" {
		b.Set(extraName, extraValue)
	}
	return b.Labels()
}

// metric translates one metric and returns its latest timestamp.
func (tr *translator) metric(m pmetric.Metric, scope labels.Labels) int64 {
	latest := int64(math.MinInt64)
	see := func(t int64) {
		if t > latest {
			latest = t
		}
	}
	if m.Name() == "" {
		n := int64(dataPointCount(m))
		tr.points += n
		tr.reject(n, "metric without a name")
		return latest
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		name := MetricName(m.Name(), m.Unit(), KindGauge)
		tr.db.meta.set(name, Metadata{Type: "gauge", Help: m.Description(), Unit: m.Unit()})
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			tr.points++
			t := nsToMs(dp.Timestamp())
			see(t)
			tr.point(dp.Attributes())
			tr.numberPoint(tr.cachedLabels(name, scope, "", ""), false, false, t, 0, numberValue(dp))
		}
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		kind, typ := KindGauge, "gauge"
		if sum.IsMonotonic() {
			kind, typ = KindCounter, "counter"
		}
		delta := sum.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		name := MetricName(m.Name(), m.Unit(), kind)
		tr.db.meta.set(name, Metadata{Type: typ, Help: m.Description(), Unit: m.Unit()})
		dps := sum.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			tr.points++
			t := nsToMs(dp.Timestamp())
			see(t)
			tr.point(dp.Attributes())
			tr.numberPoint(tr.cachedLabels(name, scope, "", ""), true, delta, t, nsToMs(dp.StartTimestamp()), numberValue(dp))
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		name := MetricName(m.Name(), m.Unit(), KindHistogram)
		tr.db.meta.set(name, Metadata{Type: "histogram", Help: m.Description(), Unit: m.Unit()})
		delta := h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			tr.points++
			t := nsToMs(dp.Timestamp())
			see(t)
			tr.explicitHistogram(name, scope, dp, t, delta)
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		name := MetricName(m.Name(), m.Unit(), KindHistogram)
		tr.db.meta.set(name, Metadata{Type: "histogram", Help: m.Description(), Unit: m.Unit()})
		delta := h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			tr.points++
			t := nsToMs(dp.Timestamp())
			fh, err := ExponentialToNative(dp)
			if err != nil {
				tr.reject(1, err.Error())
				continue
			}
			see(t)
			tr.point(dp.Attributes())
			lset := tr.seriesLabels(name, scope, "", "")
			st := nsToMs(dp.StartTimestamp())
			if delta && !value.IsStaleNaN(fh.Sum) {
				st, fh = tr.accumulateHistogram(lset, st, fh)
			}
			tr.add(lset, sample{t: t, st: st, fh: fh})
		}
	case pmetric.MetricTypeSummary:
		name := MetricName(m.Name(), m.Unit(), KindSummary)
		tr.db.meta.set(name, Metadata{Type: "summary", Help: m.Description(), Unit: m.Unit()})
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			tr.points++
			t := nsToMs(dp.Timestamp())
			see(t)
			st := nsToMs(dp.StartTimestamp())
			stale := dp.Flags().NoRecordedValue()
			val := func(v float64) float64 {
				if stale {
					return math.Float64frombits(value.StaleNaN)
				}
				return v
			}
			qs := dp.QuantileValues()
			tr.point(dp.Attributes())
			for q := 0; q < qs.Len(); q++ {
				tr.addPoint(name, scope, "quantile", formatFloat(qs.At(q).Quantile()), sample{t: t, v: val(qs.At(q).Value())})
			}
			tr.addPoint(name+"_sum", scope, "", "", sample{t: t, st: st, v: val(dp.Sum())})
			tr.addPoint(name+"_count", scope, "", "", sample{t: t, st: st, v: val(float64(dp.Count()))})
		}
	default:
		n := int64(dataPointCount(m))
		tr.points += n
		tr.reject(n, fmt.Sprintf("metric %q has no data type", m.Name()))
	}
	return latest
}

// numberPoint adds the sample of a gauge's or a sum's data point to the series
// of e: t, the start st of a sum (a gauge has none), v; a delta sum's running
// total in place of v.
func (tr *translator) numberPoint(e *cachedLabels, sum, delta bool, t, st int64, v float64) {
	s := sample{t: t, v: v}
	if sum {
		s.st = st
		if delta && !value.IsStaleNaN(v) {
			s.st, s.v = tr.accumulate(e.lset, e.lset, st, v)
		}
	}
	tr.addEntry(e, s)
}

func dataPointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.Flags().NoRecordedValue() {
		return math.Float64frombits(value.StaleNaN)
	}
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// accumulate adds a delta to the running total kept under key, which is stored
// as series lset (the same labels but for an explicit histogram's parts).
func (tr *translator) accumulate(key, lset labels.Labels, st int64, v float64) (int64, float64) {
	s := &tr.db.otlp
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(key.Bytes(nil))
	d, ok := s.floats[k]
	if !ok {
		d.st = st
		if last, ok := tr.db.newestSample(lset); ok && last.fh == nil {
			d.st, d.total = last.st, last.v
		}
	}
	d.total += v
	d.used = tr.now
	s.floats[k] = d
	return d.st, d.total
}

func (tr *translator) accumulateHistogram(lset labels.Labels, st int64, fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	s := &tr.db.otlp
	s.mu.Lock()
	defer s.mu.Unlock()
	key := string(lset.Bytes(nil))
	d, ok := s.hists[key]
	if !ok {
		if last, found := tr.db.newestSample(lset); found && last.fh != nil {
			d, ok = deltaHist{st: last.st, total: last.fh}, true
		}
	}
	if ok {
		if sum, _, _, err := d.total.Copy().Add(fh); err == nil {
			// The running total keeps the start time of the first delta.
			sum.CounterResetHint = histogram.UnknownCounterReset
			s.hists[key] = deltaHist{st: d.st, total: sum, used: tr.now}
			return d.st, sum.Copy()
		}
	}
	s.hists[key] = deltaHist{st: st, total: fh.Copy(), used: tr.now}
	return st, fh
}

func (tr *translator) explicitHistogram(name string, scope labels.Labels, dp pmetric.HistogramDataPoint, t int64, delta bool) {
	p := histogramPoint{
		t: t, st: nsToMs(dp.StartTimestamp()), count: dp.Count(), sum: dp.Sum(), hasSum: dp.HasSum(),
		stale:  dp.Flags().NoRecordedValue(),
		bounds: tr.bounds[:0], counts: tr.counts[:0],
	}
	for i := range dp.ExplicitBounds().Len() {
		p.bounds = append(p.bounds, dp.ExplicitBounds().At(i))
	}
	for i := range dp.BucketCounts().Len() {
		p.counts = append(p.counts, dp.BucketCounts().At(i))
	}
	tr.bounds, tr.counts = p.bounds, p.counts
	tr.point(dp.Attributes())
	tr.addHistogram(histogramNames(name), &p, delta, func(name, extraName, extraValue string) (*cachedLabels, error) {
		return tr.cachedLabels(name, scope, extraName, extraValue), nil
	})
}

// histogramPoint is an explicit-bucket histogram data point, decoded or read
// on the wire.
type histogramPoint struct {
	t, st  int64 // Unix ms
	count  uint64
	sum    float64
	hasSum bool
	stale  bool // flagged "no recorded value"
	bounds []float64
	counts []uint64
}

// histogramSeries names the series of an explicit-bucket histogram.
type histogramSeries struct {
	name, bucket, sum, count string
}

func histogramNames(name string) histogramSeries {
	return histogramSeries{name: name, bucket: name + "_bucket", sum: name + "_sum", count: name + "_count"}
}

// addHistogram adds the samples of an explicit-bucket histogram point to its
// series (cumulative buckets, the sum when present, the count); series
// returns the cache entry of each, by name and extra label, for the point's
// attributes, or why it cannot (which rejects the point).
func (tr *translator) addHistogram(n histogramSeries, p *histogramPoint, delta bool, series func(name, extraName, extraValue string) (*cachedLabels, error)) {
	if len(p.counts) != 0 && len(p.counts) != len(p.bounds)+1 {
		tr.reject(1, fmt.Sprintf("histogram %q has %d bucket counts for %d bounds", n.name, len(p.counts), len(p.bounds)))
		return
	}
	nb := len(p.bounds) + 1
	cum := slices.Grow(tr.cum[:0], nb)[:nb]
	tr.cum = cum
	var c float64
	for i := range cum {
		if i < len(p.counts) {
			c += float64(p.counts[i])
		}
		cum[i] = c
	}
	// The series: the buckets, the count, the sum (when present, or
	// accumulated) and the histogram's own name (when accumulated).
	buckets := slices.Grow(tr.buckets[:0], nb+3)[:nb+3]
	tr.buckets = buckets
	accumulate := delta && !p.stale
	for i := range buckets {
		var err error
		switch {
		case i < nb:
			buckets[i], err = series(n.bucket, "le", tr.le(p.bounds, i))
		case i == nb:
			buckets[i], err = series(n.count, "", "")
		case i == nb+1 && (p.hasSum || accumulate):
			buckets[i], err = series(n.sum, "", "")
		case i == nb+2 && accumulate:
			buckets[i], err = series(n.name, "", "")
		default:
			buckets[i] = nil
		}
		if err != nil {
			tr.reject(1, "malformed data point: "+err.Error())
			return
		}
	}
	countSeries, sumSeries := buckets[nb], buckets[nb+1]
	buckets = buckets[:nb]
	st, count, sum := p.st, float64(p.count), p.sum
	if accumulate {
		// Accumulate every bucket, the sum and the count as separate counters.
		// The running totals are kept per set of bounds, so that new bounds
		// start afresh; after a restart each continues from its stored series.
		base := tr.buckets[nb+2].lset
		key := fmt.Sprint(p.bounds)
		for i := range cum {
			_, cum[i] = tr.accumulate(labels.NewBuilder(base).Set("le", key).Set("i", strconv.Itoa(i)).Labels(),
				buckets[i].lset, st, cum[i])
		}
		st, count = tr.accumulate(labels.NewBuilder(base).Set("le", key).Set("i", "count").Labels(),
			countSeries.lset, st, count)
		_, sum = tr.accumulate(labels.NewBuilder(base).Set("le", key).Set("i", "sum").Labels(),
			sumSeries.lset, st, sum)
	}
	val := func(v float64) float64 {
		if p.stale {
			return math.Float64frombits(value.StaleNaN)
		}
		return v
	}
	for i, e := range buckets {
		tr.addEntry(e, sample{t: p.t, st: st, v: val(cum[i])})
	}
	if p.hasSum {
		tr.addEntry(sumSeries, sample{t: p.t, st: st, v: val(sum)})
	}
	tr.addEntry(countSeries, sample{t: p.t, st: st, v: val(count)})
}

// ExponentialToNative converts an OTLP exponential histogram point into a
// Prometheus native histogram with float counts. Scales above 8 are reduced to 8
// by merging buckets; scales below -4 cannot be represented.
func ExponentialToNative(dp pmetric.ExponentialHistogramDataPoint) (*histogram.FloatHistogram, error) {
	scale := dp.Scale()
	if scale < -4 {
		return nil, fmt.Errorf("exponential histogram scale %d is below -4", scale)
	}
	fh := &histogram.FloatHistogram{
		Schema:        min(scale, 8),
		ZeroThreshold: dp.ZeroThreshold(),
		ZeroCount:     float64(dp.ZeroCount()),
		Count:         float64(dp.Count()),
		Sum:           dp.Sum(),
	}
	if !dp.HasSum() {
		fh.Sum = 0
	}
	if dp.Flags().NoRecordedValue() {
		fh.Sum = math.Float64frombits(value.StaleNaN)
		return fh, nil
	}
	down := uint(0)
	if scale > 8 {
		down = uint(scale - 8)
	}
	fh.PositiveSpans, fh.PositiveBuckets = expBuckets(dp.Positive(), down)
	fh.NegativeSpans, fh.NegativeBuckets = expBuckets(dp.Negative(), down)
	return fh, nil
}

// expBuckets converts OTLP buckets (index i covers (base^i, base^(i+1)]) into
// Prometheus spans and absolute float counts (index i covers (base^(i-1), base^i]),
// merging 2^down neighbours.
func expBuckets(b pmetric.ExponentialHistogramDataPointBuckets, down uint) ([]histogram.Span, []float64) {
	counts := b.BucketCounts().AsRaw()
	var spans []histogram.Span
	var buckets []float64
	var next int32
	for i, c := range counts {
		if c == 0 {
			continue
		}
		idx := ((b.Offset() + int32(i)) >> down) + 1
		switch {
		case len(spans) > 0 && idx == next-1:
			buckets[len(buckets)-1] += float64(c)
			continue
		case len(spans) == 0:
			spans = append(spans, histogram.Span{Offset: idx, Length: 1})
		case idx == next:
			spans[len(spans)-1].Length++
		default:
			spans = append(spans, histogram.Span{Offset: idx - next, Length: 1})
		}
		buckets = append(buckets, float64(c))
		next = idx + 1
	}
	return spans, buckets
}

// le returns the le label value of bucket i of bounds: its bound, formatted
// once per request, or +Inf for the last bucket.
func (tr *translator) le(bounds []float64, i int) string {
	if i >= len(bounds) {
		return "+Inf"
	}
	b := bounds[i]
	if tr.les == nil {
		tr.les = map[uint64]string{}
	}
	v, ok := tr.les[math.Float64bits(b)]
	if !ok {
		v = formatFloat(b)
		tr.les[math.Float64bits(b)] = v
	}
	return v
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// MetricKind selects the suffix rules of MetricName.
type MetricKind int

// Metric kinds.
const (
	KindGauge MetricKind = iota
	KindCounter
	KindHistogram
	KindSummary
)

var unitNames = map[string]string{
	"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
	"us": "microseconds", "ns": "nanoseconds",
	"By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
	"KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
	"m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
	"Cel": "celsius", "Hz": "hertz", "%": "percent",
}

var perUnitNames = map[string]string{
	"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year",
}

// MetricName turns an OTLP metric name and unit into a Prometheus metric name:
// characters outside [a-zA-Z0-9] separate words joined by "_", the unit is
// appended as words ("s" → "seconds", "By/s" → "bytes_per_second", annotations in
// braces dropped) unless already present, gauges with unit "1" get "_ratio",
// counters get "_total".
func MetricName(name, unit string, kind MetricKind) string {
	metricNames.RLock()
	v, ok := metricNames.m[name]
	metricNames.RUnlock()
	if ok && v.unit == unit && v.kind == kind {
		return v.out
	}
	n := metricName(name, unit, kind)
	metricNames.Lock()
	if metricNames.m == nil || len(metricNames.m) >= 1<<16 { // bounded: start over when full
		metricNames.m = map[string]metricNameEntry{}
	}
	metricNames.m[name] = metricNameEntry{unit: unit, kind: kind, out: n}
	metricNames.Unlock()
	return n
}

type metricNameEntry struct {
	unit string
	kind MetricKind
	out  string
}

// metricNames caches MetricName by OTLP name (a name comes with one unit and
// kind nearly always): the same few metrics arrive in every request.
var metricNames struct {
	sync.RWMutex
	m map[string]metricNameEntry
}

func metricName(name, unit string, kind MetricKind) string {
	words := strings.FieldsFunc(name, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	})
	main, per := unitWords(unit)
	has := func(w string) bool {
		for _, x := range words {
			if x == w {
				return true
			}
		}
		return false
	}
	if kind == KindCounter {
		// "_total" goes last, after the unit.
		out := words[:0]
		for _, w := range words {
			if w != "total" {
				out = append(out, w)
			}
		}
		words = out
	}
	if main != "" && !has(main) {
		words = append(words, main)
	}
	if per != "" && !has(per) {
		words = append(words, "per", per)
	}
	if kind == KindGauge && unit == "1" && !has("ratio") {
		words = append(words, "ratio")
	}
	if kind == KindCounter {
		words = append(words, "total")
	}
	n := strings.Join(words, "_")
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	return n
}

func unitWords(unit string) (main, per string) {
	// Drop {annotations}.
	for {
		i := strings.IndexByte(unit, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(unit[i:], '}')
		if j < 0 {
			unit = unit[:i]
			break
		}
		unit = unit[:i] + unit[i+j+1:]
	}
	unit = strings.TrimSpace(unit)
	if unit == "" || unit == "1" {
		return "", ""
	}
	m, p, hasPer := strings.Cut(unit, "/")
	if n, ok := unitNames[m]; ok {
		main = n
	} else {
		main = cleanWord(m)
	}
	if hasPer {
		if n, ok := perUnitNames[p]; ok {
			per = n
		} else {
			per = cleanWord(p)
		}
	}
	return main, per
}

func cleanWord(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}), "_")
}

// sanitizeLabel turns an attribute key into a Prometheus label name: invalid
// characters become "_", a leading digit gets "key_" and a single leading
// underscore gets "key".
func sanitizeLabel(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	s := string(b)
	switch {
	case s == "":
		return "key_empty"
	case s[0] >= '0' && s[0] <= '9':
		return "key_" + s
	case s[0] == '_' && !strings.HasPrefix(s, "__"):
		return "key" + s
	}
	return s
}
