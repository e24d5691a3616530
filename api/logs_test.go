package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"

	"outpost/logindex"
)

// lnow is the "now" of the Logs API tests: the records lie in the hour before it.
var lnow = time.Now().UTC().Truncate(time.Minute)

// logSpec is one generated record.
type logSpec struct {
	ago     time.Duration
	service string
	sev     plog.SeverityNumber
	body    string
	attrs   map[string]string
	traceID pcommon.TraceID
}

func logsOf(specs []logSpec) plog.Logs {
	ld := plog.NewLogs()
	for _, s := range specs {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", s.service)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(lnow.Add(-s.ago)))
		lr.SetSeverityNumber(s.sev)
		lr.Body().SetStr(s.body)
		lr.SetTraceID(s.traceID)
		for k, v := range s.attrs {
			lr.Attributes().PutStr(k, v)
		}
	}
	return ld
}

// logsFixture is 60 records, one a minute over the last hour, plus one two
// hours ago: services checkout (every third) and cart; severities cycle
// INFO, WARN, ERROR; bodies say "connection refused" on every fifth.
func logsFixture() []logSpec {
	var out []logSpec
	sevs := []plog.SeverityNumber{plog.SeverityNumberInfo, plog.SeverityNumberWarn, plog.SeverityNumberError}
	for i := range 60 {
		s := logSpec{
			ago:     time.Duration(i)*time.Minute + 30*time.Second,
			service: "cart",
			sev:     sevs[i%3],
			body:    fmt.Sprintf("request %d served from 10.0.0.%d", i, i%4),
			attrs:   map[string]string{"user_id": strconv.Itoa(i % 7), "http.method": "GET"},
		}
		if i%3 == 0 {
			s.service = "checkout"
		}
		if i%5 == 0 {
			s.body = fmt.Sprintf("dial tcp 10.1.2.3:5432: connection refused (attempt %d)", i)
		}
		if i == 7 {
			s.traceID = pcommon.TraceID{0x4b, 0xf9, 15: 7}
		}
		out = append(out, s)
	}
	out = append(out, logSpec{ago: 2 * time.Hour, service: "checkout", sev: plog.SeverityNumberFatal, body: "old connection refused"})
	return out
}

// logsServer serves the Logs API over a fresh log index holding logsFixture.
func logsServer(t *testing.T, opts LogsOptions) (*httptest.Server, *Logs, *logindex.Index) {
	t.Helper()
	ix, err := logindex.Open(t.TempDir(), &logindex.Options{TailBuffer: 64})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := ix.WriteLogs(ctx, logsOf(logsFixture())); err != nil {
		t.Fatal(err)
	}
	if err := ix.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return lnow }
	}
	l := NewLogs(ix, opts)
	mux := http.NewServeMux()
	l.Register(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		l.Close()
		srv.Close()
		if err := ix.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv, l, ix
}

type searchDoc struct {
	Total      uint64            `json:"total"`
	Records    []logindex.Record `json:"records"`
	NextCursor string            `json:"next_cursor"`
	TookMs     *int64            `json:"took_ms"`
}

func searchLogs(t *testing.T, srv *httptest.Server, params url.Values) searchDoc {
	t.Helper()
	code, body := get(t, srv, "/api/v1/logs?"+params.Encode())
	if code != 200 {
		t.Fatalf("search %v: %d %s", params, code, body)
	}
	var d searchDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("search %v: %v: %s", params, err, body)
	}
	if d.TookMs == nil {
		t.Errorf("search %v: no took_ms in %s", params, body)
	}
	return d
}

