package rules

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"go.uber.org/goleak"

	"outpost/detect/rules/promrules"
	"outpost/tsdb"
)

func TestMain(m *testing.M) {
	var opts []goleak.Option
	for _, f := range tsdb.LibraryGoroutines {
		opts = append(opts, goleak.IgnoreTopFunction(f))
	}
	goleak.VerifyTestMain(m, opts...)
}

var quiet = slog.New(slog.DiscardHandler)

func openDB(t testing.TB, dir string) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(dir, &tsdb.Options{Logger: quiet, MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newManager starts a manager whose groups the scheduler leaves alone (a day's
// interval) so that the test drives them with EvalAt.
func newManager(t testing.TB, db *tsdb.DB, dir string, mod ...func(*Options)) *Manager {
	t.Helper()
	o := Options{Storage: db, Dir: dir, Interval: 24 * time.Hour, PollInterval: -1, Logger: quiet}
	for _, f := range mod {
		f(&o)
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendSeries writes value(i) at t0 + i*step for i in [0, n).
func appendSeries(t testing.TB, db *tsdb.DB, ls labels.Labels, t0 time.Time, step time.Duration, n int, value func(i int) float64) {
	t.Helper()
	app := db.Appender(context.Background())
	for i := range n {
		if _, err := app.Append(0, ls, t0.Add(time.Duration(i)*step).UnixMilli(), value(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func instant(t testing.TB, db *tsdb.DB, q string, ts time.Time) promql.Vector {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	qry, err := eng.NewInstantQuery(context.Background(), db, nil, q, ts)
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	v, _ := res.Vector()
	return v
}

func alertOf(t *testing.T, m *Manager, name string) (*promrules.AlertingRule, []*promrules.Alert) {
	t.Helper()
	for _, r := range m.AlertingRules() {
		if r.Name() == name {
			return r, r.ActiveAlerts()
		}
	}
	t.Fatalf("no alerting rule %q", name)
	return nil, nil
}

const semanticsRules = `groups:
- name: latency
  rules:
  - alert: HighLatency
    expr: latency_seconds > 1
    for: 2m
    keep_firing_for: 3m
    labels:
      severity: page
      instance_copy: "{{ $labels.instance }}"
    annotations:
      summary: "{{ $labels.instance }} of {{ $labels.job }} answers in {{ $value }}s"
  - record: job:latency_seconds:max
    expr: max by (job) (latency_seconds)
`

// TestSemantics follows one alert through Prometheus' documented lifecycle:
// pending while the condition holds for less than "for", firing after, kept
// firing for "keep_firing_for" after the condition stops, then resolved; with
// its labels and annotations templated, ALERTS and ALERTS_FOR_STATE written, and
// the recording rule's series stored.
func TestSemantics(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "latency.yml"), semanticsRules)
	m := newManager(t, db, dir)
	defer m.Close()

	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	series := labels.FromStrings("__name__", "latency_seconds", "instance", "a:80", "job", "api")
	appendSeries(t, db, series, t0, time.Minute, 20, func(i int) float64 {
		if i < 5 {
			return 2
		}
		return 0.5
	})
	ctx := context.Background()
	want := []struct {
		min   int
		state string // of the rule: inactive, pending, firing
	}{
		{0, "pending"}, {1, "pending"}, {2, "firing"}, {4, "firing"},
		{5, "firing"}, // the condition stopped; keep_firing_for holds it
		{7, "firing"},
		{8, "inactive"}, // 3m since it stopped: resolved
		{9, "inactive"},
	}
	for _, w := range want {
		ts := t0.Add(time.Duration(w.min) * time.Minute)
		m.EvalAt(ctx, ts)
		r, alerts := alertOf(t, m, "HighLatency")
		if got := r.State().String(); got != w.state {
			t.Fatalf("at +%dm: state %s, want %s", w.min, got, w.state)
		}
		if r.Health() != promrules.HealthGood {
			t.Fatalf("at +%dm: health %s: %v", w.min, r.Health(), r.LastError())
		}
		switch w.min {
		case 0:
			a := alerts[0]
			if !a.ActiveAt.Equal(ts) {
				t.Errorf("activeAt %v, want %v", a.ActiveAt, ts)
			}
			if got := a.Annotations.Get("summary"); got != "a:80 of api answers in 2s" {
				t.Errorf("summary %q", got)
			}
			if got := a.Labels.Get("instance_copy"); got != "a:80" {
				t.Errorf("templated label %q", got)
			}
			if a.Labels.Get("severity") != "page" || a.Labels.Get("alertname") != "HighLatency" {
				t.Errorf("labels %v", a.Labels)
			}
		case 2:
			if !alerts[0].FiredAt.Equal(ts) {
				t.Errorf("firedAt %v, want %v", alerts[0].FiredAt, ts)
			}
		case 5:
			if !alerts[0].KeepFiringSince.Equal(ts) {
				t.Errorf("keepFiringSince %v, want %v", alerts[0].KeepFiringSince, ts)
			}
		case 8:
			if len(alerts) != 0 {
				t.Errorf("at +8m: active alerts %+v, want none", alerts)
			}
		}
	}

	// The series the evaluations wrote.
	for _, c := range []struct {
		q    string
		at   int
		want float64
		n    int
	}{
		// Not before the restore that follows the second evaluation, as in Prometheus.
		{`ALERTS{alertname="HighLatency",alertstate="pending"}`, 1, 0, 0},
		{`ALERTS{alertname="HighLatency",alertstate="firing"}`, 2, 1, 1},
		{`ALERTS{alertname="HighLatency",alertstate="firing"}`, 7, 1, 1},
		{`ALERTS_FOR_STATE{alertname="HighLatency"}`, 4, float64(t0.Unix()), 1},
		{`job:latency_seconds:max{job="api"}`, 0, 2, 1},
		{`job:latency_seconds:max{job="api"}`, 6, 0.5, 1},
	} {
		v := instant(t, db, c.q, t0.Add(time.Duration(c.at)*time.Minute))
		if len(v) != c.n || (c.n > 0 && v[0].F != c.want) {
			t.Errorf("%s at +%dm = %v, want %d sample(s) of %v", c.q, c.at, v, c.n, c.want)
		}
	}
	// Resolved: ALERTS got a staleness marker, so nothing at +8m.
	if v := instant(t, db, `ALERTS{alertname="HighLatency"}`, t0.Add(8*time.Minute)); len(v) != 0 {
		t.Errorf("ALERTS after resolution = %v, want none", v)
	}
}

// TestDocsExamplesLoad loads the examples of Prometheus' documentation on
// alerting, templating and recording rules unchanged.
func TestDocsExamplesLoad(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	m := newManager(t, db, "testdata")
	defer m.Close()
	if errs := m.LoadErrors(); len(errs) > 0 {
		t.Fatalf("load errors: %v", errs)
	}
	var got []string
	for _, g := range m.Groups() {
		for _, r := range g.Rules() {
			got = append(got, filepath.Base(g.File())+"/"+g.Name()+"/"+r.Name())
		}
	}
	want := []string{
		"alerting-docs.yml/example/HighRequestLatency",
		"recording-docs.yaml/example/code:prometheus_http_requests_total:sum",
		"recording-docs.yaml/example-limit/job:http_inprogress_requests:sum",
		"templating-docs.yml/example/InstanceDown",
		"templating-docs.yml/example/APIHighRequestLatency",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r, _ := alertOf(t, m, "HighRequestLatency")
	if r.HoldDuration() != 10*time.Minute || r.KeepFiringFor() != 5*time.Minute || r.Labels().Get("team") != "myteam" || r.Labels().Get("severity") != "page" {
		t.Errorf("HighRequestLatency: for %v, keep_firing_for %v, labels %v", r.HoldDuration(), r.KeepFiringFor(), r.Labels())
	}
	for _, g := range m.Groups() {
		if g.Name() == "example-limit" && (g.Interval() != 30*time.Second || g.Limit() != 10 || g.QueryOffset() != time.Minute) {
			t.Errorf("example-limit: interval %v, limit %d, offset %v", g.Interval(), g.Limit(), g.QueryOffset())
		}
	}

	// The templating example evaluates as documented.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	appendSeries(t, db, labels.FromStrings("__name__", "up", "instance", "db:9100", "job", "node"), t0, time.Minute, 10, func(int) float64 { return 0 })
	for i := 0; i <= 5; i++ {
		m.EvalAt(context.Background(), t0.Add(time.Duration(i)*time.Minute))
	}
	r, alerts := alertOf(t, m, "InstanceDown")
	if r.State() != promrules.StateFiring || len(alerts) != 1 {
		t.Fatalf("InstanceDown: %s, %d alerts", r.State(), len(alerts))
	}
	if got, want := alerts[0].Annotations.Get("description"), "db:9100 of job node has been down for more than 5 minutes."; got != want {
		t.Errorf("description %q, want %q", got, want)
	}
}

// TestBadFilesRefused: each kind of bad file is refused with its file, line and
// reason, while the rules already loaded keep running.
func TestBadFilesRefused(t *testing.T) {
	cases := []struct {
		name, content string
		line          int
		reason        string
	}{
		{"yaml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5m: 3\n", 6, "mapping values are not allowed"},
		{"promql", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(up\n", 5, "could not parse expression"},
		{"duplicate", "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n- name: g\n  rules:\n  - record: b\n    expr: up\n", 6, `groupname: "g" is repeated in the same file`},
		{"template", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      summary: \"{{ $labels.instance \"\n", 4, "template"},
		{"unknown field", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    fro: 5m\n", 6, "field fro not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openDB(t, t.TempDir())
			defer db.Close()
			dir := t.TempDir()
			path := filepath.Join(dir, "rules.yml")
			writeFile(t, path, "groups:\n- name: g\n  rules:\n  - alert: Old\n    expr: vector(1)\n")
			m := newManager(t, db, dir)
			defer m.Close()
			writeFile(t, path, c.content)
			err := m.Reload()
			if err == nil {
				t.Fatal("Reload accepted a bad file")
			}
			errs := m.LoadErrors()
			if len(errs) == 0 || errs[0].File != path || errs[0].Line != c.line || !strings.Contains(errs[0].Message, c.reason) {
				t.Fatalf("errors %+v, want %s line %d containing %q", errs, path, c.line, c.reason)
			}
			// The old rule still runs.
			m.EvalAt(context.Background(), time.Now())
			r, alerts := alertOf(t, m, "Old")
			if r.State() != promrules.StateFiring || len(alerts) != 1 {
				t.Fatalf("old rule: %s with %d alerts", r.State(), len(alerts))
			}
			// Fixing the file clears the error and loads the new version.
			writeFile(t, path, "groups:\n- name: g\n  rules:\n  - alert: New\n    expr: vector(1)\n")
			if err := m.Reload(); err != nil {
				t.Fatal(err)
			}
			if len(m.LoadErrors()) != 0 || len(m.AlertingRules()) != 1 || m.AlertingRules()[0].Name() != "New" {
				t.Fatalf("after fix: errors %v, rules %v", m.LoadErrors(), m.AlertingRules())
			}
		})
	}
}

// TestForStateSurvivesRestart: a pending alert's time in "for" is restored from
// ALERTS_FOR_STATE after a restart, as Prometheus restores it (the outage itself
// does not count as pending time).
func TestForStateSurvivesRestart(t *testing.T) {
	dbDir, dir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yml"), "groups:\n- name: g\n  rules:\n  - alert: Slow\n    expr: vector(1)\n    for: 30m\n")
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

	db := openDB(t, dbDir)
	m := newManager(t, db, dir)
	for i := 0; i <= 2; i++ { // ALERTS_FOR_STATE is written from the second one on
		m.EvalAt(context.Background(), min(i))
	}
	m.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	run := func(tolerance time.Duration) (activeAt time.Time, firingAt32 bool) {
		db := openDB(t, dbDir)
		defer db.Close()
		m := newManager(t, db, dir, func(o *Options) { o.OutageTolerance = tolerance })
		defer m.Close()
		m.EvalAt(context.Background(), min(3))
		m.EvalAt(context.Background(), min(4)) // then the restore
		_, alerts := alertOf(t, m, "Slow")
		activeAt = alerts[0].ActiveAt
		m.EvalAt(context.Background(), min(32))
		r, _ := alertOf(t, m, "Slow")
		return activeAt, r.State() == promrules.StateFiring
	}
	// Restored: active since t0, shifted by the outage (last record at +2m,
	// restore at +4m), so it fires at +32m.
	at, firing := run(time.Hour)
	if !at.Equal(min(2)) || !firing {
		t.Errorf("restored: activeAt %v (want %v), firing at +32m %v (want true)", at, min(2), firing)
	}
	// With an outage tolerance shorter than the outage, the clock starts again.
	at, firing = run(time.Minute)
	if !at.Equal(min(3)) || firing {
		t.Errorf("not restored: activeAt %v (want %v), firing at +32m %v (want false)", at, min(3), firing)
	}
}

func TestPutValidateDeleteGroup(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	dir, userDir := t.TempDir(), filepath.Join(t.TempDir(), "detect", "rules")
	writeFile(t, filepath.Join(dir, "ops.yml"), "groups:\n- name: ops\n  rules:\n  - record: r\n    expr: vector(1)\n")
	m := newManager(t, db, dir, func(o *Options) { o.UserDir = userDir })
	defer m.Close()

	body := "name: web\nrules:\n- alert: Errors\n  expr: sum(rate(errors_total[5m])) > 1\n  for: 1m\n"
	if _, errs := m.Validate("web", []byte(body)); len(errs) != 0 {
		t.Fatalf("valid group refused: %v", errs)
	}
	// Lines are those of the body, not of the file it is wrapped into.
	_, errs := m.Validate("web", []byte("name: web\nrules:\n- alert: Errors\n  expr: sum(rate(errors_total[5m]) > 1\n"))
	if len(errs) != 1 || errs[0].Line != 4 {
		t.Fatalf("errors %+v, want one at line 4", errs)
	}
	if _, err := m.PutGroup("web", []byte(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(userDir, "web.yml")); err != nil {
		t.Fatal(err)
	}
	if len(m.Groups()) != 2 {
		t.Fatalf("%d groups, want 2", len(m.Groups()))
	}
	// An invalid edit changes nothing.
	if ferrs, err := m.PutGroup("web", []byte("name: web\nrules:\n- alert: X\n  expr: '('\n")); !errors.Is(err, ErrInvalid) || len(ferrs) != 1 || ferrs[0].Line != 4 {
		t.Fatalf("bad edit: %v %+v", err, ferrs)
	}
	if _, err := m.PutGroup("other", []byte(body)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("name mismatch: %v", err)
	}
	if _, err := m.PutGroup("ops", []byte("name: ops\nrules:\n- record: x\n  expr: vector(2)\n")); !errors.Is(err, ErrConflict) {
		t.Fatalf("shadowing a file's group: %v", err)
	}
	if _, err := m.PutGroup("web", []byte("name: web\nrules:\n- alert: Errors\n  expr: vector(2)\n")); err != nil {
		t.Fatal(err)
	}
	r, _ := alertOf(t, m, "Errors")
	if r.Query().String() != "vector(2)" {
		t.Fatalf("edit not loaded: %s", r.Query())
	}
	// A new manager over the same directories finds the group again.
	m2 := newManager(t, db, dir, func(o *Options) { o.UserDir = userDir })
	if len(m2.Groups()) != 2 {
		t.Fatalf("after restart: %d groups", len(m2.Groups()))
	}
	m2.Close()
	if err := m.DeleteGroup("web"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteGroup("web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if len(m.Groups()) != 1 {
		t.Fatalf("%d groups after delete", len(m.Groups()))
	}
}

// TestPollReloads: a changed file is picked up by the poller without Reload.
func TestPollReloads(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	dir := t.TempDir()
	m := newManager(t, db, dir, func(o *Options) { o.PollInterval = 20 * time.Millisecond })
	defer m.Close()
	writeFile(t, filepath.Join(dir, "new.yaml"), "groups:\n- name: g\n  rules:\n  - record: r\n    expr: vector(1)\n")
	deadline := time.Now().Add(10 * time.Second)
	for len(m.Groups()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("new rule file not loaded by the poller")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueryPreview(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	m := newManager(t, db, "")
	defer m.Close()
	t0 := time.Now().Truncate(time.Minute)
	appendSeries(t, db, labels.FromStrings("__name__", "x", "a", "1"), t0, time.Second, 1, func(int) float64 { return 7 })
	v, err := m.Query(context.Background(), "x * 2", t0)
	if err != nil || len(v) != 1 || v[0].F != 14 {
		t.Fatalf("preview %v, %v", v, err)
	}
	if _, err := m.Query(context.Background(), "x *", t0); err == nil {
		t.Fatal("bad expression accepted")
	}
}
