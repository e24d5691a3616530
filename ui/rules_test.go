package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect/rules"
	"outpost/tsdb"
)

const uiRulesFile = `groups:
- name: ops
  interval: 1d
  rules:
  - alert: QueueTooDeep
    expr: ui_queue_depth > 50
    for: 1m
    labels:
      severity: page
    annotations:
      summary: "<script>alert(1)</script> queue {{ $labels.queue }} at {{ $value }}"
  - record: job:ui_queue_depth:max
    expr: max(ui_queue_depth)
`

// line 5 holds the bad expression
const uiBrokenFile = `groups:
- name: broken
  rules:
  - alert: Broken
    expr: sum(rate(x[5m]
`

const uiUserGroup = `name: mine
interval: 1d
rules:
- alert: AlwaysQuiet
  expr: ui_queue_depth > 1000
`

func getPage(t *testing.T, h *Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// The page shows, over a real rule manager and TSDB, a refused file with its
// line, a firing alert with its value and labels, each group's rules with their
// state, and the editor of a UI group; rule text is escaped.
func TestRulesPageShowsGroupsAlertsAndErrors(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{Logger: quiet, MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ops.yml"), []byte(uiRulesFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.yml"), []byte(uiBrokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := rules.New(rules.Options{Storage: db, Dir: dir, UserDir: filepath.Join(t.TempDir(), "user"), Interval: 24 * time.Hour, PollInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if ferrs, err := m.PutGroup("mine", []byte(uiUserGroup)); err != nil {
		t.Fatal(err, ferrs)
	}

	h := New(fakeStats{}, Options{Version: "v1", Logger: quiet})
	NewRulesPages(h, m).Register(h.Handle)

	ls := labels.FromStrings(labels.MetricName, "ui_queue_depth", "queue", "<b>payments</b>")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	app := db.Appender(context.Background())
	for i := 0; i <= 10; i++ {
		app.Append(0, ls, t0.Add(time.Duration(i)*30*time.Second).UnixMilli(), 80)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	code, body := getPage(t, h, "/rules")
	if code != 200 {
		t.Fatalf("GET /rules: %d\n%s", code, body)
	}
	for _, want := range []string{
		`data-testid="nav-alerts"`, `data-testid="rule-load-errors"`, "broken.yml", `data-testid="load-error-line">5`,
		`data-testid="no-active-alerts"`, `rule-state unknown" data-testid="rule-state">unknown`, `data-testid="rule-group-last-eval">never`, `data-testid="read-only"`,
		`href="/rules/edit/mine"`, "job:ui_queue_depth:max", `data-testid="rule-type">recording`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page before evaluation lacks %q", want)
		}
	}

	m.EvalAt(context.Background(), t0.Add(30*time.Second))
	_, body = getPage(t, h, "/rules")
	if !strings.Contains(body, `rule-state pending" data-testid="rule-state">pending`) {
		t.Errorf("no pending rule after the first evaluation:\n%s", body)
	}
	m.EvalAt(context.Background(), t0.Add(2*time.Minute))
	// The page's self-refreshing part sees the alert fire without a reload.
	if code, frag := getPage(t, h, "/ui/rules/content"); code != 200 || strings.Contains(frag, "<html") ||
		!strings.Contains(frag, `rule-state firing" data-testid="alert-state">firing`) || !strings.Contains(frag, `hx-get="/ui/rules/content"`) {
		t.Errorf("GET /ui/rules/content: %d\n%s", code, frag)
	}
	_, body = getPage(t, h, "/rules")
	for _, want := range []string{
		`data-testid="active-alerts"`, `rule-state firing" data-testid="alert-state">firing`,
		`rule-state firing" data-testid="rule-state">firing`,
		`data-testid="alert-value">80<`, "queue=&lt;b&gt;payments&lt;/b&gt;", "severity=page",
		t0.Add(30 * time.Second).UTC().Format("2006-01-02 15:04:05 UTC"),
		"&lt;script&gt;alert(1)&lt;/script&gt;", "ui_queue_depth &gt; 50", `data-testid="rule-for">`,
		`rule-state inactive" data-testid="rule-state">inactive`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page after firing lacks %q", want)
		}
	}
	if strings.Contains(body, `data-testid="rule-group-last-eval">never`) {
		t.Error("a group evaluated twice says it was never evaluated")
	}
	if strings.Contains(body, "<script>alert(1)") || strings.Contains(body, "<b>payments</b>") {
		t.Error("rule text not escaped")
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}

	code, body = getPage(t, h, "/rules/edit/mine")
	if code != 200 || !strings.Contains(body, `data-testid="rule-editor"`) || !strings.Contains(body, "AlwaysQuiet") ||
		!strings.Contains(body, `data-testid="rule-delete"`) || !strings.Contains(body, "/assets/rules.js") {
		t.Errorf("editor of mine: %d\n%s", code, body)
	}
	code, body = getPage(t, h, "/rules/edit/ops")
	if code != 200 || !strings.Contains(body, `data-testid="rule-read-only"`) || strings.Contains(body, `data-testid="rule-editor"`) || !strings.Contains(body, "ops.yml") {
		t.Errorf("file group is not read-only: %d\n%s", code, body)
	}
	if code, body = getPage(t, h, "/rules/edit/nothing"); code != 404 {
		t.Errorf("unknown group: %d\n%s", code, body)
	}
	code, body = getPage(t, h, "/rules/new")
	if code != 200 || !strings.Contains(body, `data-testid="rule-editor"`) || strings.Contains(body, `data-testid="rule-delete"`) {
		t.Errorf("new group editor: %d\n%s", code, body)
	}
}
