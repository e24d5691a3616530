package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const e2eIncidentRules = `groups:
- name: e2e-incidents
  interval: 1s
  rules:
  - alert: QueueTooDeep
    expr: e2e_rules_queue_depth > 50
    labels:
      severity: critical
    annotations:
      summary: "queue {{ $labels.queue }} holds {{ $value }} items"
  - alert: QueueStillDeep
    expr: e2e_rules_queue_depth > 60
    labels:
      severity: warning
`

type incidentDoc struct {
	ID       uint64 `json:"id"`
	Title    string `json:"title"`
	Service  string `json:"service"`
	Severity string `json:"severity"`
	State    string `json:"state"`
	AckedBy  string `json:"acknowledged_by"`
	Members  []struct {
		Kind    string `json:"kind"`
		Name    string `json:"name"`
		Expr    string `json:"expr"`
		Summary string `json:"summary"`
		Active  bool   `json:"active"`
	} `json:"members"`
	Timeline []struct {
		Kind string `json:"kind"`
		By   string `json:"by"`
		Text string `json:"text"`
	} `json:"timeline"`
}

func listIncidents(t *testing.T, s *server, query string) []incidentDoc {
	t.Helper()
	code, body := s.get("/api/v1/incidents" + query)
	var doc struct {
		Status string        `json:"status"`
		Data   []incidentDoc `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || code != 200 || doc.Status != "success" {
		t.Fatalf("GET /api/v1/incidents%s: %d %s %v", query, code, body, err)
	}
	return doc.Data
}

// TestIncidentsEndToEnd: two alert rules of one service fire over metrics sent
// through OTLP and make one incident with both alerts and their expressions; it
// is acknowledged over the API, and after a restart the incident, its state and
// its timeline are still there.
func TestIncidentsEndToEnd(t *testing.T) {
	rulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rulesDir, "queue.yml"), []byte(e2eIncidentRules), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	s := startServer(t, data, "OUTPOST_RULES_DIR="+rulesDir)
	var incs []incidentDoc
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		sendQueueDepth(t, s, 80)
		if incs = listIncidents(t, s, ""); len(incs) == 1 && len(incs[0].Members) == 2 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if len(incs) != 1 || len(incs[0].Members) != 2 {
		t.Fatalf("incidents %+v\n%s", incs, s.logs())
	}
	inc := incs[0]
	if inc.Service != "e2e-rules" || inc.Severity != "critical" || inc.State != "open" {
		t.Fatalf("incident %+v", inc)
	}
	exprs := map[string]string{}
	for _, m := range inc.Members {
		exprs[m.Name] = m.Expr
		if m.Kind != "alert" || !m.Active {
			t.Errorf("member %+v", m)
		}
	}
	if exprs["QueueTooDeep"] != "e2e_rules_queue_depth > 50" || exprs["QueueStillDeep"] != "e2e_rules_queue_depth > 60" {
		t.Fatalf("member expressions %v", exprs)
	}

	resp, err := http.Post("http://"+s.http+"/api/v1/incidents/1/acknowledge", "application/json", strings.NewReader(`{"by":"ana","comment":"on it"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("acknowledge: %s", resp.Status)
	}
	s.stop()

	s = startServer(t, data, "OUTPOST_RULES_DIR="+rulesDir)
	defer s.stop()
	incs = listIncidents(t, s, "?state=acknowledged")
	if len(incs) != 1 || incs[0].AckedBy != "ana" || len(incs[0].Members) != 2 {
		t.Fatalf("after restart: %+v", incs)
	}
	var kinds []string
	for _, e := range incs[0].Timeline {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "opened,joined,acknowledged" {
		t.Fatalf("timeline after restart: %s", got)
	}
}

// TestNotificationsEndToEnd: an alert rule fires over metrics sent through OTLP;
// the webhook receiver of --notify-config gets one Alertmanager v4 payload for
// the group, with the incident's link; a silence made through the Alertmanager
// API mutes the alert, and survives a restart.
func TestNotificationsEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	os.Mkdir(rulesDir, 0o755)
	if err := os.WriteFile(filepath.Join(rulesDir, "queue.yml"), []byte(e2eIncidentRules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "notify.yml")
	if err := os.WriteFile(cfg, []byte(`route:
  receiver: team
  group_by: [job]
  group_wait: 1s
  group_interval: 1h
receivers:
- name: team
  webhook_configs:
  - url: `+hook.URL+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	s := startServer(t, data, "OUTPOST_RULES_DIR="+rulesDir, "OUTPOST_NOTIFY_CONFIG="+cfg, "OUTPOST_EXTERNAL_URL=http://outpost.example:8080")
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		sendQueueDepth(t, s, 80)
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Both alerts fire within a second or two; group_wait gathers them, and
	// further evaluations within group_interval send nothing more.
	for range 6 {
		sendQueueDepth(t, s, 80)
		time.Sleep(500 * time.Millisecond)
	}
	mu.Lock()
	payloads := append([]map[string]any(nil), got...)
	mu.Unlock()
	if len(payloads) == 0 {
		t.Fatalf("no notification\n%s", s.logs())
	}
	p := payloads[0]
	alerts, _ := p["alerts"].([]any)
	if p["version"] != "4" || p["receiver"] != "team" || p["status"] != "firing" || p["externalURL"] != "http://outpost.example:8080" || len(alerts) == 0 {
		t.Fatalf("payload %v", p)
	}
	first := alerts[0].(map[string]any)
	ann, _ := first["annotations"].(map[string]any)
	if ann["incident_url"] != "http://outpost.example:8080/incidents/1" {
		t.Errorf("annotations %v, want the incident's link", ann)
	}
	total := 0
	for _, p := range payloads {
		total += len(p["alerts"].([]any))
	}
	if len(payloads) > 2 || total < 2 {
		t.Errorf("%d notifications carrying %d alerts; want the group in one (two if the second alert fired after group_wait)", len(payloads), total)
	}

	// A silence through the Alertmanager API v2.
	body := `{"matchers":[{"name":"alertname","value":"QueueTooDeep","isRegex":false,"isEqual":true}],"startsAt":"` +
		time.Now().UTC().Format(time.RFC3339) + `","endsAt":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","createdBy":"e2e","comment":"maintenance"}`
	resp, err := http.Post("http://"+s.http+"/api/v2/silences", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		SilenceID string `json:"silenceID"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 200 || created.SilenceID == "" {
		t.Fatalf("POST /api/v2/silences: %s %+v", resp.Status, created)
	}
	silenced := func() bool {
		code, b := s.get("/api/v2/alerts?silenced=true&active=false")
		var as []struct {
			Labels map[string]string `json:"labels"`
			Status struct {
				State      string   `json:"state"`
				SilencedBy []string `json:"silencedBy"`
			} `json:"status"`
		}
		json.Unmarshal(b, &as)
		for _, a := range as {
			if a.Labels["alertname"] == "QueueTooDeep" && a.Status.State == "suppressed" && len(a.Status.SilencedBy) == 1 && a.Status.SilencedBy[0] == created.SilenceID {
				return code == 200
			}
		}
		return false
	}
	for time.Now().Before(deadline) && !silenced() {
		sendQueueDepth(t, s, 80)
		time.Sleep(300 * time.Millisecond)
	}
	if !silenced() {
		_, b := s.get("/api/v2/alerts")
		t.Fatalf("QueueTooDeep is not suppressed by %s: %s", created.SilenceID, b)
	}
	s.stop()
	s = startServer(t, data, "OUTPOST_RULES_DIR="+rulesDir, "OUTPOST_NOTIFY_CONFIG="+cfg)
	defer s.stop()
	code, b := s.get("/api/v2/silence/" + created.SilenceID)
	if code != 200 || !strings.Contains(string(b), `"maintenance"`) || !strings.Contains(string(b), `"active"`) {
		t.Fatalf("silence after restart: %d %s", code, b)
	}
}
