package otlpwire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// gauges builds a request of two resources (one without service.name) with
// gauges and sums; change edits it before it is marshalled.
func gauges(t testing.TB, change func(md pmetric.Metrics)) []byte {
	md := pmetric.NewMetrics()
	for r, svc := range []string{"api", ""} {
		rm := md.ResourceMetrics().AppendEmpty()
		if svc != "" {
			rm.Resource().Attributes().PutStr("service.name", svc)
		}
		rm.Resource().Attributes().PutStr("host.name", "h")
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("lib")
		sm.Scope().SetVersion("1.0")
		g := sm.Metrics().AppendEmpty()
		g.SetName("queue.depth")
		g.SetUnit("{item}")
		g.SetDescription("items waiting")
		gauge := g.SetEmptyGauge()
		for i := range 3 + r {
			dp := gauge.DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.Timestamp(1e18 + i))
			dp.SetIntValue(int64(i))
			dp.Attributes().PutStr("queue", "q")
			dp.Attributes().PutInt("shard", int64(i))
		}
		s := sm.Metrics().AppendEmpty()
		s.SetName("jobs.done")
		sum := s.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(5)
		dp.SetTimestamp(1e18)
		dp.SetDoubleValue(2.5)
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	}
	if change != nil {
		change(md)
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func firstPoint(md pmetric.Metrics) pmetric.NumberDataPoint {
	return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
}

func TestScanAccepts(t *testing.T) {
	m, ok := Scan(gauges(t, nil), 128)
	if !ok {
		t.Fatal("refused")
	}
	if m.Points != 9 {
		t.Errorf("points %d, want 9", m.Points)
	}
	if m.PerService["api"] != 4 || m.PerService[""] != 5 || len(m.PerService) != 2 {
		t.Errorf("per service %v, want api 4, \"\" 5", m.PerService)
	}
}

// TestScanRefuses lists what Scan leaves to pdata: what the receiver's
// checks reject, at every level and in every metric type, and malformed bodies.
func TestScanRefuses(t *testing.T) {
	bad := "x\xffy"
	cases := map[string]func(md pmetric.Metrics){
		"histogram without name": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty().SetEmptyHistogram().DataPoints().AppendEmpty()
		},
		"too many histogram point attributes": func(md pmetric.Metrics) {
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
			m.SetName("h")
			a := m.SetEmptyHistogram().DataPoints().AppendEmpty().Attributes()
			for i := range 4 {
				a.PutInt(strings.Repeat("k", i+1), 1)
			}
		},
		"bad UTF-8 in an exponential histogram point": func(md pmetric.Metrics) {
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
			m.SetName("h")
			m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty().Attributes().PutStr("k", bad)
		},
		"bad UTF-8 in a summary point": func(md pmetric.Metrics) {
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
			m.SetName("s")
			m.SetEmptySummary().DataPoints().AppendEmpty().Attributes().PutStr(bad, "v")
		},
		"bad UTF-8 after a point with an exemplar": func(md pmetric.Metrics) {
			dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
			dps.At(0).Exemplars().AppendEmpty()
			dps.At(2).Attributes().PutStr("k", bad)
		},
		"metric without name": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("") },
		"metric without data": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty().SetName("empty")
		},
		"too many point attributes": func(md pmetric.Metrics) {
			for i := range 3 {
				firstPoint(md).Attributes().PutInt(strings.Repeat("k", i+1), 1)
			}
		},
		"too many resource attributes": func(md pmetric.Metrics) {
			for i := range 3 {
				md.ResourceMetrics().At(1).Resource().Attributes().PutInt(strings.Repeat("k", i+1), 1)
			}
		},
		"too many scope attributes": func(md pmetric.Metrics) {
			for i := range 5 {
				md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Attributes().PutInt(strings.Repeat("k", i+1), 1)
			}
		},
		"too many metadata entries": func(md pmetric.Metrics) {
			for i := range 5 {
				md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Metadata().PutInt(strings.Repeat("k", i+1), 1)
			}
		},
		"bad UTF-8 in a point attribute value": func(md pmetric.Metrics) { firstPoint(md).Attributes().PutStr("queue", bad) },
		"bad UTF-8 in a point attribute key":   func(md pmetric.Metrics) { firstPoint(md).Attributes().PutStr(bad, "v") },
		"bad UTF-8 deep in a point attribute": func(md pmetric.Metrics) {
			firstPoint(md).Attributes().PutEmptySlice("s").AppendEmpty().SetEmptyMap().PutStr("k", bad)
		},
		"bad UTF-8 in a resource attribute": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(1).Resource().Attributes().PutStr("host.name", bad)
		},
		"bad UTF-8 in a scope name":    func(md pmetric.Metrics) { md.ResourceMetrics().At(1).ScopeMetrics().At(0).Scope().SetName(bad) },
		"bad UTF-8 in a scope version": func(md pmetric.Metrics) { md.ResourceMetrics().At(1).ScopeMetrics().At(0).Scope().SetVersion(bad) },
		"bad UTF-8 in a metric name":   func(md pmetric.Metrics) { md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics().At(1).SetName(bad) },
		"bad UTF-8 in a metric unit":   func(md pmetric.Metrics) { md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics().At(1).SetUnit(bad) },
		"bad UTF-8 in a metric description": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics().At(1).SetDescription(bad)
		},
		"bad UTF-8 in metric metadata": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics().At(1).Metadata().PutStr("k", bad)
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			body := gauges(t, change)
			if _, ok := Scan(body, 3); ok {
				t.Error("accepted")
			}
		})
	}
	body := gauges(t, nil)
	if _, ok := Scan(body, 2); !ok {
		t.Error("refused two attributes under a limit of two")
	}
	for n := range len(body) {
		if _, ok := Scan(body[:n], 128); ok && n > 0 {
			// A cut at a field boundary of the outer message is a valid,
			// shorter request; anything else must be refused.
			if _, err := decode(body[:n]); err != nil {
				t.Errorf("accepted %d of %d bytes, which pdata refuses: %v", n, len(body), err)
			}
		}
	}
	for _, b := range [][]byte{
		{0x0a, 0x05, 0x12},                   // length past the end
		{0x0b, 0x00},                         // a group
		{0x08, 0x01},                         // resource_metrics as a varint
		{0x0a, 0x02, 0x0a, 0x80},             // truncated varint inside
		{0x0a, 0x04, 0x08, 0x01, 0x0a, 0x00}, // resource as a varint
	} {
		if _, ok := Scan(b, 128); ok {
			t.Errorf("accepted % x", b)
		}
	}
}

