package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBackupAndRestore: while telemetry keeps arriving, "outpost backup" copies
// a running server's data directory; "outpost restore" makes a new directory
// from it, and a server started there holds every signal acknowledged before
// the backup (counters, metrics through PromQL, logs through search, traces by
// search and id) and the silences; a restore into a used directory is refused.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, filepath.Join(dir, "data"))
	sendMetrics(t, s)
	sendLogs(t, s, 20)
	sendSpans(t, s, 5)
	body := `{"matchers":[{"name":"job","value":"checkout","isRegex":false,"isEqual":true}],"startsAt":"` +
		time.Now().UTC().Format(time.RFC3339) + `","endsAt":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","createdBy":"e2e","comment":"kept by the backup"}`
	resp, err := http.Post("http://"+s.http+"/api/v2/silences", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("silence: %v %v", resp, err)
	}
	resp.Body.Close()
	before := s.status()

	// More telemetry goes on during the backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				sendQueueDepth(t, s, 1)
			}
		}
	}()
	file := filepath.Join(dir, "b.tar")
	out, err := exec.Command(binary, "backup", "--url", "http://"+s.http, "--out", file).CombinedOutput()
	close(stop)
	wg.Wait()
	if err != nil || !strings.Contains(string(out), "wrote "+file) {
		t.Fatalf("outpost backup: %v\n%s\n%s", err, out, s.logs())
	}
	s.stop()

	restored := filepath.Join(dir, "restored")
	if out, err := exec.Command(binary, "restore", "--from", file, "--data", restored).CombinedOutput(); err != nil {
		t.Fatalf("outpost restore: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "restore", "--from", file, "--data", restored).CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Errorf("restore into a used directory: %v %s", err, out)
	}
	r := startServer(t, restored)
	defer r.stop()
	after := r.status()
	if after.Ingested.Points < before.Ingested.Points || after.Ingested.LogRecords != before.Ingested.LogRecords || after.Ingested.Spans != before.Ingested.Spans {
		t.Errorf("counters: before the backup %+v, restored %+v", before.Ingested, after.Ingested)
	}
	if got := instant(t, r, `sum(orders_total)`, time.Now()); len(got) != 1 {
		t.Errorf("orders_total after restore: %v", got)
	}
	code, b := r.get("/api/v1/logs?query=" + "shipped" + "&limit=100")
	var logs struct {
		Total int `json:"total"`
	}
	json.Unmarshal(b, &logs)
	if code != 200 || logs.Total != 40 {
		t.Errorf("logs after restore: %d %s", code, b)
	}
	code, b = r.get("/api/traces?service=e2e-grpc&limit=100")
	var traces struct {
		Data []json.RawMessage `json:"data"`
	}
	json.Unmarshal(b, &traces)
	if code != 200 || len(traces.Data) == 0 {
		t.Errorf("traces after restore: %d %.300s", code, b)
	}
	code, b = r.get("/api/v2/silences")
	if code != 200 || !strings.Contains(string(b), "kept by the backup") {
		t.Errorf("silences after restore: %d %s", code, b)
	}
	if _, err := os.Stat(filepath.Join(restored, "LOCK")); err != nil {
		t.Errorf("the restored directory is not in use: %v", err)
	}
}
