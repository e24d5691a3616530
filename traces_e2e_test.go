package main

// End-to-end tests of traces: the OpenTelemetry Go SDK exports spans of two
// services over gRPC and HTTP; the Jaeger API returns them whole and searches
// them, PromQL sees the span metrics and the service graph, and the browser
// finds a trace, opens its waterfall and the service map.

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// shopTrace describes one sent trace.
type shopTrace struct {
	id       string
	failed   bool          // the payment span has status Error
	duration time.Duration // of the root span
}

// sendShopTraces sends n traces of three spans: shop-frontend's server span
// "GET /checkout" and client span "POST /pay" over gRPC, and shop-payment's
// server span "Charge" (the child of the client span) over HTTP. Every span is
// exported in its own request as it ends, so each trace arrives in three
// requests over two protocols, the child before its parent.
func sendShopTraces(t *testing.T, s *server, n int) []shopTrace {
	t.Helper()
	ctx := context.Background()
	g, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.grpc), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	h, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.otlpHTTP), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	fe := sdktrace.NewTracerProvider(sdktrace.WithSyncer(g), sdktrace.WithResource(res("shop-frontend")))
	pay := sdktrace.NewTracerProvider(sdktrace.WithSyncer(h), sdktrace.WithResource(res("shop-payment")))
	feT, payT := fe.Tracer("shop/frontend"), pay.Tracer("shop/payment")
	base := time.Now().Add(-2 * time.Minute)
	var out []shopTrace
	for i := 0; i < n; i++ {
		start := base.Add(time.Duration(i) * time.Second)
		dur := time.Duration(20+i*40) * time.Millisecond // 20ms, 60ms, 100ms, …
		rctx, root := feT.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("http.route", "/checkout"), attribute.Int("shop.order", i)))
		cctx, call := feT.Start(rctx, "POST /pay", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(2*time.Millisecond)))
		_, charge := payT.Start(cctx, "Charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(4*time.Millisecond)),
			trace.WithAttributes(attribute.String("rpc.method", "Charge")))
		failed := i%3 == 0
		if failed {
			charge.AddEvent("exception", trace.WithTimestamp(start.Add(5*time.Millisecond)), trace.WithAttributes(attribute.String("exception.message", "card declined")))
			charge.SetStatus(codes.Error, "card declined")
		}
		charge.End(trace.WithTimestamp(start.Add(dur - 4*time.Millisecond)))
		call.End(trace.WithTimestamp(start.Add(dur - 2*time.Millisecond)))
		root.End(trace.WithTimestamp(start.Add(dur)))
		out = append(out, shopTrace{id: root.SpanContext().TraceID().String(), failed: failed, duration: dur})
	}
	for _, tp := range []*sdktrace.TracerProvider{fe, pay} {
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type jaegerDoc struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
			Logs []json.RawMessage `json:"logs"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

func jaegerGet(t *testing.T, s *server, path string) jaegerDoc {
	t.Helper()
	code, b := s.get(path)
	var d jaegerDoc
	if err := json.Unmarshal(b, &d); err != nil || code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return d
}

func searchIDs(t *testing.T, s *server, q url.Values) []string {
	t.Helper()
	now := time.Now()
	q.Set("start", strconv.FormatInt(now.Add(-time.Hour).UnixMicro(), 10))
	q.Set("end", strconv.FormatInt(now.UnixMicro(), 10))
	d := jaegerGet(t, s, "/api/traces?"+q.Encode())
	var ids []string
	for _, tr := range d.Data {
		ids = append(ids, tr.TraceID)
	}
	sort.Strings(ids)
	return ids
}

func TestTracesEndToEnd(t *testing.T) {
	s := startServer(t, t.TempDir(), "OUTPOST_SPAN_METRICS_INTERVAL=300ms")
	const n = 6
	sent := sendShopTraces(t, s, n)

	// Each trace, sent in three requests over two protocols, comes back whole.
	for _, tr := range sent {
		d := jaegerGet(t, s, "/api/traces/"+tr.id)
		if len(d.Data) != 1 || len(d.Data[0].Spans) != 3 {
			t.Fatalf("trace %s: %+v", tr.id, d)
		}
		got := map[string]string{}
		for _, sp := range d.Data[0].Spans {
			got[sp.OperationName] = d.Data[0].Processes[sp.ProcessID].ServiceName
		}
		if got["GET /checkout"] != "shop-frontend" || got["POST /pay"] != "shop-frontend" || got["Charge"] != "shop-payment" {
			t.Errorf("trace %s: operations → services %v", tr.id, got)
		}
		code, b := s.get("/api/v1/traces/" + tr.id)
		if code != 200 || strings.Count(string(b), `"spanId"`) != 3 {
			t.Errorf("OTLP JSON of %s: %d %s", tr.id, code, b)
		}
	}

	// Search filters return exactly the expected traces.
	want := func(keep func(shopTrace) bool) []string {
		var ids []string
		for _, tr := range sent {
			if keep(tr) {
				ids = append(ids, tr.id)
			}
		}
		sort.Strings(ids)
		return ids
	}
	for _, c := range []struct {
		name string
		q    url.Values
		want []string
	}{
		{"service", url.Values{"service": {"shop-frontend"}}, want(func(shopTrace) bool { return true })},
		{"operation", url.Values{"service": {"shop-payment"}, "operation": {"Charge"}}, want(func(shopTrace) bool { return true })},
		{"errors", url.Values{"service": {"shop-payment"}, "tags": {`{"error":"true"}`}}, want(func(tr shopTrace) bool { return tr.failed })},
		{"minDuration", url.Values{"service": {"shop-frontend"}, "operation": {"GET /checkout"}, "minDuration": {"100ms"}}, want(func(tr shopTrace) bool { return tr.duration >= 100*time.Millisecond })},
		{"maxDuration", url.Values{"service": {"shop-frontend"}, "operation": {"GET /checkout"}, "maxDuration": {"70ms"}}, want(func(tr shopTrace) bool { return tr.duration <= 70*time.Millisecond })},
		{"tag", url.Values{"service": {"shop-frontend"}, "tags": {`{"shop.order":"4"}`}}, []string{sent[4].id}},
		{"limit", url.Values{"service": {"shop-frontend"}, "limit": {"2"}}, []string{sent[n-2].id, sent[n-1].id}},
	} {
		if c.name == "limit" {
			sort.Strings(c.want)
		}
		if got := searchIDs(t, s, c.q); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("search %s (%v): %v, want %v", c.name, c.q, got, c.want)
		}
	}

	// Grafana's Jaeger data source: services and operations.
	code, b := s.get("/api/services")
	if code != 200 || !strings.Contains(string(b), `"shop-frontend"`) || !strings.Contains(string(b), `"shop-payment"`) {
		t.Errorf("services: %d %s", code, b)
	}
	code, b = s.get("/api/services/shop-frontend/operations")
	if code != 200 || !strings.Contains(string(b), `"GET /checkout"`) || !strings.Contains(string(b), `"POST /pay"`) {
		t.Errorf("operations: %d %s", code, b)
	}
	code, b = s.get("/api/dependencies")
	if code != 200 || !strings.Contains(string(b), `{"parent":"shop-frontend","child":"shop-payment","callCount":6}`) {
		t.Errorf("dependencies: %d %s", code, b)
	}
	code, b = s.get("/api/traces/xyz")
	if code != 400 || !strings.Contains(string(b), `"errors":[{"code":400`) {
		t.Errorf("bad trace id: %d %s", code, b)
	}

	// Span metrics and the service graph, through PromQL.
	failed := 0
	for _, tr := range sent {
		if tr.failed {
			failed++
		}
	}
	for _, c := range []struct{ query, want string }{
		{`sum(traces_span_metrics_calls_total{service_name="shop-frontend",span_name="GET /checkout",span_kind="SPAN_KIND_SERVER"})`, strconv.Itoa(n)},
		{`sum(traces_span_metrics_calls_total{service_name="shop-payment",status_code="STATUS_CODE_ERROR"})`, strconv.Itoa(failed)},
		{`sum(traces_span_metrics_duration_seconds_count{job="shop-payment"})`, strconv.Itoa(n)},
		{`sum(traces_span_metrics_duration_seconds_bucket{service_name="shop-frontend",span_name="GET /checkout",le="0.1"})`, "3"},
		{`sum(traces_service_graph_request_total{client="shop-frontend",server="shop-payment"})`, strconv.Itoa(n)},
		{`sum(traces_service_graph_request_failed_total{client="shop-frontend",server="shop-payment"})`, strconv.Itoa(failed)},
		{`sum(traces_service_graph_request_server_seconds_count{client="shop-frontend",server="shop-payment"})`, strconv.Itoa(n)},
		{`sum(traces_service_graph_request_client_seconds_count{client="shop-frontend",server="shop-payment"})`, strconv.Itoa(n)},
	} {
		var got map[string]string
		deadline := time.Now().Add(10 * time.Second)
		for {
			got = instant(t, s, c.query, time.Now())
			if got["{}"] == c.want || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got["{}"] != c.want {
			t.Errorf("%s = %v, want %s", c.query, got, c.want)
		}
	}
	if code, b := s.get("/metrics"); code != 200 || !strings.Contains(string(b), "outpost_span_metrics_series 5") || !strings.Contains(string(b), "outpost_span_metrics_dropped_spans_total 0") {
		t.Errorf("/metrics lacks the span-metrics gauges (4 span-metrics series + 1 edge)")
	}
	// Derived points are not counted as ingested.
	if st := s.status(); st.Ingested.Points != 0 || st.Ingested.Spans != 3*n {
		t.Errorf("ingested = %+v, want 0 points and %d spans", st.Ingested, 3*n)
	}
	s.stop()
}

func TestBrowserTraces(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir())
	sent := sendShopTraces(t, s, 4)
	base := "http://" + s.http
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(base+"/traces"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="trace-search-form"]`))); err != nil {
		t.Fatalf("open /traces: %v\n%s", err, s.logs())
	}
	// Choose the service; the operations follow; search for errors only.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`[data-testid="service"]`), "shop-payment"),
		chromedp.Click(chromedp.CSS(`[data-testid="errors-only"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="search"]`)),
		// The form is a GET: wait for the page it loads, whose box is checked
		// in its markup (a click only sets the property), not the old page's
		// results, which list every trace.
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="errors-only"][checked]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="results"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="scatter"] canvas`)),
	); err != nil {
		t.Fatalf("search: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="results"] tbody`)))
	if err != nil || strings.Count(rows, "GET /checkout") != 2 || !strings.Contains(rows, sent[0].id) || !strings.Contains(rows, sent[3].id) {
		t.Errorf("results (errors only: traces 0 and 3) = %q %v", rows, err)
	}
	ops, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="operations"]`)))
	if err != nil || !strings.Contains(ops, "Charge") {
		t.Errorf("operations of shop-payment = %q %v", ops, err)
	}

	// Clicking a point of the scatter opens a trace.
	// Where the first (earliest) point is drawn: trace 0, an error trace.
	xy, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
		const u = document.querySelector('[data-testid="scatter"]').uplot, r = u.over.getBoundingClientRect();
		return [r.left + u.valToPos(u.data[0][0], "x"), r.top + u.valToPos(u.data[2][0], "y")];
	})()`))
	if err != nil || len(xy) != 2 {
		t.Fatalf("scatter: %v %v", xy, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.MouseClickXY(xy[0], xy[1]),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="waterfall"]`)),
	); err != nil {
		t.Fatalf("click the scatter: %v", err)
	}
	id, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="trace-id"]`)))
	if err != nil || id != sent[0].id {
		t.Errorf("scatter opened trace %q, want the earliest error trace %s: %v", id, sent[0].id, err)
	}

	// The waterfall: three rows, two services, the critical path, span details.
	names, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="waterfall"]`)))
	if err != nil || !strings.Contains(names, "GET /checkout") || !strings.Contains(names, "POST /pay") || !strings.Contains(names, "Charge") {
		t.Errorf("waterfall = %q %v", names, err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="span-row"][data-critical="true"]').length`)); err != nil || n != 3 {
		t.Errorf("critical spans = %d %v, want 3 (a chain)", n, err)
	}
	legend, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="legend"]`)))
	if err != nil || !strings.Contains(legend, "shop-frontend") || !strings.Contains(legend, "shop-payment") {
		t.Errorf("legend = %q %v", legend, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="span-row"]:nth-of-type(3) [data-testid="span-name"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="span-row"][open] [data-testid="span-details"]`)),
	); err != nil {
		t.Fatalf("open span details: %v", err)
	}
	details, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="span-row"][open] [data-testid="span-details"]`)))
	if err != nil || !strings.Contains(details, "card declined") || !strings.Contains(details, "ERROR") || !strings.Contains(details, "rpc.method") {
		t.Errorf("Charge details = %q %v", details, err)
	}
	// Collapsing the root hides its subtree.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="span-row"]:first-of-type [data-testid="span-toggle"]`))); err != nil {
		t.Fatal(err)
	}
	if visible, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll('[data-testid="span-row"]')).filter(e => e.offsetParent !== null).length`)); err != nil || visible != 1 {
		t.Errorf("rows visible after collapsing the root = %d %v, want 1", visible, err)
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`[data-testid="trace-logs"]`), "href"))
	if err != nil || href.Value != "/logs?query=trace_id%3A"+sent[0].id {
		t.Errorf("logs link = %q %v", href.Value, err)
	}

	// The service map: two services, one edge, a click-through to operations.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/service-map"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="map-svg"]`))); err != nil {
		t.Fatalf("open /service-map: %v", err)
	}
	mapText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="service-map"]`)))
	if err != nil || !strings.Contains(mapText, "shop-frontend") || !strings.Contains(mapText, "shop-payment") || !strings.Contains(mapText, "req/min") {
		t.Errorf("service map = %q %v", mapText, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="map-node"]:last-of-type text`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="operations"]`))); err != nil {
		t.Fatalf("click a service: %v", err)
	}
	ops, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="operations"]`)))
	if err != nil || !strings.Contains(ops, "Operations of shop-") {
		t.Errorf("operations after click = %q %v", ops, err)
	}
	s.stop()
}
