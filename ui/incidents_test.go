package ui

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect"
	"outpost/detect/incident"
)

// The Incidents pages over a real incident manager: the list, an incident's
// page with its evidence and actions, the actions themselves (acknowledge,
// note, silence, resolve) and the Overview's panel.
func TestIncidentPages(t *testing.T) {
	now := time.Date(2026, 3, 5, 14, 10, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var anomalies []detect.Anomaly
	m, err := incident.Open(incident.Options{Dir: t.TempDir(), Interval: -1, Now: clock, Anomalies: func() []detect.Anomaly { return anomalies }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var silenced []string
	silence := func(ms map[string]string, until time.Time, by, comment string) (string, error) {
		silenced = append(silenced, labels.FromMap(ms).String()+" until "+until.Format(time.RFC3339)+" by "+by+": "+comment)
		return "s-1", nil
	}
	h := New(fakeStats{}, Options{Version: "v1", Now: clock})
	NewIncidentPages(h, m, silence).Register(h.Handle)
	h.ShowIncidents(m)
	do := func(method, path string, form url.Values, wantCode int) string {
		t.Helper()
		var req = httptest.NewRequest(method, path, nil)
		if form != nil {
			req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != wantCode {
			t.Fatalf("%s %s: %d, want %d\n%s", method, path, rec.Code, wantCode, rec.Body)
		}
		return rec.Body.String()
	}
	if body := do("GET", "/incidents", nil, 200); !strings.Contains(body, `data-testid="no-open-incidents"`) || strings.Contains(body, "not-built") {
		t.Fatalf("empty list:\n%s", body)
	}
	if body := do("GET", "/", nil, 200); !strings.Contains(body, `data-testid="overview-no-incidents"`) {
		t.Fatalf("overview without incidents:\n%s", body)
	}

	m.ObserveAlert("rate(http_errors_total[5m]) > 1", incident.Alert{
		Labels:      map[string]string{"alertname": "HighErrors", "job": "checkout", "severity": "critical"},
		Annotations: map[string]string{"summary": "<script>alert(1)</script> errors"}, StartsAt: now.Add(-5 * time.Minute),
	})
	ls := labels.FromStrings(labels.MetricName, "latency_seconds", "job", "checkout")
	anomalies = []detect.Anomaly{{Labels: ls, Metric: "latency_seconds", Selector: detect.Selector(ls), Score: 0.97, Current: 0.97,
		Since: now.Add(-4 * time.Minute), Last: now, Active: true, Value: 2.4, Lower: 0.3, Upper: 0.6, Explanation: "latency 2.4, expected 0.3–0.6"}}
	m.Tick()

	body := do("GET", "/incidents", nil, 200)
	if !strings.Contains(body, `href="/incidents/1"`) || !strings.Contains(body, "HighErrors on checkout") || !strings.Contains(body, "1 alert, 1 anomaly (2 active)") {
		t.Fatalf("list:\n%s", body)
	}
	if frag := do("GET", "/ui/incidents/list", nil, 200); strings.Contains(frag, "<html") || !strings.Contains(frag, "HighErrors on checkout") {
		t.Fatalf("fragment:\n%s", frag)
	}
	if body := do("GET", "/", nil, 200); !strings.Contains(body, `data-testid="overview-incident-list"`) || !strings.Contains(body, "HighErrors on checkout") {
		t.Fatalf("overview:\n%s", body)
	}

	page := do("GET", "/incidents/1", nil, 200)
	for _, want := range []string{
		`data-testid="ack-form"`, `data-testid="silence-form"`, `job=&#34;checkout&#34;`,
		`data-query="rate(http_errors_total[5m]) &gt; 1"`,
		`data-lower="outpost_expected_lower{anomaly_metric=&#34;latency_seconds&#34;, job=&#34;checkout&#34;}"`,
		"&lt;script&gt;alert(1)&lt;/script&gt; errors", "expected 0.3 – 0.6", `data-testid="no-moved"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("incident page lacks %s", want)
		}
	}
	if strings.Contains(page, "<script>alert(1)") {
		t.Fatal("alert text reached the page unescaped")
	}

	do("POST", "/incidents/1/acknowledge", url.Values{"by": {"ana"}, "comment": {"looking"}}, 303)
	do("POST", "/incidents/1/acknowledge", url.Values{"by": {"ana"}}, 409)
	do("POST", "/incidents/1/note", url.Values{"comment": {""}}, 400)
	do("POST", "/incidents/1/note", url.Values{"by": {"bob"}, "comment": {"rolled back v42"}}, 303)
	do("POST", "/incidents/1/silence", url.Values{"for": {"forever"}}, 400)
	do("POST", "/incidents/1/silence", url.Values{"for": {"2h"}, "by": {"ana"}}, 303)
	if len(silenced) != 1 || silenced[0] != `{job="checkout"} until 2026-03-05T16:10:00Z by ana: silenced from incident 1` {
		t.Fatalf("silences %q", silenced)
	}
	page = do("GET", "/incidents/1", nil, 200)
	for _, want := range []string{"ana at 14:10 UTC", "rolled back v42", "(silence s-1)", `data-testid="resolve-form"`} {
		if !strings.Contains(page, want) {
			t.Errorf("after actions, the page lacks %q", want)
		}
	}
	if strings.Contains(page, `data-testid="ack-form"`) {
		t.Error("acknowledged incident still offers to acknowledge")
	}
	do("POST", "/incidents/1/resolve", url.Values{"comment": {"fixed"}}, 303)
	page = do("GET", "/incidents/1", nil, 200)
	if !strings.Contains(page, "by anonymous") || strings.Contains(page, `data-testid="resolve-form"`) {
		t.Errorf("resolved page:\n%s", page)
	}
	do("GET", "/incidents/7", nil, 404)
	do("GET", "/incidents/x", nil, 404)
	do("POST", "/incidents/7/resolve", url.Values{}, 404)
}
