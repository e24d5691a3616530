package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{formatCount(0), "0"},
		{formatCount(999), "999"},
		{formatCount(1000), "1,000"},
		{formatCount(1234567), "1,234,567"},
		{formatRate(0), "0"},
		{formatRate(2.345), "2.3"},
		{formatRate(12345.6), "12,346"},
		{formatRate(2.5e6), "2.50 M"},
		{formatBytes(512), "512 B"},
		{formatBytes(1536), "1.5 KiB"},
		{formatBytes(3 << 30), "3.0 GiB"},
		{formatDuration(42 * time.Second), "42s"},
		{formatDuration(125 * time.Minute), "2h 5m"},
		{formatDuration(76 * time.Hour), "3d 4h"},
		{formatAgo(time.Time{}, time.Now()), "never"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

type fakeStats struct{}

func (fakeStats) Totals() store.Counts { return store.Counts{Points: 1234, LogRecords: 5, Spans: 6} }
func (fakeStats) Rates() store.Rates   { return store.Rates{Points: 10} }
func (fakeStats) Services() []store.Service {
	return []store.Service{{Name: "<script>alert(1)</script>", Counts: store.Counts{Spans: 6}, LastSeen: time.Unix(100, 0)}}
}
func (fakeStats) DiskUsage() int64   { return 2048 }
func (fakeStats) Started() time.Time { return time.Unix(0, 0) }
func (fakeStats) Dir() string        { return "/var/lib/outpost" }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestOverviewAndNavigation(t *testing.T) {
	h := New(fakeStats{}, Options{Version: "v1", Now: func() time.Time { return time.Unix(160, 0) }})
	h.Handle("GET /logs", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "real logs page") }))
	code, body := get(t, h, "/")
	for _, want := range []string{"1,234", "2.0 KiB", "/var/lib/outpost", "1m 0s ago", `data-testid="nav-traces"`, "&lt;script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("Overview lacks %q", want)
		}
	}
	if code != 200 || strings.Contains(body, "<script>alert") {
		t.Errorf("Overview: code %d, or a service name rendered unescaped", code)
	}
	if _, frag := get(t, h, "/ui/overview/stats"); strings.Contains(frag, "<html") || !strings.Contains(frag, `id="overview-stats"`) {
		t.Errorf("stats fragment is not a bare fragment")
	}
	if _, body := get(t, h, "/traces"); !strings.Contains(body, "not built yet") {
		t.Errorf("/traces does not say it is not built")
	}
	if _, body := get(t, h, "/logs"); body != "real logs page" {
		t.Errorf("a mounted page did not replace the notice: %q", body)
	}
	if code, _ := get(t, h, "/nope"); code != 404 {
		t.Errorf("/nope = %d", code)
	}
}