func decode(b []byte) (pmetric.Metrics, error) {
	m := Metrics{Body: b}
	return m.Decode()
}

// recorder is a Visitor that writes down what it is shown.
type recorder struct{ b strings.Builder }

func (r *recorder) Resource(raw []byte) {
	res, err := Resource(raw)
	if err != nil {
		r.b.WriteString("resource error\n")
		return
	}
	r.b.WriteString("resource " + mapString(res.Attributes()) + "\n")
}
func (r *recorder) Scope(name, version []byte) {
	r.b.WriteString("scope " + string(name) + " " + string(version) + "\n")
}
func (r *recorder) Metric(m *Metric) {
	r.b.WriteString("metric " + string(m.Name) + " " + string(m.Unit) + " " + string(m.Description))
	r.b.WriteString(map[Kind]string{Gauge: " gauge", Sum: " sum", Histogram: " histogram"}[m.Kind])
	if m.Monotonic {
		r.b.WriteString(" monotonic")
	}
	if m.Delta {
		r.b.WriteString(" delta")
	}
	r.b.WriteString("\n")
}

// Decoded writes down a decoded explicit-bucket histogram as Metric and
// HistogramPoint would have: which of the two ways Walk shows one depends on
// how its points were encoded (TestHistogramsDecoded).
func (r *recorder) Decoded(m pmetric.Metric) {
	if m.Type() == pmetric.MetricTypeHistogram {
		r.histogram(m)
		return
	}
	r.b.WriteString("decoded " + m.Name() + " " + m.Type().String() + "\n")
}

