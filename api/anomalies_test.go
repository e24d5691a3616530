package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect"
)

// The endpoint lists what the live detector found: a series that shifted level is
// active with its score, band and explanation; a quiet one is absent.
func TestAnomaliesEndpoint(t *testing.T) {
	db := openDB(t)
	live, err := detect.NewLive(detect.LiveOptions{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	db.SetObserver(live.Observe)

	shifted := labels.FromStrings(labels.MetricName, "queue_depth", "job", "w")
	quiet := labels.FromStrings(labels.MetricName, "queue_depth", "job", "q")
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	app := db.Appender(context.Background())
	for i := 0; i < 2*24*60+30; i++ {
		ts := t0.Add(time.Duration(i) * time.Minute).UnixMilli()
		v := 10.0 + float64(i%5)*0.1
		app.Append(0, quiet, ts, v)
		if i >= 2*24*60 {
			v += 50
		}
		app.Append(0, shifted, ts, v)
		if i%100 == 99 {
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			app = db.Appender(context.Background())
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := live.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	NewAnomalies(live).Register(mux.Handle)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/anomalies", nil))
	var got struct {
		Status string        `json:"status"`
		Data   []AnomalyJSON `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || got.Status != "success" {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if len(got.Data) != 1 {
		t.Fatalf("anomalies = %s, want the shifted series only", rec.Body)
	}
	a := got.Data[0]
	shiftAt := t0.Add(2 * 24 * time.Hour)
	if a.Labels["job"] != "w" || a.Metric != "queue_depth" || !a.Active || a.Score < detect.AlertScore ||
		a.Since.Before(shiftAt) || a.Since.After(shiftAt.Add(10*time.Minute)) || a.Ended != nil {
		t.Errorf("anomaly = %+v, want queue_depth{job=w} active since about %v", a, shiftAt)
	}
	if a.Lower == nil || a.Upper == nil || a.Value == nil || *a.Value < 59 || *a.Upper > 20 || !strings.Contains(a.Explanation, "expected") {
		t.Errorf("band and explanation: %s", rec.Body)
	}
	if a.Selector != `queue_depth{job="w"}` {
		t.Errorf("selector = %q", a.Selector)
	}

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/anomalies?limit=x", nil))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "limit") {
		t.Errorf("bad limit: %d %s", rec.Code, rec.Body)
	}
}
