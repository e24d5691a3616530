package main

// End-to-end tests of logs: records sent with the OpenTelemetry SDK's log
// exporters are found through the Logs API, survive SIGKILL once acknowledged,
// stream through the live tail, and drive the Logs page.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
)

// shopLog is one record the SDK sends; sendShopLogs makes them from a pattern
// whose answers the tests compute independently.
type shopLog struct {
	service string
	sev     otellog.Severity
	body    string
	userID  int64
}

// shopLogs returns n records for service: every fourth says "connection
// refused", severities cycle INFO, WARN, ERROR, FATAL... by i%5, user ids i%6.
func shopLogs(service string, n int) []shopLog {
	sevs := []otellog.Severity{otellog.SeverityInfo, otellog.SeverityInfo, otellog.SeverityWarn, otellog.SeverityError, otellog.SeverityFatal}
	out := make([]shopLog, n)
	for i := range out {
		body := fmt.Sprintf("order %d shipped to warehouse", i)
		if i%4 == 0 {
			body = fmt.Sprintf("payment for order %d failed: dial tcp 10.9.8.7:443: connection refused", i)
		}
		out[i] = shopLog{service: service, sev: sevs[i%5], body: body, userID: int64(i % 6)}
	}
	return out
}

// sendShopLogs exports the records through the SDK over gRPC (service
// "shop-grpc") or HTTP ("shop-http") and returns them.
func sendShopLogs(t *testing.T, s *server, overGRPC bool, n int) []shopLog {
	t.Helper()
	ctx := context.Background()
	var exp sdklog.Exporter
	var err error
	name := "shop-http"
	if overGRPC {
		name = "shop-grpc"
		exp, err = otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.grpc), otlploggrpc.WithInsecure())
	} else {
		exp, err = otlploghttp.New(ctx, otlploghttp.WithEndpoint(s.otlpHTTP), otlploghttp.WithInsecure(), otlploghttp.WithCompression(otlploghttp.GzipCompression))
	}
	if err != nil {
		t.Fatal(err)
	}
	recs := shopLogs(name, n)
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)), sdklog.WithResource(res(name)))
	lg := lp.Logger("shop")
	for _, r := range recs {
		var rec otellog.Record
		rec.SetTimestamp(time.Now())
		rec.SetSeverity(r.sev)
		rec.SetSeverityText(r.sev.String())
		rec.SetBody(attribute.StringValue(r.body))
		rec.AddAttributes(attribute.Int64("user_id", r.userID), attribute.String("http.method", "POST"))
		lg.Emit(ctx, rec)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return recs
}

type logsDoc struct {
	Total   uint64 `json:"total"`
	Records []struct {
		ID, Service, Severity, Body string
		Attributes                  []struct{ Key, Value string }
	} `json:"records"`
	NextCursor string `json:"next_cursor"`
}

func searchLogsAPI(t *testing.T, s *server, params url.Values) logsDoc {
	t.Helper()
	code, b := s.get("/api/v1/logs?" + params.Encode())
	if code != 200 {
		t.Fatalf("search %v: %d %s", params, code, b)
	}
	var d logsDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("search %v: %v: %s", params, err, b)
	}
	return d
}