func TestLogsSearch(t *testing.T) {
	srv, _, _ := logsServer(t, LogsOptions{})
	unix := func(d time.Duration) string { return strconv.FormatInt(lnow.Add(-d).Unix(), 10) }
	for _, c := range []struct {
		name   string
		params url.Values
		want   uint64
	}{
		{"default range is the last hour", url.Values{}, 60},
		{"empty query with a wide range", url.Values{"start": {unix(3 * time.Hour)}}, 61},
		{"words are ANDed", url.Values{"query": {"connection refused"}}, 12},
		{"phrase", url.Values{"query": {`"connection refused"`}}, 12},
		{"service field", url.Values{"query": {"service:checkout"}}, 20},
		{"AND of field, severity and phrase", url.Values{"query": {`service:cart severity>=WARN "connection refused"`}}, 8},
		{"severity>= by number", url.Values{"query": {"severity>=ERROR"}}, 20},
		{"attribute", url.Values{"query": {"user_id:3"}}, 9},
		{"OR and exclusion", url.Values{"query": {"(user_id:3 OR user_id:4) -service:cart"}}, 5},
		{"RFC 3339 range", url.Values{"start": {lnow.Add(-10 * time.Minute).Format(time.RFC3339)}, "end": {lnow.Format(time.RFC3339)}}, 10},
		{"Unix seconds range", url.Values{"start": {unix(10 * time.Minute)}, "end": {unix(5 * time.Minute)}}, 5},
		{"old record only with its range", url.Values{"query": {"old"}, "start": {unix(3 * time.Hour)}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := searchLogs(t, srv, c.params)
			if d.Total != c.want {
				t.Errorf("total = %d, want %d", d.Total, c.want)
			}
			if want := min(int(c.want), 100); len(d.Records) != want {
				t.Errorf("records = %d, want %d", len(d.Records), want)
			}
			for i := 1; i < len(d.Records); i++ {
				if d.Records[i].Time.After(d.Records[i-1].Time) {
					t.Errorf("records not newest first at %d", i)
				}
			}
		})
	}
	// A record comes back whole: service, severity, attributes, trace id.
	d := searchLogs(t, srv, url.Values{"query": {"request 7"}})
	if len(d.Records) != 1 {
		t.Fatalf("request 7: %d records", len(d.Records))
	}
	r := d.Records[0]
	if r.Service != "cart" || r.Severity != "WARN" || r.TraceID != "4bf9000000000000000000000000000007" && r.TraceID != "4bf90000000000000000000000000007" || len(r.Attributes) != 2 {
		t.Errorf("record = %+v", r)
	}
}

func TestLogsPagination(t *testing.T) {
	srv, _, _ := logsServer(t, LogsOptions{})
	seen := map[string]bool{}
	params := url.Values{"limit": {"7"}, "query": {"-user_id:0"}}
	pages := 0
	var last time.Time
	for {
		d := searchLogs(t, srv, params)
		pages++
		if d.Total != 51 {
			t.Fatalf("page %d: total = %d, want 51", pages, d.Total)
		}
		for _, r := range d.Records {
			if seen[r.ID] {
				t.Fatalf("record %s twice", r.ID)
			}
			if !last.IsZero() && r.Time.After(last) {
				t.Fatalf("page %d goes back in time", pages)
			}
			seen[r.ID], last = true, r.Time
		}
		if d.NextCursor == "" {
			break
		}
		params.Set("cursor", d.NextCursor)
		if pages > 20 {
			t.Fatal("cursor never ends")
		}
	}
	if len(seen) != 51 || pages != 8 {
		t.Errorf("%d records in %d pages, want 51 in 8", len(seen), pages)
	}
}

func TestLogsErrors(t *testing.T) {
	srv, _, _ := logsServer(t, LogsOptions{})
	for _, c := range []struct {
		path, want string
		code       int
	}{
		{"/api/v1/logs?query=" + url.QueryEscape(`"unclosed`), "cannot parse query", 400},
		{"/api/v1/logs?query=" + url.QueryEscape("(a OR b"), "cannot parse query", 400},
		{"/api/v1/logs?query=" + url.QueryEscape("severity>=LOUD"), "cannot parse query", 400},
		{"/api/v1/logs?cursor=garbage", "bad cursor", 400},
		{"/api/v1/logs?start=yesterday", "invalid start", 400},
		{"/api/v1/logs?end=1e99", "invalid end", 400},
		{"/api/v1/logs?start=2000&end=1000", "end must be after start", 400},
		{"/api/v1/logs?limit=-1", "invalid limit", 400},
		{"/api/v1/logs/histogram?step=fortnight", "invalid step", 400},
		{"/api/v1/logs/histogram?query=" + url.QueryEscape("a)"), "cannot parse query", 400},
		{"/api/v1/logs/facets?query=" + url.QueryEscape("/[/"), "cannot parse query", 400},
		{"/api/v1/logs/facets?size=x", "invalid size", 400},
		{"/api/v1/logs/tail?query=" + url.QueryEscape(`"x`), "cannot parse query", 400},
		{"/api/v1/logs/nosuchid", "not found", 404},
	} {
		code, body := get(t, srv, c.path)
		var e LogsError
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s: not JSON: %s", c.path, body)
			continue
		}
		if code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %q, want %d with %q", c.path, code, e.Error, c.code, c.want)
		}
	}
}

