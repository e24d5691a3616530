package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