// waitTotal polls a search until its total is want (records are searchable
// shortly after they are acknowledged) and returns the last answer.
func waitTotal(t *testing.T, s *server, query string, want uint64) logsDoc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := searchLogsAPI(t, s, url.Values{"query": {query}, "limit": {"1000"}})
		if d.Total == want || time.Now().After(deadline) {
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLogsEndToEndWithSDKExporters(t *testing.T) {
	s := startServer(t, t.TempDir())
	all := append(sendShopLogs(t, s, true, 120), sendShopLogs(t, s, false, 120)...)

	count := func(f func(r shopLog) bool) uint64 {
		var n uint64
		for _, r := range all {
			if f(r) {
				n++
			}
		}
		return n
	}
	refused := func(r shopLog) bool { return strings.Contains(r.body, "connection refused") }
	for _, c := range []struct {
		query string
		want  uint64
	}{
		{"", 240},
		{"connection refused", count(refused)},
		{`"connection refused"`, count(refused)},
		{"refused shipped", 0}, // AND: no body has both words
		{"refused OR shipped", 240},
		{"10.9.8.7", count(refused)},
		{"service:shop-grpc", 120},
		{"severity>=ERROR", count(func(r shopLog) bool { return r.sev >= otellog.SeverityError })},
		{"severity:warn", count(func(r shopLog) bool { return r.sev == otellog.SeverityWarn })},
		{`service:shop-http severity>=ERROR "connection refused" user_id:2`, count(func(r shopLog) bool {
			return r.service == "shop-http" && r.sev >= otellog.SeverityError && refused(r) && r.userID == 2
		})},
		{"user_id:>=4 -service:shop-grpc", count(func(r shopLog) bool { return r.userID >= 4 && r.service != "shop-grpc" })},
		{"http.method:POST warehouse", count(func(r shopLog) bool { return strings.Contains(r.body, "warehouse") })},
	} {
		d := waitTotal(t, s, c.query, c.want)
		if d.Total != c.want || len(d.Records) != int(c.want) {
			t.Errorf("query %q: total %d, %d records, want %d", c.query, d.Total, len(d.Records), c.want)
		}
	}
	// The records come back whole.
	d := waitTotal(t, s, `service:shop-http severity:fatal user_id:0 "order 24 failed"`, 1)
	if len(d.Records) != 1 || d.Records[0].Severity != "FATAL" || !strings.Contains(d.Records[0].Body, "order 24 failed") || len(d.Records[0].Attributes) != 2 {
		t.Errorf("record = %+v", d.Records)
	}
	// Histogram and facets agree with the search.
	code, b := s.get("/api/v1/logs/histogram?query=" + url.QueryEscape("severity>=WARN"))
	var h struct {
		Total   uint64 `json:"total"`
		Buckets []struct {
			Counts map[string]uint64 `json:"counts"`
		} `json:"buckets"`
	}
	if code != 200 || json.Unmarshal(b, &h) != nil {
		t.Fatalf("histogram: %d %s", code, b)
	}
	byLevel := map[string]uint64{}
	for _, bk := range h.Buckets {
		for l, n := range bk.Counts {
			byLevel[l] += n
		}
	}
	if h.Total != 144 || byLevel["WARN"] != 48 || byLevel["ERROR"] != 48 || byLevel["FATAL"] != 48 || byLevel["INFO"] != 0 {
		t.Errorf("histogram total %d by level %v", h.Total, byLevel)
	}
	code, b = s.get("/api/v1/logs/facets?query=" + url.QueryEscape("connection refused"))
	if code != 200 || !bytes.Contains(b, []byte(`{"value":"shop-grpc","count":30}`)) || !bytes.Contains(b, []byte(`"key":"user_id"`)) {
		t.Errorf("facets: %d %s", code, b)
	}
	// A bad query is a 400 with the parser's message.
	code, b = s.get("/api/v1/logs?query=" + url.QueryEscape(`service:(a OR`))
	if code != 400 || !bytes.Contains(b, []byte(`"error":"cannot parse query`)) {
		t.Errorf("bad query: %d %s", code, b)
	}
	s.stop()
}

// postLogs sends one OTLP/HTTP protobuf request and reports whether it was
// acknowledged.
func postLogs(client *http.Client, s *server, ld plog.Logs) bool {
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		return false
	}
	resp, err := client.Post("http://"+s.otlpHTTP+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == 200
}

func crashBatch(batch, n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "crash-test")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(now)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr(fmt.Sprintf("crash record %d of batch %d", i, batch))
		lr.Attributes().PutInt("batch", int64(batch))
	}
	return ld
}

