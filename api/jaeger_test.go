package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/traceindex"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// jt0 is the fixed "now" of the Jaeger tests.
var jt0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

var (
	checkoutID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	healthID   = pcommon.TraceID{15: 0x42} // a 64-bit id, as Jaeger clients make
)

func sid(b byte) pcommon.SpanID { return pcommon.SpanID{0, 0, 0, 0, 0, 0, 0xa0, b} }

func at(ms int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(jt0.Add(-time.Minute + time.Duration(ms)*time.Millisecond))
}

// checkoutTrace is a trace of two services in two requests: frontend's spans
// first, payment's (the child of a frontend client span) later.
func checkoutTrace() (frontend, payment ptrace.Traces) {
	frontend = ptrace.NewTraces()
	rs := frontend.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	rs.Resource().Attributes().PutStr("host.name", "web-1")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("shop/http")
	ss.Scope().SetVersion("1.2.0")
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(checkoutID)
	root.SetSpanID(sid(1))
	root.SetName("GET /checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(at(0))
	root.SetEndTimestamp(at(250))
	root.Attributes().PutStr("http.route", "/checkout")
	root.Attributes().PutInt("http.response.status_code", 500)
	root.Attributes().PutDouble("shop.cart.value", 41.5)
	root.Attributes().PutBool("shop.logged_in", true)
	root.Attributes().PutEmptySlice("shop.items").FromRaw([]any{"book", "pen"})
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("payment failed")
	root.TraceState().FromRaw("shop=1")
	ev := root.Events().AppendEmpty()
	ev.SetName("cache miss")
	ev.SetTimestamp(at(5))
	ev.Attributes().PutStr("cache.key", "cart:17")
	link := root.Links().AppendEmpty()
	link.SetTraceID(healthID)
	link.SetSpanID(sid(9))
	call := ss.Spans().AppendEmpty()
	call.SetTraceID(checkoutID)
	call.SetSpanID(sid(2))
	call.SetParentSpanID(sid(1))
	call.SetName("POST /pay")
	call.SetKind(ptrace.SpanKindClient)
	call.SetStartTimestamp(at(20))
	call.SetEndTimestamp(at(220))
	call.Attributes().PutEmptyBytes("shop.token").FromRaw([]byte{1, 2, 3})

	payment = ptrace.NewTraces()
	rs = payment.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "payment")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(checkoutID)
	sp.SetSpanID(sid(3))
	sp.SetParentSpanID(sid(2))
	sp.SetName("Charge")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(at(30))
	sp.SetEndTimestamp(at(210))
	sp.Attributes().PutStr("rpc.method", "Charge")
	sp.Status().SetCode(ptrace.StatusCodeError)
	ev = sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(at(200))
	ev.Attributes().PutStr("exception.message", "card declined")
	return frontend, payment
}

func healthTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	rs.Resource().Attributes().PutStr("host.name", "web-1")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(healthID)
	sp.SetSpanID(sid(9))
	sp.SetName("GET /health")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(at(1000))
	sp.SetEndTimestamp(at(1002))
	sp.Status().SetCode(ptrace.StatusCodeOk)
	return td
}

// jaegerServer stores the two traces in a fresh index and serves the Jaeger API.
func jaegerServer(t *testing.T) *httptest.Server {
	t.Helper()
	ix, err := traceindex.Open(t.TempDir(), &traceindex.Options{NoSync: true, Now: func() time.Time { return jt0 }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	fe, pay := checkoutTrace()
	for _, td := range []ptrace.Traces{fe, healthTrace(), pay} {
		if rej, why, err := ix.WriteTraces(context.Background(), td); err != nil || rej != 0 {
			t.Fatalf("write: %d %q %v", rej, why, err)
		}
	}
	mux := http.NewServeMux()
	NewJaeger(ix, JaegerOptions{Now: func() time.Time { return jt0 }, Logger: slog.New(slog.DiscardHandler)}).Register(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, b
}

// golden compares an answer, indented, with testdata/jaeger/<name>.json.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", name, err, body)
	}
	path := filepath.Join("testdata", "jaeger", name+".json")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("%s differs from %s:\n%s", name, path, buf.String())
	}
}

