package ui

import (
	"strings"
	"testing"
)

func TestSettingsPage(t *testing.T) {
	h := New(fakeStats{}, Options{Version: "v1"})
	h.Handle("GET /settings", NewSettingsPage(h, []Setting{
		{Name: "retention", Value: "720h0m0s", Default: "360h0m0s", Source: "OUTPOST_RETENTION", Usage: "how long <data> is kept"},
		{Name: "ingest-token", Value: "(set, not shown)", Source: "flag"},
	}))
	code, body := get(t, h, "/settings")
	if code != 200 {
		t.Fatalf("GET /settings: %d", code)
	}
	for _, want := range []string{
		`data-testid="settings-page"`, "/var/lib/outpost", "2.0 KiB", "--retention", "720h0m0s", "OUTPOST_RETENTION",
		"default <code>360h0m0s</code>", "how long &lt;data&gt; is kept", "(set, not shown)", `href="/receivers"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if strings.Contains(body, "not-built") {
		t.Error("the not-built notice is shown")
	}
}
