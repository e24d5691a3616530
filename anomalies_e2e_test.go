package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// A queue-depth gauge, one point a minute for three simulated days ending now,
// then a level shift for the last half hour.
const (
	anomalyDays     = 3
	anomalyShiftLen = 30 // minutes
	anomalyMetric   = "checkout_queue_depth"
)

// sendShiftedGauge sends the gauge over OTLP/HTTP (protobuf), 12 hours of points
// per request, and returns the time of the shift.
func sendShiftedGauge(t *testing.T, s *server) time.Time {
	t.Helper()
	total := anomalyDays*24*60 + anomalyShiftLen
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Duration(total-1) * time.Minute)
	shift := start.Add(anomalyDays * 24 * time.Hour)
	rng := rand.New(rand.NewPCG(7, 8))
	for from := 0; from < total; from += 12 * 60 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "e2e-shop")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("checkout.queue.depth")
		m.SetUnit("{item}")
		dps := m.SetEmptyGauge().DataPoints()
		for i := from; i < min(from+12*60, total); i++ {
			v := 40 + rng.NormFloat64()*2
			if i >= anomalyDays*24*60 {
				v += 60
			}
			dp := dps.AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Minute)))
			dp.SetDoubleValue(v)
			dp.Attributes().PutStr("queue", "payments")
		}
		body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+s.otlpHTTP+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("OTLP export: %s", resp.Status)
		}
	}
	return shift
}

type anomalyDoc struct {
	Labels      map[string]string `json:"labels"`
	Metric      string            `json:"metric"`
	Selector    string            `json:"selector"`
	Active      bool              `json:"active"`
	Score       float64           `json:"score"`
	Since       time.Time         `json:"since"`
	Lower       *float64          `json:"lower"`
	Upper       *float64          `json:"upper"`
	Value       *float64          `json:"value"`
	Explanation string            `json:"explanation"`
}

// waitAnomalies polls GET /api/v1/anomalies until it lists something.
func waitAnomalies(t *testing.T, s *server) []anomalyDoc {
	t.Helper()
	return waitAnomaliesFor(t, s, 30*time.Second)
}

