package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/store"
)

func TestStatusHealthReadyMetrics(t *testing.T) {
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "cart")
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("add")
	if _, err := st.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	a := New(st, Options{Version: "v9.9.9"})
	srv := httptest.NewServer(a)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before SetReady = %d, want 503", code)
	}
	a.SetReady(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after SetReady = %d", code)
	}
	code, body := get("/api/v1/status")
	var s struct {
		Version  string         `json:"version"`
		Ingested map[string]int `json:"ingested"`
		Services []struct {
			Name     string         `json:"name"`
			Ingested map[string]int `json:"ingested"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 {
		t.Fatalf("status %d %v: %s", code, err, body)
	}
	if s.Version != "v9.9.9" || s.Ingested["spans"] != 1 || s.Ingested["points"] != 0 || s.Ingested["log_records"] != 0 {
		t.Errorf("status = %s", body)
	}
	if len(s.Services) != 1 || s.Services[0].Name != "cart" || s.Services[0].Ingested["spans"] != 1 {
		t.Errorf("services = %+v", s.Services)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"outpost_stored_spans_total 1", "outpost_data_directory_bytes", "go_memstats_alloc_bytes", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if a.Handles(httptest.NewRequest("GET", "/logs", nil)) {
		t.Error("API claims a UI path")
	}
	if !a.Handles(httptest.NewRequest("GET", "/api/v1/status", nil)) {
		t.Error("API does not claim /api/v1/status")
	}
}