func (r *recorder) histogram(m pmetric.Metric) {
	h := m.Histogram()
	r.Metric(&Metric{Name: []byte(m.Name()), Unit: []byte(m.Unit()), Description: []byte(m.Description()), Kind: Histogram,
		Delta: h.AggregationTemporality() == pmetric.AggregationTemporalityDelta})
	for i := range h.DataPoints().Len() {
		dp := h.DataPoints().At(i)
		r.histogramPoint(mapString(dp.Attributes()), dp.StartTimestamp(), dp.Timestamp(), dp.Count(), dp.Sum(), dp.HasSum(), uint32(dp.Flags()),
			dp.BucketCounts().AsRaw(), dp.ExplicitBounds().AsRaw())
	}
}

func (r *recorder) HistogramPoint(p *HistogramPoint) {
	attrs, err := Attributes(p.Attrs)
	if err != nil {
		r.b.WriteString("histogram point error\n")
		return
	}
	r.histogramPoint(mapString(attrs), pcommon.Timestamp(p.Start), pcommon.Timestamp(p.Time), p.Count, p.Sum, p.HasSum, p.Flags,
		p.BucketCounts(nil), p.ExplicitBounds(nil))
}

func (r *recorder) histogramPoint(attrs string, start, at pcommon.Timestamp, count uint64, sum float64, hasSum bool, flags uint32, counts []uint64, bounds []float64) {
	fmt.Fprintf(&r.b, "histogram point %s %s %s count %d", attrs, start, at, count)
	if hasSum {
		fmt.Fprintf(&r.b, " sum %v", sum)
	}
	fmt.Fprintf(&r.b, " flags %d counts %v bounds %v\n", flags, counts, bounds)
}
func (r *recorder) Point(p *Point) {
	attrs, err := Attributes(p.Attrs)
	if err != nil {
		r.b.WriteString("point error\n")
		return
	}
	r.b.WriteString("point " + mapString(attrs) + " " + pcommon.Timestamp(p.Start).String() + " " + pcommon.Timestamp(p.Time).String() + " " +
		pcommon.NewValueDouble(p.Value()).AsString())
	if p.NoRecordedValue() {
		r.b.WriteString(" no-value")
	}
	r.b.WriteString("\n")
}

func mapString(m pcommon.Map) string {
	var b strings.Builder
	m.Range(func(k string, v pcommon.Value) bool {
		b.WriteString(k + "=" + v.AsString() + ",")
		return true
	})
	return b.String()
}

// pdataRecord writes down what recorder would be shown, from the decoded
// request.
func pdataRecord(md pmetric.Metrics) string {
	var r recorder
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		r.b.WriteString("resource " + mapString(rms.At(i).Resource().Attributes()) + "\n")
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			r.Scope([]byte(sms.At(j).Scope().Name()), []byte(sms.At(j).Scope().Version()))
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if decodedType(m) {
					r.Decoded(m)
					continue
				}
				if m.Type() == pmetric.MetricTypeHistogram {
					r.histogram(m)
					continue
				}
				wm := Metric{Name: []byte(m.Name()), Unit: []byte(m.Unit()), Description: []byte(m.Description())}
				var dps pmetric.NumberDataPointSlice
				if m.Type() == pmetric.MetricTypeSum {
					wm.Kind, wm.Monotonic = Sum, m.Sum().IsMonotonic()
					wm.Delta = m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
					dps = m.Sum().DataPoints()
				} else {
					wm.Kind, dps = Gauge, m.Gauge().DataPoints()
				}
				r.Metric(&wm)
				for l := range dps.Len() {
					dp := dps.At(l)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					r.b.WriteString("point " + mapString(dp.Attributes()) + " " + dp.StartTimestamp().String() + " " + dp.Timestamp().String() + " " +
						pcommon.NewValueDouble(v).AsString())
					if dp.Flags().NoRecordedValue() {
						r.b.WriteString(" no-value")
					}
					r.b.WriteString("\n")
				}
			}
		}
	}
	return r.b.String()
}