func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// TestJaegerGrafanaFlow drives the API the way Grafana's Jaeger data source does:
// the service list, a service's operations, a search, then one trace.
func TestJaegerGrafanaFlow(t *testing.T) {
	srv := jaegerServer(t)
	code, b := get(t, srv, "/api/services")
	if code != 200 {
		t.Fatalf("services: %d %s", code, b)
	}
	golden(t, "services", b)

	code, b = get(t, srv, "/api/services/frontend/operations")
	if code != 200 {
		t.Fatalf("operations: %d %s", code, b)
	}
	golden(t, "service_operations", b)

	code, b = get(t, srv, "/api/operations?service=frontend&spanKind=server")
	if code != 200 {
		t.Fatalf("operations: %d %s", code, b)
	}
	golden(t, "operations_server", b)

	// Grafana's search form: service, operation, tags (logfmt turned into JSON),
	// durations, the time picker's range in µs and a limit.
	q := url.Values{
		"service":     {"frontend"},
		"operation":   {"GET /checkout"},
		"tags":        {`{"http.route":"/checkout"}`},
		"minDuration": {"100ms"},
		"maxDuration": {"1s"},
		"start":       {micros(jt0.Add(-time.Hour))},
		"end":         {micros(jt0)},
		"limit":       {"20"},
		"lookback":    {"custom"},
	}
	code, b = get(t, srv, "/api/traces?"+q.Encode())
	if code != 200 {
		t.Fatalf("search: %d %s", code, b)
	}
	golden(t, "search", b)
	var res struct {
		Data []JaegerTrace `json:"data"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Data) != 1 {
		t.Fatalf("search found %d traces, want 1: %v", len(res.Data), err)
	}
	id := res.Data[0].TraceID
	if id != "4bf92f3577b34da6a3ce929d0e0e4736" || len(res.Data[0].Spans) != 3 {
		t.Errorf("search result: trace %s with %d spans, want the checkout trace with 3", id, len(res.Data[0].Spans))
	}

	code, b = get(t, srv, "/api/traces/"+id)
	if code != 200 {
		t.Fatalf("trace: %d %s", code, b)
	}
	golden(t, "trace", b)

	code, b = get(t, srv, "/api/dependencies?endTs="+strconv.FormatInt(jt0.UnixMilli(), 10)+"&lookback=3600000")
	if code != 200 {
		t.Fatalf("dependencies: %d %s", code, b)
	}
	golden(t, "dependencies", b)
}

func TestJaegerSearchFilters(t *testing.T) {
	srv := jaegerServer(t)
	start, end := micros(jt0.Add(-time.Hour)), micros(jt0)
	for _, c := range []struct {
		query string
		want  []string // trace ids, newest first
	}{
		{"service=frontend", []string{"0000000000000042", "4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"service=payment", []string{"4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"service=frontend&operation=GET+%2Fhealth", []string{"0000000000000042"}},
		{"service=frontend&minDuration=100ms", []string{"4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"service=frontend&maxDuration=10ms", []string{"0000000000000042"}},
		{"service=frontend&tags=" + url.QueryEscape(`{"error":"true"}`), []string{"4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"service=frontend&tag=http.response.status_code:500", []string{"4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"service=frontend&tags=" + url.QueryEscape(`{"host.name":"web-2"}`), nil},
		{"service=frontend&limit=1", []string{"0000000000000042"}},
		{"service=nobody", nil},
		{"traceID=42&traceID=4bf92f3577b34da6a3ce929d0e0e4736", []string{"0000000000000042", "4bf92f3577b34da6a3ce929d0e0e4736"}},
	} {
		path := "/api/traces?" + c.query
		if !strings.Contains(c.query, "traceID") {
			path += "&start=" + start + "&end=" + end
		}
		code, b := get(t, srv, path)
		var res JaegerResponse
		var data struct {
			Data []JaegerTrace `json:"data"`
		}
		if code != 200 || json.Unmarshal(b, &res) != nil || json.Unmarshal(b, &data) != nil || res.Errors != nil {
			t.Errorf("%s: %d %s", c.query, code, b)
			continue
		}
		var got []string
		for _, tr := range data.Data {
			got = append(got, tr.TraceID)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: traces %v, want %v", c.query, got, c.want)
		}
	}
	// Out of the time range: nothing.
	code, b := get(t, srv, "/api/traces?service=frontend&start="+micros(jt0.Add(-time.Hour))+"&end="+micros(jt0.Add(-30*time.Minute)))
	if code != 200 || !strings.Contains(string(b), `"data":[]`) {
		t.Errorf("search outside the range: %d %s", code, b)
	}
}

func TestJaegerErrors(t *testing.T) {
	srv := jaegerServer(t)
	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{"/api/traces", 400, "parameter 'service' is required"},
		{"/api/traces?service=frontend&start=yesterday", 400, "unable to parse param 'start'"},
		{"/api/traces?service=frontend&minDuration=fast", 400, "unable to parse param 'minDuration'"},
		{"/api/traces?service=frontend&minDuration=2s&maxDuration=1s", 400, "'maxDuration' should be greater than 'minDuration'"},
		{"/api/traces?service=frontend&tags=%7Bnot-json", 400, "malformed 'tags' parameter"},
		{"/api/traces?service=frontend&limit=-3", 400, "unable to parse param 'limit'"},
		{"/api/traces/not-hex", 400, ""},
		{"/api/traces/0123456789abcdef0123456789abcdef0", 400, ""},
		{"/api/traces/00000000000000000000000000000001", 404, "trace not found"},
		{"/api/v1/traces/zz", 400, ""},
		{"/api/v1/traces/1", 404, "trace not found"},
		{"/api/operations", 400, "parameter 'service' is required"},
		{"/api/operations?service=frontend&spanKind=sideways", 400, "unsupported SpanKind"},
		{"/api/dependencies?endTs=noon", 400, "unable to parse param 'endTs'"},
		{"/api/dependencies?lookback=-1", 400, "unable to parse param 'lookback'"},
	} {
		code, b := get(t, srv, c.path)
		var res struct {
			Data   any           `json:"data"`
			Total  *int          `json:"total"`
			Limit  *int          `json:"limit"`
			Offset *int          `json:"offset"`
			Errors []JaegerError `json:"errors"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			t.Errorf("%s: not JSON: %s", c.path, b)
			continue
		}
		if code != c.code || res.Data != nil || res.Total == nil || *res.Total != 0 || res.Limit == nil || res.Offset == nil ||
			len(res.Errors) != 1 || res.Errors[0].Code != c.code || !strings.Contains(res.Errors[0].Msg, c.msg) || res.Errors[0].Msg == "" {
			t.Errorf("%s: %d %s, want %d with %q in Jaeger's error envelope", c.path, code, b, c.code, c.msg)
		}
	}
	// The documented shape, byte for byte.
	_, b := get(t, srv, "/api/traces")
	if want := `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"parameter 'service' is required"}]}`; strings.TrimSpace(string(b)) != want {
		t.Errorf("error envelope = %s, want %s", b, want)
	}
}

