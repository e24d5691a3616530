package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"outpost/tsdb"
)

// metricsDB opens a fresh TSDB in t.TempDir() holding, at now-1m: a counter with
// 2 series, a classic histogram with 2 series, a summary with 1, an exponential
// histogram with 1, and a gauge whose help text is markup.
func metricsDB(t *testing.T, now time.Time) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.NewTimestampFromTime(now.Add(-time.Minute))

	c := ms.AppendEmpty()
	c.SetName("orders")
	c.SetDescription("Orders placed.")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, shard := range []string{"a", "b"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetIntValue(3)
		dp.Attributes().PutStr("shard", shard)
	}

	h := ms.AppendEmpty()
	h.SetName("latency")
	h.SetUnit("s")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, route := range []string{"/a", "/b"} {
		dp := hist.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetCount(3)
		dp.SetSum(1.5)
		dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
		dp.BucketCounts().FromRaw([]uint64{1, 1, 1})
		dp.Attributes().PutStr("route", route)
	}

	s := ms.AppendEmpty()
	s.SetName("rpc.duration")
	sdp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ts)
	sdp.SetCount(2)
	sdp.SetSum(3)
	for _, q := range []float64{0.5, 0.9} {
		qv := sdp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(1)
	}

	e := ms.AppendEmpty()
	e.SetName("payload.size")
	e.SetUnit("By")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	edp := eh.DataPoints().AppendEmpty()
	edp.SetTimestamp(ts)
	edp.SetScale(0)
	edp.SetCount(2)
	edp.SetSum(300)
	edp.Positive().SetOffset(6)
	edp.Positive().BucketCounts().FromRaw([]uint64{1, 1})

	g := ms.AppendEmpty()
	g.SetName("temperature")
	g.SetDescription("<script>alert(1)</script>")
	gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.SetTimestamp(ts)
	gdp.SetDoubleValue(21.5)

	if rej, reason, err := db.WriteMetrics(context.Background(), md); err != nil || rej != 0 {
		t.Fatalf("write: %d %s %v", rej, reason, err)
	}
	return db
}

func TestMetricsPageExploreList(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db := metricsDB(t, now)
	h := New(fakeStats{}, Options{Version: "v1", Now: func() time.Time { return now }})
	p := NewMetricsPage(h, db)
	fams, err := p.families(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]MetricFamily{}
	for _, f := range fams {
		got[f.Name] = f
	}
	for _, want := range []MetricFamily{
		{Name: "orders_total", Type: "counter", Help: "Orders placed.", Series: 2, Query: "rate(orders_total[5m])"},
		{Name: "latency_seconds", Type: "histogram", Unit: "s", Series: 2, Query: "histogram_quantile(0.9, sum by (job, le) (rate(latency_seconds_bucket[5m])))"},
		{Name: "rpc_duration", Type: "summary", Series: 1, Query: "rpc_duration"},
		{Name: "payload_size_bytes", Type: "histogram", Unit: "By", Series: 1, Query: "histogram_quantile(0.9, sum by (job) (rate(payload_size_bytes[5m])))"},
		{Name: "temperature", Type: "gauge", Help: "<script>alert(1)</script>", Series: 1, Query: "temperature"},
	} {
		if got[want.Name] != want {
			t.Errorf("family %s:\n got %+v\nwant %+v", want.Name, got[want.Name], want)
		}
	}
	if len(got) != 5 {
		t.Errorf("families: %+v", fams)
	}

	// An hour later the series are out of the window but the families stay.
	fams, _ = p.families(context.Background(), now.Add(2*time.Hour))
	for _, f := range fams {
		if f.Series != 0 {
			t.Errorf("two hours later %s has %d series", f.Name, f.Series)
		}
	}
}

func TestMetricsPageRendersStateEscaped(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := New(fakeStats{}, Options{Version: "v1", Now: func() time.Time { return now }})
	h.Handle("GET /graph", NewMetricsPage(h, metricsDB(t, now)))
	code, body := get(t, h, `/graph?q=up%3C/textarea%3E%3Cscript%3E&range=6h&step=30s&tab=table`)
	if code != 200 {
		t.Fatalf("GET /graph: %d %s", code, body)
	}
	for _, want := range []string{
		`data-testid="metrics-page"`,
		`up&lt;/textarea&gt;&lt;script&gt;</textarea>`,
		`<option value="6h" selected>`,
		`value="30s"`,
		`<input id="prom-tab" type="hidden" name="tab" value="table">`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		`href="/graph?q=rate%28orders_total%5B5m%5D%29"`,
		`class="active" data-testid="nav-metrics"`,
		`/assets/metrics.js`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "not-built") {
		t.Error("page holds unescaped help text or the not-built notice")
	}
	// Prometheus' link form, as in alerts' generator URLs.
	_, body = get(t, h, `/graph?g0.expr=sum%28up%29&g0.tab=1`)
	if !strings.Contains(body, `sum(up)</textarea>`) || !strings.Contains(body, `name="tab" value="table"`) {
		t.Error("g0.expr and g0.tab are not read")
	}
	// Unknown parameters fall back to the defaults.
	_, body = get(t, h, `/graph?range=99y&tab=nope`)
	if !strings.Contains(body, `<option value="1h" selected>`) || !strings.Contains(body, `name="tab" value="graph"`) {
		t.Error("defaults not applied")
	}
}

func TestFirstQuery(t *testing.T) {
	for _, c := range []struct {
		name, typ string
		native    bool
		want      string
	}{
		{"a_total", "counter", false, "rate(a_total[5m])"},
		{"h", "histogram", true, "histogram_quantile(0.9, sum by (job) (rate(h[5m])))"},
		{"h", "histogram", false, "histogram_quantile(0.9, sum by (job, le) (rate(h_bucket[5m])))"},
		{"g", "gauge", false, "g"},
		{`we"ird.name`, "counter", false, `{"we\"ird.name"}`},
	} {
		if got := firstQuery(c.name, c.typ, c.native); got != c.want {
			t.Errorf("firstQuery(%q, %s) = %q, want %q", c.name, c.typ, got, c.want)
		}
	}
}