// decodedType reports whether Walk shows m decoded, for a metric other than
// an explicit-bucket histogram (which recorder writes down the same either
// way).
func decodedType(m pmetric.Metric) bool {
	var dps pmetric.NumberDataPointSlice
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps = m.Gauge().DataPoints()
	case pmetric.MetricTypeSum:
		dps = m.Sum().DataPoints()
	case pmetric.MetricTypeHistogram:
		return false
	default:
		return true
	}
	for i := range dps.Len() {
		if dps.At(i).Exemplars().Len() > 0 {
			return true
		}
	}
	return false
}

// TestWalkMatchesPdata checks that Walk shows what pdata decodes, in order,
// the metrics that are neither gauges nor sums, and those with exemplars,
// decoded.
func TestWalkMatchesPdata(t *testing.T) {
	body := gauges(t, func(md pmetric.Metrics) {
		a := firstPoint(md).Attributes()
		a.PutEmptyMap("m").PutBool("b", true)
		a.PutEmptyBytes("raw").FromRaw([]byte{0, 1})
		a.PutDouble("d", 0.25)
		ms := md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics()
		ms.At(1).Sum().DataPoints().At(0).Exemplars().AppendEmpty().SetIntValue(3)
		ms.At(0).Gauge().DataPoints().At(1).Exemplars().AppendEmpty().SetIntValue(4) // the second of four
		h := ms.AppendEmpty()
		h.SetName("latency")
		hp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
		hp.SetCount(2)
		hp.Attributes().PutStr("route", "/")
		ms.AppendEmpty().SetName("q")
		ms.At(ms.Len() - 1).SetEmptySummary().DataPoints().AppendEmpty().SetSum(1)
		e := ms.AppendEmpty()
		e.SetName("e")
		e.SetEmptyExponentialHistogram().DataPoints().AppendEmpty().SetScale(2)
		g := ms.AppendEmpty() // a gauge after them
		g.SetName("after")
		g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(4)
	})
	m, ok := Scan(body, 128)
	if !ok {
		t.Fatal("refused")
	}
	if m.Points != 13 {
		t.Errorf("points %d, want 13", m.Points)
	}
	walkMatches(t, m)
}