// The OTLP JSON form of a trace decodes back into the stored spans.
func TestOTLPTraceJSON(t *testing.T) {
	srv := jaegerServer(t)
	code, b := get(t, srv, "/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(b)
	if err != nil {
		t.Fatal(err)
	}
	if td.SpanCount() != 3 {
		t.Errorf("spans = %d, want 3", td.SpanCount())
	}
	names := map[string]bool{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sv, _ := rss.At(i).Resource().Attributes().Get("service.name")
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			for k := 0; k < sss.At(j).Spans().Len(); k++ {
				names[sv.Str()+"/"+sss.At(j).Spans().At(k).Name()] = true
			}
		}
	}
	for _, n := range []string{"frontend/GET /checkout", "frontend/POST /pay", "payment/Charge"} {
		if !names[n] {
			t.Errorf("span %s missing: %v", n, names)
		}
	}
}

func TestJaegerTraceIDForm(t *testing.T) {
	for _, c := range []struct {
		id   pcommon.TraceID
		want string
	}{
		{healthID, "0000000000000042"},
		{checkoutID, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{pcommon.TraceID{7: 1, 15: 2}, "00000000000000010000000000000002"},
	} {
		if got := JaegerTraceID(c.id); got != c.want {
			t.Errorf("JaegerTraceID(%v) = %s, want %s", c.id, got, c.want)
		}
	}
}
