package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"outpost/tsdb"
)

// openDB opens a fresh TSDB in t.TempDir() without a background goroutine.
func openDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{Retention: -1, OutOfOrderWindow: 1 << 62, MaintenanceInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// base is the time of the first test sample: 2026-01-01T00:00:00Z.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(d time.Duration) int64 { return base.Add(d).UnixMilli() }

// seed writes, every 15 s for 10 minutes: http_requests_total for 3 instances
// (counters going up by 1, 2, 3), a gauge with exact-float edge values, and a
// native histogram.
func seed(t testing.TB, db *tsdb.DB) {
	t.Helper()
	app := db.Appender(context.Background())
	for i := 0; i <= 40; i++ {
		ts := ms(time.Duration(i) * 15 * time.Second)
		for inst := 1; inst <= 3; inst++ {
			ls := labels.FromStrings("__name__", "http_requests_total", "job", "shop", "instance", fmt.Sprintf("host-%d", inst))
			if _, err := app.Append(0, ls, ts, float64(i*inst)); err != nil {
				t.Fatal(err)
			}
		}
		h := &histogram.FloatHistogram{
			Schema: 0, Count: float64(10 * i), Sum: float64(25 * i), ZeroThreshold: 1e-128,
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
			PositiveBuckets: []float64{float64(2 * i), float64(5 * i), float64(3 * i)},
		}
		if _, err := app.AppendHistogram(0, labels.FromStrings("__name__", "latency_seconds", "job", "shop"), ts, nil, h); err != nil {
			t.Fatal(err)
		}
	}
	a, b := 0.1, 0.2
	for i, v := range []float64{math.NaN(), math.Inf(1), 1e300, a + b} {
		ls := labels.FromStrings("__name__", "edge", "case", fmt.Sprint(i))
		if _, err := app.Append(0, ls, ms(0), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

type promEnv struct {
	t   *testing.T
	db  *tsdb.DB
	srv *httptest.Server
	h   http.Handler
}

func newProm(t *testing.T, opts PromOptions) *promEnv {
	t.Helper()
	db := openDB(t)
	seed(t, db)
	if opts.Now == nil {
		opts.Now = func() time.Time { return base.Add(10 * time.Minute) }
	}
	mux := http.NewServeMux()
	NewPrometheus(db, opts).Register(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &promEnv{t: t, db: db, srv: srv, h: mux}
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// call sends path?params with GET, or as a form-encoded POST body when post is set.
func (e *promEnv) call(post bool, path string, params url.Values) (int, envelope, string) {
	e.t.Helper()
	var resp *http.Response
	var err error
	if post {
		resp, err = http.PostForm(e.srv.URL+path, params)
	} else {
		resp, err = http.Get(e.srv.URL + path + "?" + params.Encode())
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s: Content-Type %q", path, ct)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		e.t.Fatalf("%s: %v: %s", path, err, b)
	}
	return resp.StatusCode, env, string(b)
}

func TestPromInstantQueryShapes(t *testing.T) {
	e := newProm(t, PromOptions{})
	for _, post := range []bool{false, true} {
		for _, c := range []struct {
			query, time string
			want        string // the exact data member
		}{
			{`http_requests_total{instance="host-2"}`, "1767225600",
				`{"resultType":"vector","result":[{"metric":{"__name__":"http_requests_total","instance":"host-2","job":"shop"},"value":[1767225600,"0"]}]}`},
			{`sum by (job) (rate(http_requests_total[5m]))`, "2026-01-01T00:10:00Z",
				`{"resultType":"vector","result":[{"metric":{"job":"shop"},"value":[1767226200,"0.39999999999999997"]}]}`},
			{`edge`, "1767225600.5",
				`{"resultType":"vector","result":[{"metric":{"__name__":"edge","case":"0"},"value":[1767225600.500,"NaN"]},{"metric":{"__name__":"edge","case":"1"},"value":[1767225600.500,"+Inf"]},{"metric":{"__name__":"edge","case":"2"},"value":[1767225600.500,"1e+300"]},{"metric":{"__name__":"edge","case":"3"},"value":[1767225600.500,"0.30000000000000004"]}]}`},
			{`1+1`, "1767225600.123", `{"resultType":"scalar","result":[1767225600.123,"2"]}`},
			{`"hi"`, "1767225600", `{"resultType":"string","result":[1767225600,"hi"]}`},
			{`latency_seconds`, "1767225615",
				`{"resultType":"vector","result":[{"metric":{"__name__":"latency_seconds","job":"shop"},"histogram":[1767225615,{"count":"10","sum":"25","buckets":[[0,"0.5","1","2"],[0,"1","2","5"],[0,"2","4","3"]]}]}]}`},
			{`histogram_quantile(0.5, latency_seconds)`, "1767225615",
				`{"resultType":"vector","result":[{"metric":{"job":"shop"},"value":[1767225615,"1.515716566510398"]}]}`},
		} {
			code, env, raw := e.call(post, "/api/v1/query", url.Values{"query": {c.query}, "time": {c.time}})
			if code != 200 || env.Status != "success" || string(env.Data) != c.want {
				t.Errorf("post=%v %s:\n got %d %s\nwant data %s", post, c.query, code, raw, c.want)
			}
		}
	}
	// Without a time, the query runs at now.
	_, env, _ := e.call(false, "/api/v1/query", url.Values{"query": {"time()"}})
	if want := `{"resultType":"scalar","result":[1767226200,"1767226200"]}`; string(env.Data) != want {
		t.Errorf("time(): %s, want %s", env.Data, want)
	}
}

func TestPromRangeQuery(t *testing.T) {
	e := newProm(t, PromOptions{})
	for _, post := range []bool{false, true} {
		code, env, raw := e.call(post, "/api/v1/query_range", url.Values{
			"query": {`http_requests_total{instance="host-3"}`}, "start": {"1767225600"}, "end": {"2026-01-01T00:01:00Z"}, "step": {"30s"},
		})
		want := `{"resultType":"matrix","result":[{"metric":{"__name__":"http_requests_total","instance":"host-3","job":"shop"},"values":[[1767225600,"0"],[1767225630,"6"],[1767225660,"12"]]}]}`
		if code != 200 || string(env.Data) != want {
			t.Errorf("post=%v: %d %s\nwant data %s", post, code, raw, want)
		}
	}
	_, env, raw := e.call(false, "/api/v1/query_range", url.Values{
		"query": {`latency_seconds`}, "start": {"1767225615"}, "end": {"1767225630"}, "step": {"15"},
	})
	var m []struct {
		Metric     map[string]string `json:"metric"`
		Values     [][2]any          `json:"values"`
		Histograms [][2]any          `json:"histograms"`
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	json.Unmarshal(env.Data, &d)
	if err := json.Unmarshal(d.Result, &m); err != nil || d.ResultType != "matrix" || len(m) != 1 || len(m[0].Histograms) != 2 || m[0].Values != nil {
		t.Errorf("histogram range query: %s", raw)
	}
	// limit truncates the series and warns.
	_, env, raw = e.call(false, "/api/v1/query_range", url.Values{
		"query": {`http_requests_total`}, "start": {"1767225600"}, "end": {"1767225660"}, "step": {"60"}, "limit": {"2"},
	})
	json.Unmarshal(env.Data, &d)
	json.Unmarshal(d.Result, &m)
	if len(m) != 2 || len(env.Warnings) != 1 || !strings.Contains(env.Warnings[0], "truncated") {
		t.Errorf("limit=2: %s", raw)
	}
}

func TestPromErrors(t *testing.T) {
	e := newProm(t, PromOptions{MaxSamples: 100, MaxSeries: 4})
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	for _, c := range []struct {
		name, path string
		params     url.Values
		code       int
		typ, msg   string
	}{
		{"parse error", "/api/v1/query", q("query", "sum(("), 400, "bad_data", `invalid parameter "query"`},
		{"no query", "/api/v1/query", q(), 400, "bad_data", "no expression found"},
		{"bad time", "/api/v1/query", q("query", "1", "time", "yesterday"), 400, "bad_data", `cannot parse "yesterday" to a valid timestamp`},
		{"bad timeout", "/api/v1/query", q("query", "1", "timeout", "-1s"), 400, "bad_data", `invalid parameter "timeout"`},
		{"bad limit", "/api/v1/query", q("query", "1", "limit", "-3"), 400, "bad_data", "limit must be non-negative"},
		{"no start", "/api/v1/query_range", q("query", "1", "end", "1", "step", "1"), 400, "bad_data", `invalid parameter "start"`},
		{"end before start", "/api/v1/query_range", q("query", "1", "start", "10", "end", "1", "step", "1"), 400, "bad_data", "end timestamp must not be before start time"},
		{"zero step", "/api/v1/query_range", q("query", "1", "start", "1", "end", "2", "step", "0"), 400, "bad_data", "zero or negative query resolution step"},
		{"too many points", "/api/v1/query_range", q("query", "1", "start", "0", "end", "11001", "step", "1"), 400, "bad_data", "exceeded maximum resolution of 11000 points per timeseries"},
		{"many-to-many", "/api/v1/query", q("query", `edge{case=~"[01]"} + on(__name__) edge{case=~"[01]"}`, "time", "1767225600"), 422, "execution", "many-to-many matching not allowed"},
		{"max samples", "/api/v1/query_range", q("query", `http_requests_total{instance="host-1"}`, "start", "1767225600", "end", "1767226200", "step", "1"), 422, "execution", "too many samples into memory in query execution (the limit is 100 samples per query)"},
		{"max series", "/api/v1/query", q("query", `{__name__=~".+"}`, "time", "1767225600"), 422, "cost_limit", "too many series into memory in query execution (the limit is 4 series per query)"},
		{"max series over selectors", "/api/v1/query", q("query", `count(http_requests_total) + count(edge)`, "time", "1767225600"), 422, "cost_limit", "too many series into memory in query execution (the limit is 4 series per query)"},
		{"series without match", "/api/v1/series", q(), 400, "bad_data", "no match[] parameter provided"},
		{"empty matcher", "/api/v1/series", q("match[]", `{job=""}`), 400, "bad_data", "at least one non-empty matcher"},
		{"bad matcher", "/api/v1/labels", q("match[]", `{job=`), 400, "bad_data", "parse error"},
		{"bad label name", "/api/v1/label/%ff/values", q(), 400, "bad_data", `invalid label name: "\xff"`},
		{"metadata limit", "/api/v1/metadata", q("limit", "x"), 400, "bad_data", "limit must be a number"},
	} {
		for _, post := range []bool{false, true} {
			code, env, raw := e.call(post, c.path, c.params)
			if code != c.code || env.ErrorType != c.typ || !strings.Contains(env.Error, c.msg) {
				t.Errorf("%s (post=%v): got %d %s\nwant %d %q containing %q", c.name, post, code, raw, c.code, c.typ, c.msg)
			}
			if c.code != 200 && (env.Status != "error" || env.Data != nil) {
				t.Errorf("%s: envelope %s", c.name, raw)
			}
		}
	}
}

func TestPromTimeout(t *testing.T) {
	e := newProm(t, PromOptions{Timeout: time.Nanosecond})
	code, env, raw := e.call(false, "/api/v1/query_range", url.Values{
		"query": {`rate(http_requests_total[1m])`}, "start": {"1767225600"}, "end": {"1767226200"}, "step": {"1"},
	})
	if code != 503 || env.ErrorType != "timeout" || !strings.Contains(env.Error, "query timed out") || !strings.Contains(env.Error, "the limit is 1ns per query") {
		t.Errorf("timeout: %d %s", code, raw)
	}
}

func TestPromSeriesAndLabels(t *testing.T) {
	e := newProm(t, PromOptions{})
	for _, post := range []bool{false, true} {
		_, env, raw := e.call(post, "/api/v1/series", url.Values{"match[]": {`http_requests_total{instance=~"host-[12]"}`, `latency_seconds`}})
		want := `[{"__name__":"http_requests_total","instance":"host-1","job":"shop"},{"__name__":"http_requests_total","instance":"host-2","job":"shop"},{"__name__":"latency_seconds","job":"shop"}]`
		if string(env.Data) != want {
			t.Errorf("series: %s\nwant %s", raw, want)
		}
		_, env, raw = e.call(post, "/api/v1/labels", url.Values{})
		if want := `["__name__","case","instance","job"]`; string(env.Data) != want {
			t.Errorf("labels: %s\nwant %s", raw, want)
		}
		_, env, raw = e.call(post, "/api/v1/labels", url.Values{"match[]": {"latency_seconds"}})
		if want := `["__name__","job"]`; string(env.Data) != want {
			t.Errorf("labels of latency_seconds: %s\nwant %s", raw, want)
		}
		_, env, raw = e.call(post, "/api/v1/label/__name__/values", url.Values{})
		if want := `["edge","http_requests_total","latency_seconds"]`; string(env.Data) != want {
			t.Errorf("names: %s\nwant %s", raw, want)
		}
		_, env, raw = e.call(post, "/api/v1/label/instance/values", url.Values{"match[]": {`http_requests_total`}, "limit": {"2"}})
		if want := `["host-1","host-2"]`; string(env.Data) != want || len(env.Warnings) != 1 {
			t.Errorf("instances, limit 2: %s\nwant %s and a warning", raw, want)
		}
	}
	// No exemplars are stored: a valid request gets an empty list, a bad one an error.
	_, env, raw := e.call(false, "/api/v1/query_exemplars", url.Values{"query": {"http_requests_total"}, "start": {"0"}, "end": {"1767226200"}})
	if string(env.Data) != "[]" {
		t.Errorf("exemplars: %s", raw)
	}
	if code, env, raw := e.call(true, "/api/v1/query_exemplars", url.Values{"query": {"sum("}}); code != 400 || env.ErrorType != "bad_data" {
		t.Errorf("exemplars of a bad query: %s", raw)
	}
	// An escaped UTF-8 label name (U__ prefix) is unescaped.
	_, env, raw = e.call(false, "/api/v1/label/U__job/values", url.Values{})
	if want := `["shop"]`; string(env.Data) != want {
		t.Errorf("U__job: %s", raw)
	}
}

func TestPromMetadataAndBuildInfo(t *testing.T) {
	e := newProm(t, PromOptions{Version: "v9.9.9"})
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.depth")
	m.SetDescription("Items <waiting>")
	m.SetUnit("{item}")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(base))
	dp.SetIntValue(4)
	if _, _, err := e.db.WriteMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	_, env, raw := e.call(false, "/api/v1/metadata", url.Values{"metric": {"queue_depth"}})
	var got map[string][]tsdb.Metadata
	if err := json.Unmarshal(env.Data, &got); err != nil || len(got) != 1 || len(got["queue_depth"]) != 1 ||
		got["queue_depth"][0].Type != "gauge" || got["queue_depth"][0].Help != "Items <waiting>" {
		t.Errorf("metadata: %s", raw)
	}
	_, env, _ = e.call(true, "/api/v1/metadata", url.Values{"limit": {"0"}})
	if string(env.Data) != "{}" {
		t.Errorf("metadata limit=0: %s", env.Data)
	}
	_, env, raw = e.call(false, "/api/v1/status/buildinfo", nil)
	var bi map[string]string
	if json.Unmarshal(env.Data, &bi); bi["version"] != "v9.9.9" || !strings.HasPrefix(bi["goVersion"], "go") {
		t.Errorf("buildinfo: %s", raw)
	}
}

func TestPromAdminFlush(t *testing.T) {
	e := newProm(t, PromOptions{})
	if e.db.Stats().HeadSamples == 0 {
		t.Fatal("seed left the head empty")
	}
	for _, c := range []struct {
		remote string
		header string
		code   int
	}{
		{"192.0.2.7:5000", "", 403},
		{"127.0.0.1:5000", "X-Forwarded-For", 403},
		{"[::1]:5000", "", 200},
	} {
		req := httptest.NewRequest("POST", "/api/v1/admin/flush", nil)
		req.RemoteAddr = c.remote
		if c.header != "" {
			req.Header.Set(c.header, "198.51.100.1")
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("flush from %s %s: %d %s", c.remote, c.header, rec.Code, rec.Body)
		}
		if c.code == 403 && (!strings.Contains(rec.Body.String(), `"errorType":"forbidden"`) || e.db.Stats().HeadSamples == 0) {
			t.Errorf("refused flush: %s; head %d", rec.Body, e.db.Stats().HeadSamples)
		}
	}
	if st := e.db.Stats(); st.HeadSamples != 0 || st.Partitions == 0 {
		t.Errorf("after flush: %+v", st)
	}
	// The data reads the same from the partitions.
	_, env, raw := e.call(false, "/api/v1/query", url.Values{"query": {`edge{case="2"}`}, "time": {"1767225600"}})
	if !strings.Contains(string(env.Data), `"1e+300"`) {
		t.Errorf("after flush: %s", raw)
	}
	// GET is not allowed on the admin endpoint.
	resp, err := http.Get(e.srv.URL + "/api/v1/admin/flush")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET flush: %d", resp.StatusCode)
	}
}

func TestParseTimeAndDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1767225600", base, true},
		{"1767225600.1234", base.Add(123 * time.Millisecond), true},
		{"2026-01-01T00:00:00Z", base, true},
		{"2026-01-01T01:00:00+01:00", base, true},
		{"NaN", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := parseTime(c.in)
		if (err == nil) != c.ok || (c.ok && !got.Equal(c.want)) {
			t.Errorf("parseTime(%q) = %v, %v", c.in, got, err)
		}
	}
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"15", 15 * time.Second, true}, {"1.5", 1500 * time.Millisecond, true}, {"1m30s", 90 * time.Second, true}, {"1e30", 0, false}, {"x", 0, false}} {
		got, err := parseDuration(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseDuration(%q) = %v, %v", c.in, got, err)
		}
	}
}

// FuzzPromQuery sends arbitrary query strings and times to the query endpoints:
// every answer must be a well-formed envelope with a Prometheus status code, never
// a panic or a 500.
func FuzzPromQuery(f *testing.F) {
	for _, s := range []string{"up", "sum by (job) (rate(http_requests_total[5m]))", "sum((", `{__name__=~".+"}`,
		"histogram_quantile(0.9, latency_seconds)", "1/0", `label_replace(up, "a", "$1", "b", "(.*)")`, "x[5m:1s]", "@ 1", "\xff"} {
		f.Add(s, "1767225900", "60")
	}
	db, err := tsdb.Open(f.TempDir(), &tsdb.Options{Retention: -1, MaintenanceInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	seed(f, db)
	mux := http.NewServeMux()
	NewPrometheus(db, PromOptions{MaxSamples: 100_000, Timeout: 5 * time.Second}).Register(mux.Handle)
	f.Fuzz(func(t *testing.T, query, ts, step string) {
		for _, path := range []string{"/api/v1/query", "/api/v1/query_range"} {
			form := url.Values{"query": {query}, "time": {ts}, "start": {"1767225600"}, "end": {ts}, "step": {step}}
			req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			var env envelope
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatalf("%s %q: not JSON: %v: %s", path, query, err, rec.Body)
			}
			switch {
			case rec.Code == 200 && env.Status == "success":
			case (rec.Code == 400 || rec.Code == 422 || rec.Code == 503) && env.Status == "error" && env.Error != "":
			default:
				t.Fatalf("%s %q: %d %s", path, query, rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkPromQueryRange measures a range query over 1,000 series × 1 h at 15 s
// through the HTTP handler, encoding included: by the engine alone, through the
// cache when it holds nothing, and through the cache asked again.
func BenchmarkPromQueryRange(b *testing.B) {
	db, err := tsdb.Open(b.TempDir(), &tsdb.Options{Retention: -1, OutOfOrderWindow: 1 << 62, MaintenanceInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	app := db.Appender(context.Background())
	for s := 0; s < 1000; s++ {
		ls := labels.FromStrings("__name__", "node_cpu_seconds_total", "instance", fmt.Sprintf("host-%d", s/10), "cpu", fmt.Sprint(s%10))
		for i := 0; i < 240; i++ {
			if _, err := app.Append(0, ls, ms(time.Duration(i)*15*time.Second), float64(i*s)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	plain, cached := http.NewServeMux(), http.NewServeMux()
	NewPrometheus(db, PromOptions{CacheBytes: -1}).Register(plain.Handle)
	p := NewPrometheus(db, PromOptions{})
	p.Register(cached.Handle)
	for _, c := range []struct{ name, query string }{
		{"raw", "node_cpu_seconds_total"},
		{"sum_rate", "sum by (instance) (rate(node_cpu_seconds_total[5m]))"},
	} {
		form := url.Values{"query": {c.query}, "start": {"1767225600"}, "end": {"1767229200"}, "step": {"15"}}.Encode()
		// engine: without the cache; first: asked for the first time (split
		// across the cores); again: asked again (from the cache).
		for _, v := range []struct {
			name  string
			mux   *http.ServeMux
			empty bool
		}{{"engine", plain, false}, {"first", cached, true}, {"again", cached, false}} {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				for b.Loop() {
					if v.empty {
						p.cache.changed(math.MinInt64)
					}
					rec := httptest.NewRecorder()
					v.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/query_range?"+form, nil))
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}

// Queries beyond MaxConcurrent wait for a slot within their context, and every
// slot is given back.
func TestQueryConcurrencyGate(t *testing.T) {
	g := queryGate{make(chan struct{}, 1)}
	if _, err := g.Insert(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Insert(ctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second query with every slot taken: %v, want it to wait until its deadline", err)
	}
	g.Delete(0)
	if _, err := g.Insert(context.Background(), "c"); err != nil {
		t.Fatalf("after a slot was given back: %v", err)
	}

	e := newProm(t, PromOptions{MaxConcurrent: 1})
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = e.call(i%2 == 0, "/api/v1/query_range", url.Values{"query": {"rate(http_requests_total[5m])"}, "start": {"0"}, "end": {"600"}, "step": {"15"}})
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("query %d through one slot: %d", i, c)
		}
	}
}