// walkMatches checks that Walk shows m as pdata decodes it, and returns what
// it showed.
func walkMatches(t *testing.T, m *Metrics) string {
	t.Helper()
	var r recorder
	Walk(m, &r)
	md, err := decode(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.b.String(), pdataRecord(md); got != want {
		t.Errorf("Walk showed\n%s\npdata decodes\n%s", got, want)
	}
	return r.b.String()
}

// TestAttributesApart: a point whose attribute fields have other fields
// between them is shown with its attributes gathered, in order; notes handed
// back and used again show the next request as it is.
func TestAttributesApart(t *testing.T) {
	kv := func(k, v string) []byte {
		return appendLen(appendLen(nil, 1, []byte(k)), 2, appendLen(nil, 1, []byte(v)))
	}
	fixed := func(b []byte, num, v uint64) []byte {
		b = binary.AppendUvarint(b, num<<3|wtFixed64)
		return binary.LittleEndian.AppendUint64(b, v)
	}
	var dp []byte
	dp = appendLen(dp, 7, kv("a", "1"))
	dp = fixed(dp, 3, 1e18)
	dp = appendLen(dp, 7, kv("b", "2"))
	dp = fixed(dp, 4, math.Float64bits(2.5))
	dp = appendLen(dp, 7, kv("a", "3")) // a duplicate key, as sent
	metric := appendLen(appendLen(nil, 1, []byte("m")), 5, appendLen(nil, 1, dp))
	body := appendLen(nil, 1, appendLen(nil, 2, appendLen(nil, 2, metric)))
	for range 2 {
		m, ok := Scan(body, 128)
		if !ok {
			t.Fatal("refused")
		}
		if shown := walkMatches(t, m); !strings.Contains(shown, "a=1,b=2,a=3,") {
			t.Errorf("attributes not in order, or lost: %s", shown)
		}
		m.Release()
	}
}

// FuzzScan: Scan never panics, and what it accepts pdata decodes to as many
// data points, and Walk shows as pdata decodes it.
func FuzzScan(f *testing.F) {
	f.Add(gauges(f, nil))
	f.Add(gauges(f, func(md pmetric.Metrics) { firstPoint(md).Attributes().PutEmptySlice("s").AppendEmpty().SetStr("x") }))
	f.Add(gauges(f, histograms))
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, ok := Scan(body, 128)
		if !ok {
			return
		}
		md, err := decode(body)
		if err != nil {
			t.Fatalf("Scan accepted what pdata refuses: %v", err)
		}
		if md.DataPointCount() != m.Points {
			t.Fatalf("Scan counted %d points, pdata %d", m.Points, md.DataPointCount())
		}
		var r recorder
		Walk(m, &r)
		m.Release()
		if got, want := r.b.String(), pdataRecord(md); got != want {
			t.Fatalf("Walk showed\n%s\npdata decodes\n%s", got, want)
		}
	})
}

// nest builds what appendLen builds field by field.
func TestNest(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 20000} {
		p := bytes.Repeat([]byte{7}, n)
		want := appendLen(nil, 1, appendLen(nil, 2, appendLen(nil, 2, p)))
		if got := nest(p, 1, 2, 2); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: nest differs from appendLen", n)
		}
		if got := nest(p); !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: nest without fields changed the payload", n)
		}
	}
}

// histograms adds explicit-bucket histograms to the first scope of md: with
// and without a sum, bounds and counts, delta, stale, and with attributes.
func histograms(md pmetric.Metrics) {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	h := ms.AppendEmpty()
	h.SetName("http.server.duration")
	h.SetUnit("s")
	h.SetDescription("request time")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 3 {
		dp := hist.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.Timestamp(1e18 - 60e9))
		dp.SetTimestamp(pcommon.Timestamp(1e18 + i))
		dp.ExplicitBounds().FromRaw([]float64{0.005, 0.1, 1, math.Inf(1)}[:i+1])
		dp.BucketCounts().FromRaw([]uint64{1, 2, 3, 4, 5}[:i+2])
		dp.SetCount(uint64(10 * i))
		if i != 1 {
			dp.SetSum(float64(i) + 0.5)
		}
		dp.SetMin(0.001)
		dp.Attributes().PutStr("route", fmt.Sprint("/", i))
		dp.Attributes().PutInt("code", 200)
		if i == 2 {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		}
	}
	d := ms.AppendEmpty()
	d.SetName("rpc.duration")
	dh := d.SetEmptyHistogram()
	dh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := dh.DataPoints().AppendEmpty() // no bounds, no counts
	dp.SetTimestamp(1e18)
	dp.SetCount(3)
}

// histogramCounter counts what Walk shows of histograms.
type histogramCounter struct {
	recorder
	points, decoded int
}

func (c *histogramCounter) HistogramPoint(p *HistogramPoint) {
	c.points++
	c.recorder.HistogramPoint(p)
}

func (c *histogramCounter) Decoded(m pmetric.Metric) {
	c.decoded++
	c.recorder.Decoded(m)
}

