package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/detect/rules"
)

// rulesServer serves the rules API over a real rules manager and TSDB seeded
// with seed; the rule directory holds files.
func rulesServer(t *testing.T, files map[string]string) (*httptest.Server, *rules.Manager, string) {
	t.Helper()
	db := openDB(t)
	seed(t, db)
	dir, userDir := t.TempDir(), filepath.Join(t.TempDir(), "detect", "rules")
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	m, err := rules.New(rules.Options{Storage: db, Dir: dir, UserDir: userDir, Interval: 24 * time.Hour, PollInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close) // before the TSDB closes
	mux := http.NewServeMux()
	NewRules(m, RulesOptions{Logger: quiet, Now: func() time.Time { return base.Add(10 * time.Minute) }}).Register(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, m, dir
}

func call(t *testing.T, method, url, body string, wantCode int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, wantCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

const shopRules = `groups:
- name: shop
  interval: 30s
  rules:
  - alert: HighRequestRate
    expr: rate(http_requests_total[5m]) > 0.1
    for: 1m
    keep_firing_for: 2m
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.instance }} serves {{ $value }} requests/s"
  - record: job:http_requests:rate5m
    expr: sum by (job) (rate(http_requests_total[5m]))
`

func TestRulesAndAlertsAPI(t *testing.T) {
	srv, m, dir := rulesServer(t, map[string]string{
		"shop.yml": shopRules,
		"bad.yml":  "groups:\n- name: bad\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n",
	})
	for i := 0; i <= 3; i++ {
		m.EvalAt(context.Background(), base.Add(5*time.Minute+time.Duration(i)*30*time.Second))
	}

	var got struct {
		Status string
		Data   struct {
			Groups []struct {
				Name, File     string
				Interval       float64
				Limit          int
				EvaluationTime *float64
				LastEvaluation time.Time
				Rules          []map[string]any
			}
			Errors []rules.FileError
		}
	}
	call(t, "GET", srv.URL+"/api/v1/rules", "", 200, &got)
	if got.Status != "success" || len(got.Data.Groups) != 1 {
		t.Fatalf("%+v", got)
	}
	g := got.Data.Groups[0]
	if g.Name != "shop" || g.File != filepath.Join(dir, "shop.yml") || g.Interval != 30 || g.EvaluationTime == nil || g.LastEvaluation.IsZero() || len(g.Rules) != 2 {
		t.Fatalf("group %+v", g)
	}
	ar := g.Rules[0]
	for k, want := range map[string]any{
		"state": "firing", "name": "HighRequestRate", "query": "rate(http_requests_total[5m]) > 0.1",
		"duration": 60.0, "keepFiringFor": 120.0, "health": "ok", "type": "alerting",
	} {
		if ar[k] != want {
			t.Errorf("alerting rule %s = %v, want %v", k, ar[k], want)
		}
	}
	for _, k := range []string{"labels", "annotations", "alerts", "evaluationTime", "lastEvaluation"} {
		if _, ok := ar[k]; !ok {
			t.Errorf("alerting rule lacks %q", k)
		}
	}
	if alerts := ar["alerts"].([]any); len(alerts) != 2 {
		t.Errorf("%d alerts, want 2 (host-2 and host-3 above 0.1/s)", len(alerts))
	}
	if rr := g.Rules[1]; rr["type"] != "recording" || rr["name"] != "job:http_requests:rate5m" || rr["health"] != "ok" {
		t.Errorf("recording rule %v", rr)
	}
	if len(got.Data.Errors) != 1 || got.Data.Errors[0].File != filepath.Join(dir, "bad.yml") || got.Data.Errors[0].Line != 5 || !strings.Contains(got.Data.Errors[0].Message, "could not parse expression") {
		t.Errorf("load errors %+v", got.Data.Errors)
	}

	call(t, "GET", srv.URL+"/api/v1/rules?type=record", "", 200, &got)
	if len(got.Data.Groups) != 1 || len(got.Data.Groups[0].Rules) != 1 || got.Data.Groups[0].Rules[0]["type"] != "recording" {
		t.Errorf("type=record: %+v", got.Data.Groups)
	}
	call(t, "GET", srv.URL+"/api/v1/rules?type=nope", "", 400, nil)

	var alerts struct {
		Status string
		Data   struct {
			Alerts []struct {
				Labels, Annotations map[string]string
				State, Value        string
				ActiveAt            time.Time
			}
		}
	}
	call(t, "GET", srv.URL+"/api/v1/alerts", "", 200, &alerts)
	if len(alerts.Data.Alerts) != 2 {
		t.Fatalf("alerts %+v", alerts)
	}
	a := alerts.Data.Alerts[0]
	if a.State != "firing" || a.Labels["alertname"] != "HighRequestRate" || a.Labels["severity"] != "page" || !a.ActiveAt.Equal(base.Add(5*time.Minute)) ||
		!strings.HasPrefix(a.Annotations["summary"], a.Labels["instance"]+" serves ") || a.Value == "" {
		t.Errorf("alert %+v", a)
	}
}

func TestRuleGroupCRUDAPI(t *testing.T) {
	srv, m, _ := rulesServer(t, map[string]string{"shop.yml": shopRules})
	type validation struct {
		Status string
		Data   struct {
			Valid  bool
			Groups []string
			Errors []rules.FileError
		}
	}
	var v validation
	group := "name: mine\nrules:\n- alert: Up\n  expr: sum(http_requests_total) > 0\n"
	call(t, "POST", srv.URL+"/api/v1/rules/validate", group, 200, &v)
	if !v.Data.Valid || len(v.Data.Groups) != 1 || v.Data.Groups[0] != "mine" {
		t.Fatalf("valid group: %+v", v)
	}
	for _, c := range []struct {
		body   string
		line   int
		reason string
	}{
		{"name: mine\nrules:\n- alert: Up\n  expr: sum(x\n", 4, "unclosed left parenthesis"},
		{"name: mine\nrules:\n- alert: Up\n  expr: x\n  annotations:\n    a: '{{ .Nope'\n", 3, "template"},
		{"name: mine\nrules:\n- alert: Up\n  expr: x\n  for: 5m: 1\n", 5, "mapping values"},
		{"groups:\n- name: a\n  rules: []\n- name: a\n  rules: []\n", 4, "repeated"},
	} {
		call(t, "POST", srv.URL+"/api/v1/rules/validate", c.body, 200, &v)
		if v.Data.Valid || len(v.Data.Errors) == 0 || v.Data.Errors[0].Line != c.line || !strings.Contains(v.Data.Errors[0].Message, c.reason) {
			t.Errorf("%q: %+v, want line %d with %q", c.body, v.Data, c.line, c.reason)
		}
	}

	call(t, "PUT", srv.URL+"/api/v1/rules/groups/mine", group, 200, nil)
	var bad struct {
		Status, ErrorType, Error string
		Data                     struct{ Errors []rules.FileError }
	}
	call(t, "PUT", srv.URL+"/api/v1/rules/groups/mine", "name: mine\nrules:\n- alert: Up\n  expr: sum(x\n", 400, &bad)
	if bad.ErrorType != "bad_data" || len(bad.Data.Errors) != 1 || bad.Data.Errors[0].Line != 4 {
		t.Errorf("bad PUT: %+v", bad)
	}
	call(t, "PUT", srv.URL+"/api/v1/rules/groups/shop", "name: shop\nrules:\n- record: r\n  expr: vector(1)\n", 409, nil)

	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/rules/groups/mine", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "expr: sum(http_requests_total) > 0") {
		t.Fatalf("GET group: %d %s", resp.StatusCode, b)
	}
	m.EvalAt(context.Background(), base.Add(5*time.Minute))
	var got struct {
		Data struct {
			Groups []struct {
				Name     string
				Editable bool
			}
		}
	}
	call(t, "GET", srv.URL+"/api/v1/rules", "", 200, &got)
	editable := map[string]bool{}
	for _, g := range got.Data.Groups {
		editable[g.Name] = g.Editable
	}
	if len(got.Data.Groups) != 2 || !editable["mine"] || editable["shop"] {
		t.Fatalf("groups %+v", got.Data.Groups)
	}
	call(t, "DELETE", srv.URL+"/api/v1/rules/groups/mine", "", 200, nil)
	call(t, "DELETE", srv.URL+"/api/v1/rules/groups/mine", "", 404, nil)
	call(t, "GET", srv.URL+"/api/v1/rules", "", 200, &got)
	if len(got.Data.Groups) != 1 {
		t.Fatalf("after delete: %+v", got.Data.Groups)
	}
}

func TestRulePreviewAPI(t *testing.T) {
	srv, _, _ := rulesServer(t, nil)
	var got struct {
		Status string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  []any
			}
		}
	}
	call(t, "GET", srv.URL+"/api/v1/rules/preview?expr=http_requests_total+>+20", "", 200, &got)
	// At +10m the counters are at 40, 80 and 120.
	if got.Data.ResultType != "vector" || len(got.Data.Result) != 3 {
		t.Fatalf("%+v", got)
	}
	call(t, "GET", srv.URL+"/api/v1/rules/preview?expr=http_requests_total+>+100", "", 200, &got)
	if len(got.Data.Result) != 1 || got.Data.Result[0].Value[1] != "120" {
		t.Fatalf("%+v", got)
	}
	call(t, "GET", srv.URL+"/api/v1/rules/preview?expr=sum(", "", 400, nil)
	call(t, "GET", srv.URL+"/api/v1/rules/preview", "", 400, nil)
}
