package main

// End-to-end tests of the metrics path: OpenTelemetry SDK exporters → OTLP →
// tsdb → Prometheus HTTP API and the Metrics page.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpinput "github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// sendAllMetricKinds exports, through the SDK's gRPC exporter (service e2e-grpc)
// and its HTTP exporter (service e2e-http), one collection of:
//
//	orders          Int64Counter, unit {order}, 3 shards × 10        → orders_total
//	cpu.time        Float64Counter, unit s, 2.5                     → cpu_time_seconds_total
//	queue.depth     Int64UpDownCounter, +5 −2                       → queue_depth
//	memory.used     Int64Gauge, unit By, 1024                       → memory_used_bytes
//	latency         Float64Histogram, unit s, 0.0…2.9 in buckets    → latency_seconds_bucket{le}, _sum, _count
//	                0.5, 1, 2, 5
//	payload.size    Float64Histogram, unit By, exponential          → payload_size_bytes (native)
//
// It returns the time just after the export.
func sendAllMetricKinds(t *testing.T, s *server) time.Time {
	t.Helper()
	ctx := context.Background()
	for _, c := range metricExporters(t, s) {
		reader := sdkmetric.NewManualReader()
		expo := sdkmetric.NewView(sdkmetric.Instrument{Name: "payload.size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res(c.name)), sdkmetric.WithView(expo))
		m := mp.Meter("e2e")
		orders, _ := m.Int64Counter("orders", metric.WithUnit("{order}"), metric.WithDescription("Orders placed."))
		cpu, _ := m.Float64Counter("cpu.time", metric.WithUnit("s"))
		queue, _ := m.Int64UpDownCounter("queue.depth")
		mem, _ := m.Int64Gauge("memory.used", metric.WithUnit("By"))
		lat, _ := m.Float64Histogram("latency", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.5, 1, 2, 5))
		size, _ := m.Float64Histogram("payload.size", metric.WithUnit("By"))
		for i := 0; i < 30; i++ {
			orders.Add(ctx, 1, metric.WithAttributes(attribute.Int("shard", i%3)))
			lat.Record(ctx, float64(i)/10)
			size.Record(ctx, float64(100*(i+1)))
		}
		cpu.Add(ctx, 2.5)
		queue.Add(ctx, 5)
		queue.Add(ctx, -2)
		mem.Record(ctx, 1024)
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if err := c.exp.Export(ctx, &rm); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		c.exp.Shutdown(ctx)
		mp.Shutdown(ctx)
	}
	return time.Now()
}

type promResult struct {
	Metric    map[string]string `json:"metric"`
	Value     [2]any            `json:"value"`
	Values    [][2]any          `json:"values"`
	Histogram [2]any            `json:"histogram"`
}

// promQuery calls a Prometheus API path with GET and returns the "data" member.
func promQuery(t *testing.T, s *server, path string, params url.Values) json.RawMessage {
	t.Helper()
	code, body := s.get(path + "?" + params.Encode())
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || code != 200 || env.Status != "success" {
		t.Fatalf("%s %v: %d %s", path, params, code, body)
	}
	return env.Data
}

// instant runs an instant query at ts and returns "sorted labels → value".
func instant(t *testing.T, s *server, query string, ts time.Time) map[string]string {
	t.Helper()
	data := promQuery(t, s, "/api/v1/query", url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64)}})
	var d struct {
		ResultType string       `json:"resultType"`
		Result     []promResult `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.ResultType != "vector" {
		t.Fatalf("%s: %v %s", query, err, data)
	}
	out := map[string]string{}
	for _, r := range d.Result {
		v, _ := r.Value[1].(string)
		if r.Histogram[1] != nil {
			b, _ := json.Marshal(r.Histogram[1])
			v = string(b)
		}
		out[labelString(r.Metric)] = v
	}
	return out
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func checkMetricsQueries(t *testing.T, s *server, at time.Time, when string) {
	t.Helper()
	for _, c := range []struct {
		query string
		want  map[string]string
	}{
		{`orders_total{job="e2e-grpc"}`, map[string]string{
			`{__name__=orders_total,instance=e2e,job=e2e-grpc,otel_scope_name=e2e,shard=0}`: "10",
			`{__name__=orders_total,instance=e2e,job=e2e-grpc,otel_scope_name=e2e,shard=1}`: "10",
			`{__name__=orders_total,instance=e2e,job=e2e-grpc,otel_scope_name=e2e,shard=2}`: "10",
		}},
		{`sum by (job) (orders_total)`, map[string]string{`{job=e2e-grpc}`: "30", `{job=e2e-http}`: "30"}},
		{`cpu_time_seconds_total`, map[string]string{
			`{__name__=cpu_time_seconds_total,instance=e2e,job=e2e-grpc,otel_scope_name=e2e}`: "2.5",
			`{__name__=cpu_time_seconds_total,instance=e2e,job=e2e-http,otel_scope_name=e2e}`: "2.5",
		}},
		{`sum(queue_depth)`, map[string]string{`{}`: "6"}},
		{`memory_used_bytes{job="e2e-http"}`, map[string]string{
			`{__name__=memory_used_bytes,instance=e2e,job=e2e-http,otel_scope_name=e2e}`: "1024",
		}},
		{`latency_seconds_bucket{job="e2e-grpc"}`, map[string]string{
			`{__name__=latency_seconds_bucket,instance=e2e,job=e2e-grpc,le=0.5,otel_scope_name=e2e}`:  "6",
			`{__name__=latency_seconds_bucket,instance=e2e,job=e2e-grpc,le=1,otel_scope_name=e2e}`:    "11",
			`{__name__=latency_seconds_bucket,instance=e2e,job=e2e-grpc,le=2,otel_scope_name=e2e}`:    "21",
			`{__name__=latency_seconds_bucket,instance=e2e,job=e2e-grpc,le=5,otel_scope_name=e2e}`:    "30",
			`{__name__=latency_seconds_bucket,instance=e2e,job=e2e-grpc,le=+Inf,otel_scope_name=e2e}`: "30",
		}},
		{`latency_seconds_count{job="e2e-grpc"} + 0`, map[string]string{`{instance=e2e,job=e2e-grpc,otel_scope_name=e2e}`: "30"}},
		// Ranks 15 of 30 falls in (1, 2], which holds ranks 12…21: 1 + (15−11)/10.
		{`histogram_quantile(0.5, sum by (le) (latency_seconds_bucket))`, map[string]string{`{}`: "1.4"}},
		{`histogram_count(payload_size_bytes{job="e2e-http"})`, map[string]string{`{instance=e2e,job=e2e-http,otel_scope_name=e2e}`: "30"}},
	} {
		if got := instant(t, s, c.query, at); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %s:\n got %v\nwant %v", when, c.query, got, c.want)
		}
	}
	// The exponential histogram is a native histogram: its median, from
	// 30 values 100…3000, is within a bucket's width (scale 8 at most) of 1500.
	got := instant(t, s, `histogram_quantile(0.5, sum(payload_size_bytes))`, at)
	if v, err := strconv.ParseFloat(got["{}"], 64); err != nil || math.Abs(v-1500)/1500 > 0.1 {
		t.Errorf("%s: native histogram median = %v, want ≈1500", when, got)
	}

	// A range query over the export time has the counter at every step after it.
	data := promQuery(t, s, "/api/v1/query_range", url.Values{
		"query": {`sum(orders_total)`},
		"start": {strconv.FormatInt(at.Add(-time.Minute).Unix(), 10)},
		"end":   {strconv.FormatInt(at.Add(time.Minute).Unix(), 10)},
		"step":  {"15s"},
	})
	var d struct {
		ResultType string       `json:"resultType"`
		Result     []promResult `json:"result"`
	}
	json.Unmarshal(data, &d)
	if d.ResultType != "matrix" || len(d.Result) != 1 || len(d.Result[0].Values) < 4 || d.Result[0].Values[len(d.Result[0].Values)-1][1] != "60" {
		t.Errorf("%s: range query: %s", when, data)
	}

	// Names and metadata.
	var names []string
	json.Unmarshal(promQuery(t, s, "/api/v1/label/__name__/values", nil), &names)
	for _, want := range []string{"orders_total", "cpu_time_seconds_total", "queue_depth", "memory_used_bytes",
		"latency_seconds_bucket", "latency_seconds_sum", "latency_seconds_count", "payload_size_bytes"} {
		if !contains(names, want) {
			t.Errorf("%s: metric names %v lack %s", when, names, want)
		}
	}
	var md map[string][]struct{ Type, Help, Unit string }
	json.Unmarshal(promQuery(t, s, "/api/v1/metadata", nil), &md)
	for name, typ := range map[string]string{"orders_total": "counter", "queue_depth": "gauge", "latency_seconds": "histogram"} {
		if len(md[name]) != 1 || md[name][0].Type != typ {
			t.Errorf("%s: metadata of %s = %+v, want type %s", when, name, md[name], typ)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestMetricsEndToEndWithSDKExporters(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	at := sendAllMetricKinds(t, s)
	checkMetricsQueries(t, s, at, "from the head")

	resp, err := http.Post("http://"+s.http+"/api/v1/admin/flush", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin flush: %d", resp.StatusCode)
	}
	checkMetricsQueries(t, s, at, "after flush")
	s.stop()

	s = startServer(t, dir)
	checkMetricsQueries(t, s, at, "after restart")
	s.stop()
}

func TestBrowserMetricsPageChartsAQuery(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir())
	sendAllMetricKinds(t, s)
	base := "http://" + s.http
	input := chromedp.CSS(`[data-testid="query-input"]`)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(base+"/graph"), chromedp.WaitVisible(input)); err != nil {
		t.Fatalf("open /graph: %v\n%s", err, s.logs())
	}

	// The explore list shows the families with type and series count.
	rows, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="explore"]`)))
	if err != nil || !strings.Contains(rows, "orders_total") || !strings.Contains(rows, "counter") || !strings.Contains(rows, "latency_seconds") {
		t.Errorf("explore list = %q %v", rows, err)
	}

	// Autocomplete offers metric names from the API.
	if err := chromedp.Do(ctx, chromedp.Focus(input), chromedp.SendKeys(input, "orders_t"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="autocomplete-item"]`))); err != nil {
		t.Fatalf("autocomplete: %v", err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="autocomplete"]`))); err != nil || !strings.Contains(txt, "orders_total") {
		t.Errorf("autocomplete = %q %v", txt, err)
	}

	// Type a query, run it, see the chart and a legend entry per series.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(input, " "), // cleared (SetValue refuses an empty string), then typed
		chromedp.SendKeys(input, `sum by (job) (orders_total)`),
		chromedp.Click(chromedp.CSS(`[data-testid="run"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart"] canvas`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="legend-item"]`)),
	); err != nil {
		t.Fatalf("run query: %v", err)
	}
	legend, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="legend"]`)))
	if err != nil || !strings.Contains(legend, `job="e2e-grpc"`) || !strings.Contains(legend, `job="e2e-http"`) || !strings.Contains(legend, "30") {
		t.Errorf("legend = %q %v", legend, err)
	}
	// The legend shows the values under the cursor: nothing an hour ago, 30 now.
	box, err := chromedp.Run(ctx, chromedp.Dimensions(chromedp.CSS(`[data-testid="chart"] .u-over`)))
	if err != nil {
		t.Fatalf("chart overlay: %v", err)
	}
	left, top, right, bottom := box.Content[0], box.Content[1], box.Content[4], box.Content[5]
	for _, c := range []struct {
		x    float64
		want string
	}{{left + 2, "–"}, {right - 1, "30"}} {
		if err := chromedp.Do(ctx, chromedp.MouseEvent(cdpinput.DispatchMouseEventTypeMouseMoved, c.x, (top+bottom)/2)); err != nil {
			t.Fatal(err)
		}
		if v, err := waitText(ctx, `[data-testid="legend-value"]`, func(s string) bool { return s == c.want }); err != nil {
			t.Errorf("legend value at x=%.0f = %q, want %q: %v", c.x, v, c.want, err)
		}
	}
	// Clicking a legend entry hides its series.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="legend-item"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="legend-item"].off`))); err != nil {
		t.Errorf("legend toggle: %v", err)
	}

	// The table view shows the instant values.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="tab-table"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-row"]`))); err != nil {
		t.Fatalf("table view: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="result-table"]`)))
	if err != nil || !strings.Contains(table, `{job="e2e-grpc"}`) || !strings.Contains(table, "30") {
		t.Errorf("table = %q %v", table, err)
	}

	// A bad query shows the API's error inline.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(input, " "), // cleared (SetValue refuses an empty string), then typed
		chromedp.SendKeys(input, `sum(orders_total`),
		chromedp.Click(chromedp.CSS(`[data-testid="run"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="query-error"]`)),
	); err != nil {
		t.Fatalf("bad query: %v", err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="query-error"]`))); err != nil || !strings.Contains(msg, "bad_data") || !strings.Contains(msg, "parse error") {
		t.Errorf("error shown = %q %v", msg, err)
	}
	s.stop()
}
