package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"outpost/detect/incident"
)

func newIncidentsServer(t *testing.T) (*httptest.Server, *incident.Manager) {
	t.Helper()
	now := time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC)
	m, err := incident.Open(incident.Options{Dir: t.TempDir(), Interval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mux := http.NewServeMux()
	NewIncidents(m).Register(func(p string, h http.Handler) { mux.Handle(p, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, m
}

func TestIncidentsAPI(t *testing.T) {
	srv, m := newIncidentsServer(t)
	start := time.Date(2026, 3, 5, 13, 58, 0, 0, time.UTC)
	id := m.ObserveAlert("rate(errors_total[5m]) > 1", incident.Alert{
		Labels:      map[string]string{"alertname": "HighErrors", "job": "checkout", "severity": "critical"},
		Annotations: map[string]string{"summary": "errors on checkout"}, StartsAt: start,
	})
	m.ObserveAlert("up == 0", incident.Alert{Labels: map[string]string{"alertname": "Down", "job": "db"}, StartsAt: start})

	type envelope struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	call := func(method, path, ctype, body string, wantCode int) envelope {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e envelope
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if resp.StatusCode != wantCode {
			t.Fatalf("%s %s: %d %+v, want %d", method, path, resp.StatusCode, e, wantCode)
		}
		return e
	}

	var list []incident.Incident
	json.Unmarshal(call("GET", "/api/v1/incidents", "", "", 200).Data, &list)
	if len(list) != 2 || list[0].ID != id || list[0].Severity != "critical" || list[0].Members[0].Expr != "rate(errors_total[5m]) > 1" {
		t.Fatalf("list %+v", list)
	}
	var one IncidentJSON
	json.Unmarshal(call("GET", "/api/v1/incidents/1", "", "", 200).Data, &one)
	if one.ID != 1 || one.Service != "checkout" || one.Moved == nil || len(one.Events) != 1 {
		t.Fatalf("one %+v", one)
	}
	json.Unmarshal(call("POST", "/api/v1/incidents/1/acknowledge", "application/x-www-form-urlencoded", "by=ana&comment=on+it", 200).Data, &one.Incident)
	if one.State != incident.StateAcked || one.AckedBy != "ana" {
		t.Fatalf("after acknowledge %+v", one.Incident)
	}
	call("POST", "/api/v1/incidents/1/acknowledge", "", "", 409)
	call("POST", "/api/v1/incidents/1/notes", "application/json", `{"by":"bob","comment":"rollback started"}`, 200)
	call("POST", "/api/v1/incidents/1/notes", "application/json", `{"by":"bob"}`, 400)
	json.Unmarshal(call("POST", "/api/v1/incidents/1/resolve", "application/json", `{"comment":"fixed"}`, 200).Data, &one.Incident)
	if one.State != incident.StateResolved || one.ResolvedBy != "anonymous" {
		t.Fatalf("after resolve %+v", one.Incident)
	}
	json.Unmarshal(call("GET", "/api/v1/incidents?state=active", "", "", 200).Data, &list)
	if len(list) != 1 || list[0].Service != "db" {
		t.Fatalf("active %+v", list)
	}
	for _, bad := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/api/v1/incidents?state=closed", "", 400},
		{"GET", "/api/v1/incidents?limit=-1", "", 400},
		{"GET", "/api/v1/incidents/abc", "", 400},
		{"GET", "/api/v1/incidents/0", "", 400},
		{"GET", "/api/v1/incidents/99", "", 404},
		{"POST", "/api/v1/incidents/99/resolve", "{}", 404},
		{"POST", "/api/v1/incidents/2/notes", "{}", 400},
		{"POST", "/api/v1/incidents/2/resolve", `{"by":`, 400},
	} {
		if e := call(bad.method, bad.path, "application/json", bad.body, bad.code); e.Status != "error" || e.Error == "" {
			t.Errorf("%s %s: %+v", bad.method, bad.path, e)
		}
	}
}
