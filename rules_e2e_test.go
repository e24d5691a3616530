package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

const e2eRules = `groups:
- name: e2e-queue
  interval: 1s
  rules:
  - alert: QueueTooDeep
    expr: e2e_rules_queue_depth > 50
    for: 2s
    labels:
      severity: page
    annotations:
      summary: "queue {{ $labels.queue }} holds {{ $value }} items"
`

// sendQueueDepth sends one point of the gauge e2e.rules.queue.depth, now, over
// OTLP/HTTP.
func sendQueueDepth(t *testing.T, s *server, v float64) {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "e2e-rules")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("e2e.rules.queue.depth")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr("queue", "payments")
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

type rulesDoc struct {
	Groups []struct {
		Name  string `json:"name"`
		File  string `json:"file"`
		Rules []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"rules"`
	} `json:"groups"`
	Errors []struct {
		File  string `json:"file"`
		Line  int    `json:"line"`
		Error string `json:"error"`
	} `json:"errors"`
}

// TestRulesEndToEnd loads a rule file from --rules-dir (OUTPOST_RULES_DIR), sends
// metrics over OTLP that make its alert fire, and sees the alert in
// /api/v1/alerts and as ALERTS in /api/v1/query; then SIGHUP reloads the
// directory, refusing a bad file while the alert keeps firing.
func TestRulesEndToEnd(t *testing.T) {
	rulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rulesDir, "queue.yml"), []byte(e2eRules), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, t.TempDir(), "OUTPOST_RULES_DIR="+rulesDir)
	defer s.stop()

	type alertsDoc struct {
		Alerts []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			State       string            `json:"state"`
		} `json:"alerts"`
	}
	var firing bool
	deadline := time.Now().Add(30 * time.Second)
	for !firing && time.Now().Before(deadline) {
		sendQueueDepth(t, s, 80)
		var a alertsDoc
		if err := json.Unmarshal(promQuery(t, s, "/api/v1/alerts", nil), &a); err != nil {
			t.Fatal(err)
		}
		for _, al := range a.Alerts {
			if al.Labels["alertname"] == "QueueTooDeep" && al.State == "firing" {
				if al.Labels["queue"] != "payments" || al.Labels["severity"] != "page" || al.Annotations["summary"] != "queue payments holds 80 items" {
					t.Fatalf("alert %+v", al)
				}
				firing = true
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !firing {
		t.Fatalf("QueueTooDeep did not fire within 30 s\n%s", s.logs())
	}
	// ALERTS is written once the `for` state has been restored (after the
	// group's second evaluation), so poll for it too.
	var alerts map[string]string
	for time.Now().Before(deadline) {
		sendQueueDepth(t, s, 80)
		if alerts = instant(t, s, `ALERTS{alertname="QueueTooDeep",alertstate="firing"}`, time.Now()); len(alerts) == 1 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if len(alerts) != 1 {
		t.Fatalf("ALERTS firing = %v\n%s", alerts, s.logs())
	}
	for ls, v := range alerts {
		if v != "1" || !strings.Contains(ls, "queue=payments") || !strings.Contains(ls, "severity=page") {
			t.Errorf("ALERTS sample %s = %s", ls, v)
		}
	}

	// SIGHUP: a new good file is loaded, a bad one refused with its line.
	os.WriteFile(filepath.Join(rulesDir, "more.yaml"), []byte("groups:\n- name: more\n  rules:\n  - record: e2e:depth:max\n    expr: max(e2e_rules_queue_depth)\n"), 0o644)
	os.WriteFile(filepath.Join(rulesDir, "bad.yml"), []byte("groups:\n- name: bad\n  rules:\n  - alert: Broken\n    expr: sum(\n"), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	var doc rulesDoc
	for time.Now().Before(deadline) {
		doc = rulesDoc{}
		json.Unmarshal(promQuery(t, s, "/api/v1/rules", url.Values{}), &doc)
		if len(doc.Groups) == 2 && len(doc.Errors) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(doc.Groups) != 2 || len(doc.Errors) != 1 || filepath.Base(doc.Errors[0].File) != "bad.yml" || doc.Errors[0].Line != 5 {
		t.Fatalf("after SIGHUP: %+v\n%s", doc, s.logs())
	}
	// The API may show the refusal a moment before the log line is written.
	for !strings.Contains(s.logs(), "rule file refused") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.logs(), "rule file refused") {
		t.Errorf("the refused file is not in the log")
	}
	for _, g := range doc.Groups {
		if g.Name == "e2e-queue" && (len(g.Rules) != 1 || g.Rules[0].State != "firing") {
			t.Errorf("e2e-queue after reload: %+v", g)
		}
	}
}
