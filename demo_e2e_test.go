package main

import (
	"strings"
	"testing"
	"time"
)

// TestDemoEndToEnd: "outpost demo" fills a fresh server with the shop's
// metrics, logs and traces through OTLP, and starts with an alert rule on the
// error rate its faults raise; a second start keeps one copy of that rule.
func TestDemoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startCommand(t, "demo", dir)
	deadline := time.Now().Add(40 * time.Second)
	var st statusDoc
	for time.Now().Before(deadline) {
		st = s.status()
		if st.Ingested.Points > 0 && st.Ingested.LogRecords > 0 && st.Ingested.Spans > 0 && len(st.Services) >= 6 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st.Ingested.Points == 0 || st.Ingested.LogRecords == 0 || st.Ingested.Spans == 0 || len(st.Services) < 6 {
		t.Fatalf("demo telemetry after 40 s: %+v\n%s", st, s.logs())
	}
	rulesHas := func(s *server) int {
		_, b := s.get("/api/v1/rules")
		return strings.Count(string(b), `"name":"HighErrorRate"`)
	}
	if n := rulesHas(s); n != 1 {
		t.Errorf("the demo's HighErrorRate rule is listed %d times", n)
	}
	s.stop()
	s = startCommand(t, "demo", dir)
	defer s.stop()
	if n := rulesHas(s); n != 1 {
		t.Errorf("after a second start, HighErrorRate is listed %d times", n)
	}
}
