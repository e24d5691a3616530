package ui

import (
	"strings"
	"testing"
)

func TestLogsPageRendersStateEscaped(t *testing.T) {
	h := New(fakeStats{}, Options{Version: "v1"})
	h.Handle("GET /logs", NewLogsPage(h))
	code, body := get(t, h, `/logs?query=%22%3E%3Cscript%3Ealert(1)%3C/script%3E&range=6h`)
	if code != 200 {
		t.Fatalf("GET /logs: %d %s", code, body)
	}
	for _, want := range []string{
		`data-testid="logs-page"`,
		`value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`,
		`<option value="6h" selected>`,
		`data-testid="logs-hint"`,
		`data-testid="logs-histogram"`,
		`data-testid="logs-live"`,
		`class="active" data-testid="nav-logs"`,
		`/assets/logs.js`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "not-built") {
		t.Error("page holds the query unescaped or the not-built notice")
	}
	// A range dragged on the chart comes back as a custom range.
	_, body = get(t, h, `/logs?start=2026-01-01T00:00:00Z&end=1767229200&range=99y`)
	for _, want := range []string{`<option value="custom" selected`, `value="2026-01-01T00:00:00Z"`, `value="1767229200"`} {
		if !strings.Contains(body, want) {
			t.Errorf("custom range: page lacks %q", want)
		}
	}
	if strings.Contains(body, `<option value="1h" selected>`) {
		t.Error("custom range also selects a preset")
	}
}