func TestLogsRecordByID(t *testing.T) {
	srv, _, _ := logsServer(t, LogsOptions{})
	d := searchLogs(t, srv, url.Values{"query": {"request 8"}})
	if len(d.Records) != 1 {
		t.Fatalf("request 8: %d records", len(d.Records))
	}
	code, body := get(t, srv, "/api/v1/logs/"+d.Records[0].ID)
	var r logindex.Record
	if code != 200 || json.Unmarshal(body, &r) != nil {
		t.Fatalf("get: %d %s", code, body)
	}
	if r.ID != d.Records[0].ID || r.Body != d.Records[0].Body {
		t.Errorf("get = %+v, want %+v", r, d.Records[0])
	}
}

func TestLogsHistogram(t *testing.T) {
	srv, _, _ := logsServer(t, LogsOptions{})
	code, body := get(t, srv, "/api/v1/logs/histogram?step=10m&query=service:checkout")
	if code != 200 {
		t.Fatalf("histogram: %d %s", code, body)
	}
	var h struct {
		StepSeconds float64  `json:"step_seconds"`
		Levels      []string `json:"levels"`
		Total       uint64   `json:"total"`
		Buckets     []struct {
			Start  time.Time         `json:"start"`
			Total  uint64            `json:"total"`
			Counts map[string]uint64 `json:"counts"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	// checkout is every third record, i = 0, 3, 6, ...: all INFO (i%3 == 0).
	if h.StepSeconds != 600 || h.Total != 20 || strings.Join(h.Levels, ",") != "INFO" {
		t.Errorf("histogram = step %v total %d levels %v", h.StepSeconds, h.Total, h.Levels)
	}
	var sum uint64
	for _, b := range h.Buckets {
		if b.Counts["INFO"] != b.Total {
			t.Errorf("bucket %v: %v of %d", b.Start, b.Counts, b.Total)
		}
		sum += b.Total
	}
	if sum != 20 {
		t.Errorf("buckets sum to %d, want 20", sum)
	}
	// Split by severity: each level has a third of the hour.
	code, body = get(t, srv, "/api/v1/logs/histogram")
	if code != 200 {
		t.Fatalf("histogram: %d %s", code, body)
	}
	h.Buckets = nil
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	byLevel := map[string]uint64{}
	for _, b := range h.Buckets {
		for l, n := range b.Counts {
			byLevel[l] += n
		}
	}
	if h.Total != 60 || byLevel["INFO"] != 20 || byLevel["WARN"] != 20 || byLevel["ERROR"] != 20 {
		t.Errorf("total %d, by level %v", h.Total, byLevel)
	}
}

func TestLogsFacets(t *testing.T) {
	srv, _, _ := logsServer(t, LogsOptions{})
	code, body := get(t, srv, "/api/v1/logs/facets?query="+url.QueryEscape("severity>=WARN"))
	if code != 200 {
		t.Fatalf("facets: %d %s", code, body)
	}
	var f logindex.Facets
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, v := range f.Service {
		got["service="+v.Value] = v.Count
	}
	for _, v := range f.Severity {
		got["severity="+v.Value] = v.Count
	}
	for _, a := range f.Attributes {
		got["key="+a.Key] = a.Count
	}
	// WARN and ERROR are i%3 == 1 and 2: all cart.
	want := map[string]uint64{"service=cart": 40, "severity=WARN": 20, "severity=ERROR": 20, "key=user_id": 40, "key=http.method": 40}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if f.Total != 40 {
		t.Errorf("total = %d, want 40", f.Total)
	}
}

// sseReader reads server-sent events: it returns each event's lines, comments
// included, one event at a time.
type sseReader struct{ sc *bufio.Scanner }

func (s *sseReader) next() ([]string, error) {
	var ev []string
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" {
			if len(ev) > 0 {
				return ev, nil
			}
			continue
		}
		ev = append(ev, line)
	}
	if err := s.sc.Err(); err != nil {
		return ev, err
	}
	return ev, fmt.Errorf("stream ended")
}

func openTail(t *testing.T, srv *httptest.Server, query string) (*http.Response, *sseReader) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/logs/tail?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sr := &sseReader{bufio.NewScanner(resp.Body)}
	ev, err := sr.next()
	if err != nil || !strings.Contains(strings.Join(ev, "\n"), ": subscribed") {
		t.Fatalf("first event = %q, %v", ev, err)
	}
	return resp, sr
}

// noLeaks checks, after the test's cleanups, that no goroutine it started is
// left. Call it before opening anything.
func noLeaks(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker")}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

func TestLogsTail(t *testing.T) {
	noLeaks(t)
	srv, l, ix := logsServer(t, LogsOptions{Heartbeat: 50 * time.Millisecond})
	resp, sr := openTail(t, srv, "service:checkout severity>=ERROR")
	defer resp.Body.Close()
	if n := l.OpenTails(); n != 1 {
		t.Errorf("open tails = %d, want 1", n)
	}

	// One matching record among others; only it arrives.
	ctx := context.Background()
	if _, _, err := ix.WriteLogs(ctx, logsOf([]logSpec{
		{service: "cart", sev: plog.SeverityNumberError, body: "cart failed"},
		{service: "checkout", sev: plog.SeverityNumberInfo, body: "checkout fine"},
		{service: "checkout", sev: plog.SeverityNumberError, body: "checkout failed", attrs: map[string]string{"order": "42"}},
	})); err != nil {
		t.Fatal(err)
	}
	beats := 0
	for {
		ev, err := sr.next()
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		if ev[0] == ": heartbeat" {
			beats++
			continue
		}
		if len(ev) != 2 || !strings.HasPrefix(ev[0], "id: ") || !strings.HasPrefix(ev[1], "data: ") {
			t.Fatalf("event = %q", ev)
		}
		var r logindex.Record
		if err := json.Unmarshal([]byte(strings.TrimPrefix(ev[1], "data: ")), &r); err != nil {
			t.Fatal(err)
		}
		if r.Body != "checkout failed" || r.ID != strings.TrimPrefix(ev[0], "id: ") || len(r.Attributes) != 1 {
			t.Fatalf("record = %+v", r)
		}
		break
	}
	// Heartbeats keep an idle stream alive.
	for beats < 2 {
		ev, err := sr.next()
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		if ev[0] == ": heartbeat" {
			beats++
		} else {
			t.Fatalf("unexpected event %q", ev)
		}
	}
}

func TestLogsTailEndsOnShutdown(t *testing.T) {
	noLeaks(t)
	srv, l, _ := logsServer(t, LogsOptions{})
	resp, sr := openTail(t, srv, "")
	defer resp.Body.Close()
	// http.Server.Shutdown waits for handlers; Close, run on shutdown, ends the
	// tail so that it can finish.
	srv.Config.RegisterOnShutdown(l.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Config.Shutdown(ctx) }()
	ev, err := sr.next()
	if err != nil || len(ev) != 2 || ev[0] != "event: end" || !strings.Contains(ev[1], "shutting down") {
		t.Fatalf("last event = %q, %v", ev, err)
	}
	if _, err := sr.next(); err == nil {
		t.Fatal("stream goes on after the end event")
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	// New tails are refused once closed.
	w := httptest.NewRecorder()
	l.tail(w, httptest.NewRequest("GET", "/api/v1/logs/tail", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("tail after Close: %d %s", w.Code, w.Body)
	}
}

func TestLogsTailEndsWhenClientLeaves(t *testing.T) {
	noLeaks(t)
	srv, l, _ := logsServer(t, LogsOptions{})
	resp, _ := openTail(t, srv, "")
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for l.OpenTails() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tail handler is still running after its client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