func TestLogsKillNineKeepsAcknowledgedRecords(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	const perBatch = 200
	var mu sync.Mutex
	var acked []int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for b := w; ; b += 3 {
				select {
				case <-stop:
					return
				default:
				}
				if postLogs(client, s, crashBatch(b, perBatch)) {
					mu.Lock()
					acked = append(acked, b)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill while requests are in flight.
	time.Sleep(1500 * time.Millisecond)
	s.kill()
	close(stop)
	wg.Wait()
	if len(acked) < 3 {
		t.Fatalf("only %d batches acknowledged before the kill", len(acked))
	}
	s = startServer(t, dir)
	// Every acknowledged batch is found whole. Requests in flight at the kill may
	// be found too, so the total is at least the acknowledged count.
	d := waitTotal(t, s, "service:crash-test", uint64(len(acked)*perBatch))
	if d.Total < uint64(len(acked)*perBatch) {
		t.Errorf("after restart %d records, want at least %d (%d acknowledged batches)", d.Total, len(acked)*perBatch, len(acked))
	}
	missing := 0
	for _, b := range acked {
		got := searchLogsAPI(t, s, url.Values{"query": {fmt.Sprintf("batch:%d", b)}, "limit": {"1"}}).Total
		if got != perBatch {
			missing++
			if missing < 5 {
				t.Errorf("batch %d: %d records after restart, want %d", b, got, perBatch)
			}
		}
	}
	t.Logf("%d batches (%d records) acknowledged before SIGKILL; %d found after restart", len(acked), len(acked)*perBatch, d.Total)
	s.stop()
}

func TestLogsTailReceivesNewRecords(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.http+"/api/v1/logs/tail?query="+url.QueryEscape("service:shop-grpc severity>=FATAL"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry:") || !sc.Scan() || sc.Text() != ": subscribed" {
		t.Fatalf("tail did not confirm the subscription: %q %v", sc.Text(), sc.Err())
	}
	sent := sendShopLogs(t, s, true, 10) // two FATAL records: i = 4 and 9
	var bodies []string
	for len(bodies) < 2 && sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var r struct{ Service, Severity, Body string }
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			t.Fatal(err)
		}
		if r.Service != "shop-grpc" || r.Severity != "FATAL" {
			t.Errorf("tail sent %+v", r)
		}
		bodies = append(bodies, r.Body)
	}
	if len(bodies) != 2 || bodies[0] != sent[4].body || bodies[1] != sent[9].body {
		t.Errorf("tail bodies = %q, err %v", bodies, sc.Err())
	}
	// A server shutdown ends the stream instead of waiting for it.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
		}
	}()
	s.stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("tail stream still open after the server stopped")
	}
}

// logsPageState is what the browser test reads off the Logs page.
type logsPageState struct {
	Total     string   `json:"total"`     // the search's total
	HistTotal string   `json:"histTotal"` // the histogram's total
	Services  []string `json:"services"`  // the services of the rows shown
	Facets    int      `json:"facets"`
}

const logsPageStateJS = `(function () {
  var st = document.querySelector('[data-testid="logs-status"]');
  var ch = document.querySelector('[data-testid="logs-histogram"]');
  return {
    total: st.getAttribute("data-total") || "",
    histTotal: ch.getAttribute("data-total") || "",
    services: Array.from(document.querySelectorAll('[data-testid="log-row"]')).map(function (r) { return r.getAttribute("data-service"); }),
    facets: document.querySelectorAll('[data-testid="facet-value"]').length
  };
})()`