// TestHistogramsOnTheWire: explicit-bucket histograms are shown on the wire,
// as pdata decodes them.
func TestHistogramsOnTheWire(t *testing.T) {
	m, ok := Scan(gauges(t, histograms), 128)
	if !ok {
		t.Fatal("refused")
	}
	if m.Points != 13 {
		t.Errorf("points %d, want 13", m.Points)
	}
	var c histogramCounter
	Walk(m, &c)
	if c.points != 4 || c.decoded != 0 {
		t.Errorf("%d histogram points on the wire and %d metrics decoded, want 4 and 0", c.points, c.decoded)
	}
	walkMatches(t, m)
}

// TestHistogramsDecoded: a histogram whose points have exemplars, or bucket
// counts or bounds in any form but one packed field, is decoded with pdata,
// and means what pdata makes of it; counts in a field whose length is not a
// multiple of 8 are refused, as pdata refuses them.
func TestHistogramsDecoded(t *testing.T) {
	fixed := func(b []byte, num, v uint64) []byte {
		b = binary.AppendUvarint(b, num<<3|wtFixed64)
		return binary.LittleEndian.AppendUint64(b, v)
	}
	packed := func(b []byte, num uint64, vs ...uint64) []byte {
		var p []byte
		for _, v := range vs {
			p = binary.LittleEndian.AppendUint64(p, v)
		}
		return appendLen(b, num, p)
	}
	kv := appendLen(appendLen(nil, 1, []byte("k")), 2, appendLen(nil, 1, []byte("v")))
	point := func(rest func([]byte) []byte) []byte {
		dp := appendLen(nil, 9, kv)
		dp = fixed(dp, 3, 1e18)
		dp = fixed(dp, 4, 6)
		return rest(dp)
	}
	one := math.Float64bits(1)
	cases := map[string][]byte{
		"exemplar": point(func(b []byte) []byte {
			b = packed(b, 6, 1, 5)
			b = packed(b, 7, one)
			return appendLen(b, 8, fixed(nil, 3, 1e18))
		}),
		"unpacked counts": point(func(b []byte) []byte {
			b = fixed(fixed(b, 6, 1), 6, 5)
			return packed(b, 7, one)
		}),
		"unpacked bounds": point(func(b []byte) []byte {
			b = packed(b, 6, 1, 5)
			return fixed(b, 7, one)
		}),
		"counts packed twice": point(func(b []byte) []byte {
			b = packed(b, 6, 7, 7, 7)
			b = packed(b, 7, one)
			return packed(b, 6, 1, 5)
		}),
		"packed after unpacked": point(func(b []byte) []byte {
			b = fixed(b, 6, 9)
			b = packed(b, 6, 1, 5)
			return packed(b, 7, one)
		}),
	}
	for name, dp := range cases {
		t.Run(name, func(t *testing.T) {
			// The histogram's second point is the one decoded for.
			first := point(func(b []byte) []byte { return packed(packed(b, 6, 2, 2), 7, one) })
			hist := appendLen(appendLen(nil, 1, first), 1, dp)
			metric := appendLen(appendLen(nil, 1, []byte("h")), 9, hist)
			body := appendLen(nil, 1, appendLen(nil, 2, appendLen(nil, 2, metric)))
			m, ok := Scan(body, 128)
			if !ok {
				t.Fatal("refused")
			}
			if m.Points != 2 {
				t.Errorf("points %d, want 2", m.Points)
			}
			var c histogramCounter
			Walk(m, &c)
			if c.points != 0 || c.decoded != 1 {
				t.Errorf("%d histogram points on the wire and %d metrics decoded, want 0 and 1", c.points, c.decoded)
			}
			walkMatches(t, m)
		})
	}
	dp := point(func(b []byte) []byte { return appendLen(b, 6, []byte{1, 2, 3}) })
	metric := appendLen(appendLen(nil, 1, []byte("h")), 9, appendLen(nil, 1, dp))
	if _, ok := Scan(appendLen(nil, 1, appendLen(nil, 2, appendLen(nil, 2, metric))), 128); ok {
		t.Error("accepted bucket counts of 3 bytes")
	}
}
