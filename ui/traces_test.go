package ui

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/store/spanmetrics"
	"outpost/traceindex"
)

var tnow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

type tspan struct {
	service, name string
	id, parent    byte
	from, to      int // ms after the trace start
	kind          ptrace.SpanKind
	err           bool
}

func traceOf(id byte, spans ...tspan) ptrace.Traces {
	td := ptrace.NewTraces()
	start := tnow.Add(-10 * time.Minute)
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0: 0xab, 15: id})
		sp.SetSpanID(pcommon.SpanID{7: s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{7: s.parent})
		}
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(s.from) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(s.to) * time.Millisecond)))
		sp.Attributes().PutStr("note", `<b>"bold"</b>`)
		if s.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("<img src=x onerror=alert(1)>")
		}
	}
	return td
}

// The critical path walks back from the end of the root: the child ending last,
// then the child ending before that one started, and so on, recursively.
func TestBuildTraceViewCriticalPath(t *testing.T) {
	v := BuildTraceView(traceOf(1,
		tspan{service: "web", name: "root", id: 1, from: 0, to: 100},
		tspan{service: "web", name: "A", id: 2, parent: 1, from: 5, to: 30},
		tspan{service: "db", name: "B", id: 3, parent: 1, from: 40, to: 95},
		tspan{service: "db", name: "C", id: 4, parent: 3, from: 50, to: 60},
		tspan{service: "cache", name: "D", id: 5, parent: 3, from: 45, to: 90, err: true},
	))
	var order, critical []string
	for _, s := range v.Spans {
		order = append(order, strings.Repeat(".", s.Depth)+s.Name)
		if s.Critical {
			critical = append(critical, s.Name)
		}
	}
	if want := []string{"root", ".A", ".B", "..D", "..C"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
	if want := []string{"root", "A", "B", "D"}; !reflect.DeepEqual(critical, want) {
		t.Errorf("critical path = %v, want %v", critical, want)
	}
	if len(v.Services) != 3 || v.Services[0].Name != "web" || v.Services[0].Colour == v.Services[1].Colour {
		t.Errorf("services = %v", v.Services)
	}
	if v.Spans[2].Left != 40 || v.Spans[2].Width != 55 || v.ErrorCount != 1 || v.Duration != "100.00ms" {
		t.Errorf("B at %v%% width %v%%, errors %d, duration %s", v.Spans[2].Left, v.Spans[2].Width, v.ErrorCount, v.Duration)
	}
}

func TestParseTags(t *testing.T) {
	got, err := parseTags(`http.route=/cart  host.name="web 1" k=`)
	if err != nil || !reflect.DeepEqual(got, map[string]string{"http.route": "/cart", "host.name": "web 1", "k": ""}) {
		t.Errorf("parseTags = %v %v", got, err)
	}
	for _, bad := range []string{"novalue", `a="open`, "=x"} {
		if _, err := parseTags(bad); err == nil {
			t.Errorf("parseTags(%q) accepted", bad)
		}
	}
}

// tracePagesHandler serves the trace pages over a real span store and a real
// TSDB fed by the span-metrics tap.
func tracePagesHandler(t *testing.T) *Handler {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ix, err := traceindex.Open(t.TempDir(), &traceindex.Options{NoSync: true, Now: func() time.Time { return tnow }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	db := metricsDB(t, tnow)
	agg := spanmetrics.New(&spanmetrics.Options{Now: func() time.Time { return tnow.Add(-time.Minute) }})
	for _, td := range []ptrace.Traces{
		traceOf(1,
			tspan{service: "frontend", name: "GET /cart", id: 1, from: 0, to: 80, kind: ptrace.SpanKindServer},
			tspan{service: "frontend", name: "<script>alert(1)</script>", id: 2, parent: 1, from: 10, to: 70, kind: ptrace.SpanKindClient},
			tspan{service: "payment", name: "Charge", id: 3, parent: 2, from: 15, to: 65, kind: ptrace.SpanKindServer, err: true}),
		traceOf(2, tspan{service: "frontend", name: "GET /health", id: 1, from: 0, to: 2, kind: ptrace.SpanKindServer}),
	} {
		if _, _, err := ix.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		agg.TapTraces(td)
	}
	agg.Start(func(ctx context.Context, md pmetric.Metrics) error { _, _, err := db.WriteMetrics(ctx, md); return err })
	if err := agg.Close(); err != nil {
		t.Fatal(err)
	}
	h := New(fakeStats{}, Options{Now: func() time.Time { return tnow }, Logger: quiet})
	NewTracePages(h, ix, db).Register(h.Handle)
	return h
}

func TestTracePages(t *testing.T) {
	h := tracePagesHandler(t)
	code, body := get(t, h, "/traces?service=frontend&range=1h")
	if code != 200 {
		t.Fatalf("/traces: %d %s", code, body)
	}
	for _, want := range []string{`data-testid="trace-row"`, "GET /cart", "GET /health", `data-testid="operations"`, "&lt;script&gt;alert(1)&lt;/script&gt;", `data-testid="scatter"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/traces lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("/traces: a span name is not escaped")
	}
	if n := strings.Count(body, `data-testid="trace-row"`); n != 2 {
		t.Errorf("results = %d, want 2", n)
	}
	_, body = get(t, h, "/traces?service=frontend&errors=1")
	if n := strings.Count(body, `data-testid="trace-row"`); n != 0 {
		t.Errorf("frontend errors only: %d results, want 0 (the error is payment's)", n)
	}
	_, body = get(t, h, "/traces?service=payment&errors=1")
	if n := strings.Count(body, `data-testid="trace-row"`); n != 1 {
		t.Errorf("payment errors only: %d results, want 1", n)
	}
	_, body = get(t, h, "/traces?service=frontend&minDuration=fast")
	if !strings.Contains(body, `data-testid="search-error"`) || !strings.Contains(body, "cannot parse the minimum duration") {
		t.Errorf("bad duration not reported")
	}

	id := "ab000000000000000000000000000001"
	code, body = get(t, h, "/traces/"+id)
	if code != 200 {
		t.Fatalf("/traces/%s: %d %s", id, code, body)
	}
	for _, want := range []string{`data-testid="waterfall"`, "Charge", `data-critical="true"`, `href="/logs?query=trace_id%3A` + id + `"`,
		"&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;&#34;bold&#34;&lt;/b&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("trace view lacks %q", want)
		}
	}
	if strings.Contains(body, "<img src=x") || strings.Contains(body, "<b>\"bold") {
		t.Error("trace view: telemetry text is not escaped")
	}
	if n := strings.Count(body, `data-testid="span-row"`); n != 3 {
		t.Errorf("span rows = %d, want 3", n)
	}
	if code, _ := get(t, h, "/traces/xyz"); code != 400 {
		t.Errorf("bad id: %d, want 400", code)
	}
	if code, _ := get(t, h, "/traces/1"); code != 404 {
		t.Errorf("unknown id: %d, want 404", code)
	}

	code, body = get(t, h, "/service-map?range=1h")
	if code != 200 {
		t.Fatalf("/service-map: %d %s", code, body)
	}
	for _, want := range []string{`data-testid="map-svg"`, `data-client="frontend" data-server="payment"`, `href="/traces?service=payment"`,
		"0.0167 req/min · 0.0167 err/min", "traces_service_graph_request_failed_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("service map lacks %q", want)
		}
	}
}