// waitAnomaliesFor polls GET /api/v1/anomalies until it lists something or wait
// has passed.
func waitAnomaliesFor(t *testing.T, s *server, wait time.Duration) []anomalyDoc {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		code, body := s.get("/api/v1/anomalies")
		var doc struct {
			Status string       `json:"status"`
			Data   []anomalyDoc `json:"data"`
		}
		if err := json.Unmarshal(body, &doc); err != nil || code != 200 || doc.Status != "success" {
			t.Fatalf("GET /api/v1/anomalies: %d %s %v", code, body, err)
		}
		if len(doc.Data) > 0 || time.Now().After(deadline) {
			return doc.Data
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scalarAt runs an instant query expected to give one sample and returns it.
func scalarAt(t *testing.T, s *server, query string, ts time.Time) float64 {
	t.Helper()
	res := instant(t, s, query, ts)
	if len(res) != 1 {
		t.Fatalf("%s at %v: %v, want one series\n%s", query, ts, res, s.logs())
	}
	for _, v := range res {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	return 0
}

// checkShiftFound checks, through PromQL and the anomalies API, that the shift is
// found at the right time and nothing before it; it returns the listed anomaly.
func checkShiftFound(t *testing.T, s *server, shift time.Time) anomalyDoc {
	t.Helper()
	list := waitAnomalies(t, s)
	if len(list) != 1 {
		t.Fatalf("anomalies = %+v, want the shifted gauge only\n%s", list, s.logs())
	}
	a := list[0]
	if a.Metric != anomalyMetric || a.Labels["queue"] != "payments" || a.Labels["job"] != "e2e-shop" || !a.Active || a.Score < 0.5 {
		t.Errorf("anomaly = %+v", a)
	}
	if a.Since.Before(shift) || a.Since.After(shift.Add(10*time.Minute)) {
		t.Errorf("anomalous since %v, want within 10 minutes after the shift at %v", a.Since, shift)
	}
	if a.Upper == nil || *a.Upper > 60 || a.Value == nil || *a.Value < 80 || !strings.Contains(a.Explanation, "expected") {
		t.Errorf("band, value or explanation: %+v", a)
	}

	sel := `outpost_anomaly_score{anomaly_metric="` + anomalyMetric + `", queue="payments"}`
	if before := scalarAt(t, s, "max_over_time("+sel+"[3d])", shift.Add(-time.Minute)); before >= 0.5 {
		t.Errorf("highest score in the three days before the shift = %.2f, want < 0.5", before)
	}
	if after := scalarAt(t, s, "max_over_time("+sel+"[10m])", shift.Add(10*time.Minute)); after < 0.5 {
		t.Errorf("highest score in the 10 minutes after the shift = %.2f, want ≥ 0.5", after)
	}
	// The band is stored too, and the shifted values are above it.
	band := `outpost_expected_upper{anomaly_metric="` + anomalyMetric + `"}`
	if up := scalarAt(t, s, band, shift.Add(-2*time.Minute)); up < 40 || up > 60 {
		t.Errorf("expected upper bound before the shift = %.2f, want between 40 and 60", up)
	}
	q := url.Values{"match[]": {`{__name__=~"outpost_.*", anomaly_metric="` + anomalyMetric + `"}`}}
	data := promQuery(t, s, "/api/v1/series", q)
	var series []map[string]string
	json.Unmarshal(data, &series)
	if len(series) != 3 {
		t.Errorf("score and band series = %v, want 3", series)
	}
	return a
}

func TestAnomalyEndToEnd(t *testing.T) {
	s := startServer(t, t.TempDir())
	shift := sendShiftedGauge(t, s)
	checkShiftFound(t, s, shift)
	// The detector reports on itself: every point scored, none dropped.
	_, metrics := s.get("/metrics")
	want := "outpost_detect_scored_samples_total " + strconv.Itoa(anomalyDays*24*60+anomalyShiftLen)
	if !strings.Contains(string(metrics), want) || !strings.Contains(string(metrics), "outpost_detect_dropped_samples_total 0") {
		t.Errorf("/metrics lacks %q or shows drops", want)
	}
	checkBacktestQuery(t, s, shift)
	s.stop()
}

// With --detect-series, only matching series are watched: the shifted gauge of
// another queue is stored but not scored.
func TestAnomalyDetectSeries(t *testing.T) {
	s := startServer(t, t.TempDir(), `OUTPOST_DETECT_SERIES={queue="refunds"}, up`)
	sendShiftedGauge(t, s)
	if got := instant(t, s, "count("+anomalyMetric+")", time.Now()); len(got) != 1 {
		t.Fatalf("the gauge is not stored: %v", got)
	}
	_, metrics := s.get("/metrics")
	if !strings.Contains(string(metrics), "outpost_detect_scored_samples_total 0") || !strings.Contains(s.logs(), "anomaly detection limited") {
		t.Errorf("samples outside --detect-series were scored, or the log does not say it is limited\n%s", s.logs())
	}
	if list := waitAnomaliesFor(t, s, time.Second); len(list) != 0 {
		t.Errorf("anomalies %+v, want none", list)
	}
	s.stop()
	// A broken selector stops the start with a clear error.
	bad := exec.Command(binary, "serve", "--data", t.TempDir(), "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0", "--detect-series", "up{")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "invalid --detect-series") {
		t.Errorf("broken selector: %v\n%s", err, out)
	}
}

// checkBacktestQuery runs "outpost detect backtest --query" against the server:
// it scores every stored sample of the gauge and names the shift as the one
// anomalous stretch; a selector that matches nothing is an error.
func checkBacktestQuery(t *testing.T, s *server, shift time.Time) {
	t.Helper()
	cmd := exec.Command(binary, "detect", "backtest", "--query", anomalyMetric+`{queue="payments"}`, "--url", "http://"+s.http, "--start", "4d")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("backtest --query: %v\n%s", err, stderr.String())
	}
	rows, err := csv.NewReader(&stdout).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+anomalyDays*24*60+anomalyShiftLen || strings.Join(rows[0], ",") != "series,timestamp,value,anomaly_score" {
		t.Fatalf("backtest --query wrote %d rows, header %v", len(rows), rows[0])
	}
	if rows[1][0] != anomalyMetric+`{job="e2e-shop", queue="payments"}` {
		t.Errorf("series column %q", rows[1][0])
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var from time.Time
	if len(lines) == 1 {
		if _, after, ok := strings.Cut(lines[0], ": anomalous "); ok && len(after) >= 19 {
			from, _ = time.Parse("2006-01-02 15:04:05", after[:19])
		}
	}
	if from.Before(shift) || from.After(shift.Add(10*time.Minute)) {
		t.Errorf("stretches found:\n%s\nwant one, starting within 10 minutes after %s", stderr.String(), shift.UTC())
	}
	cmd = exec.Command(binary, "detect", "backtest", "--query", "no_such_metric", "--url", "http://"+s.http)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no series match no_such_metric") {
		t.Errorf("backtest of an unknown metric: %v\n%s", err, out)
	}
}

func TestBrowserAnomaliesView(t *testing.T) {
	ctx := browser(t)
	s := startServer(t, t.TempDir())
	base := "http://" + s.http
	// Before any data the page says nothing is anomalous.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS(`[data-testid="nav-anomalies"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="no-active-anomalies"]`))); err != nil {
		t.Fatalf("open Anomalies from the navigation: %v\n%s", err, s.logs())
	}

	shift := sendShiftedGauge(t, s)
	a := checkShiftFound(t, s, shift)
	row := chromedp.CSS(`[data-testid="active-anomalies"] [data-testid="anomaly-row"]`)
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("anomaly row: %v", err)
	}
	txt, err := chromedp.Run(ctx, chromedp.Text(row))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{a.Selector, "expected", a.Since.UTC().Format("2006-01-02 15:04")} {
		if !strings.Contains(txt, want) {
			t.Errorf("row %q lacks %q", txt, want)
		}
	}
	// The link charts the series on the Metrics page.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000), chromedp.Click(chromedp.CSS(`[data-testid="anomaly-chart"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart"] canvas`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="legend-item"]`))); err != nil {
		t.Fatalf("chart link: %v", err)
	}
	q, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`[data-testid="query-input"]`)))
	if err != nil || q != a.Selector {
		t.Errorf("query on the Metrics page = %q %v, want %q", q, err, a.Selector)
	}
	// The link asks for the expected band: it is drawn, and the shift's stretch
	// is shaded as anomalous.
	note, err := waitText(ctx, `[data-testid="band-note"]`, func(s string) bool { return strings.Contains(s, "expected band") })
	if err != nil || !strings.Contains(note, "anomalous points") {
		t.Errorf("band note = %q %v", note, err)
	}
	attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.CSS(`[data-testid="chart"]`)))
	if n, _ := strconv.Atoi(attrs["data-anomalous-points"]); err != nil || attrs["data-band"] != "1" || n < 1 {
		t.Errorf("chart attributes = %v %v, want the band and anomalous points drawn", attrs, err)
	}
	// Unticking the box charts the series alone.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="show-band"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart"][data-band="0"] canvas`))); err != nil {
		t.Errorf("untick the band: %v", err)
	}
	s.stop()
}
