package ui

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect"
	"outpost/tsdb"
)

// The page lists what the live detector found over a real TSDB: the shifted
// series under "Anomalous now", with its explanation and a link that charts it
// with the band; label values are escaped.
func TestAnomaliesPageListsLiveAnomalies(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	live, err := detect.NewLive(detect.LiveOptions{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close(); db.Close() })
	db.SetObserver(live.Observe)

	h := New(fakeStats{}, Options{Version: "v1"})
	h.Handle("GET /anomalies", NewAnomaliesPage(h, live))
	get := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/anomalies", nil))
		if rec.Code != 200 {
			t.Fatalf("GET /anomalies: %d %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	if body := get(); !strings.Contains(body, `data-testid="no-active-anomalies"`) || strings.Contains(body, "not-built") {
		t.Fatalf("empty page:\n%s", body)
	}

	ls := labels.FromStrings(labels.MetricName, "disk_used_ratio", "mount", "<b>/var</b>")
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	app := db.Appender(context.Background())
	for i := 0; i < 2*24*60+20; i++ {
		v := 0.4 + float64(i%7)*0.001
		if i >= 2*24*60 {
			v = 0.95
		}
		app.Append(0, ls, t0.Add(time.Duration(i)*time.Minute).UnixMilli(), v)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := live.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	body := get()
	for _, want := range []string{
		`data-testid="active-anomalies"`,
		`disk_used_ratio{mount=&#34;&lt;b&gt;/var&lt;/b&gt;&#34;}`,
		"expected",
		"2026-01-07 00:0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<b>/var</b>") {
		t.Error("label value not escaped")
	}
	list := live.Anomalies()
	if len(list) != 1 {
		t.Fatalf("anomalies: %+v", list)
	}
	u, err := url.Parse(ChartURL(list[0]))
	if err != nil || u.Path != "/graph" || u.Query().Get("q") != list[0].Selector || u.Query().Get("band") != "1" || u.Query().Get("range") != "3h" {
		t.Errorf("chart link = %s", ChartURL(list[0]))
	}
}