func waitPage(ctx context.Context, ok func(logsPageState) bool) (logsPageState, error) {
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[logsPageState](logsPageStateJS))
		if err == nil && ok(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestBrowserLogsSearchFacetAndHistogram(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir())
	sendShopLogs(t, s, true, 60)
	sendShopLogs(t, s, false, 40)
	waitTotal(t, s, "", 100)
	base := "http://" + s.http
	input := chromedp.CSS(`[data-testid="logs-query"]`)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(base+"/logs"), chromedp.WaitVisible(input),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="logs-histogram"] canvas`))); err != nil {
		t.Fatalf("open /logs: %v\n%s", err, s.logs())
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := waitPage(wctx, func(p logsPageState) bool { return p.Total == "100" && p.HistTotal == "100" && len(p.Services) == 100 })
	if err != nil {
		t.Fatalf("first page = %+v: %v", st, err)
	}

	// Search: "connection refused" is every fourth record.
	if err := chromedp.Do(ctx, chromedp.SetValue(input, `"connection refused"`), chromedp.Click(chromedp.CSS(`[data-testid="logs-run"]`))); err != nil {
		t.Fatal(err)
	}
	st, err = waitPage(wctx, func(p logsPageState) bool { return p.Total == "25" && p.HistTotal == "25" && len(p.Services) == 25 })
	if err != nil {
		t.Fatalf("after search = %+v: %v", st, err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="log-row"] [data-testid="log-body"]`)))
	if err != nil || !strings.Contains(body, "connection refused") {
		t.Errorf("first row body = %q %v", body, err)
	}

	// Click the shop-http service facet: the query gains the filter, the
	// histogram and the rows follow.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="facet-value"][data-field="service"][data-value="shop-http"]`))); err != nil {
		t.Fatalf("click facet: %v", err)
	}
	st, err = waitPage(wctx, func(p logsPageState) bool { return p.Total == "10" && p.HistTotal == "10" && len(p.Services) == 10 })
	if err != nil {
		t.Fatalf("after facet = %+v: %v", st, err)
	}
	for _, svc := range st.Services {
		if svc != "shop-http" {
			t.Errorf("row of service %q after filtering on shop-http", svc)
		}
	}
	if q, err := chromedp.Run(ctx, chromedp.Value(input)); err != nil || q != `"connection refused" service:shop-http` {
		t.Errorf("query after facet = %q %v", q, err)
	}

	// A row expands to all its fields.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="log-row"] .line`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="log-details"]`))); err != nil {
		t.Fatalf("expand row: %v", err)
	}
	det, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="log-details"]`)))
	if err != nil || !strings.Contains(det, "user_id") || !strings.Contains(det, "resource.host.name") {
		t.Errorf("details = %q %v", det, err)
	}

	// Live tail: a matching record sent after switching it on appears on top.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="logs-live"]`)),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="logs-live"][data-state="open"]`))); err != nil {
		t.Fatalf("live tail: %v", err)
	}
	sendShopLogs(t, s, false, 2) // one more "connection refused" of shop-http (i = 0)
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="log-row"].new`))); err != nil {
		t.Fatalf("live record did not appear: %v", err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="log-row"].new`))); err != nil || !strings.Contains(txt, "payment for order 0 failed") || !strings.Contains(txt, "shop-http") {
		t.Errorf("live row = %q %v", txt, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="logs-live"]`))); err != nil {
		t.Fatal(err)
	}

	// Dragging across the older half of the chart narrows the range to it: the
	// records, all sent in the last minute, fall outside.
	box, err := chromedp.Run(ctx, chromedp.Dimensions(chromedp.CSS(`[data-testid="logs-histogram"] .u-over`)))
	if err != nil {
		t.Fatalf("chart overlay: %v", err)
	}
	left, top, right := box.Content[0], box.Content[1], box.Content[2]
	y := top + 20
	if err := chromedp.Do(ctx,
		chromedp.MouseEvent(chromedp.MouseMoved, left+5, y),
		chromedp.MouseEvent(chromedp.MousePressed, left+5, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(chromedp.MouseMoved, (left+right)/2, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, (left+right)/2, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
	); err != nil {
		t.Fatalf("drag: %v", err)
	}
	st, err = waitPage(wctx, func(p logsPageState) bool { return p.Total == "0" && p.HistTotal == "0" && len(p.Services) == 0 })
	if err != nil {
		t.Fatalf("after drag = %+v: %v", st, err)
	}
	if r, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`[data-testid="logs-range"]`))); err != nil || r != "custom" {
		t.Errorf("range after drag = %q %v", r, err)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`[data-testid="logs-start"]`))); err != nil || v == "" {
		t.Errorf("start after drag = %q %v", v, err)
	}

	// A bad query shows the parser's message.
	if err := chromedp.Do(ctx, chromedp.SetValue(input, `(oops`), chromedp.Click(chromedp.CSS(`[data-testid="logs-run"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="logs-error"]`))); err != nil {
		t.Fatalf("bad query: %v", err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="logs-error"]`))); err != nil || !strings.Contains(msg, "cannot parse query") {
		t.Errorf("error = %q %v", msg, err)
	}
	s.stop()
}
