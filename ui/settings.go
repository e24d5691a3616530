package ui

import "net/http"

// Setting is one flag of the running server: its value, its default and where
// the value came from ("flag", "default", or the OUTPOST_… variable). Secrets
// arrive already hidden.
type Setting struct {
	Name, Value, Default, Source, Usage string
}

// SettingsPage shows how the server runs: its configuration and data
// directory, with links to the pages that change alerting.
type SettingsPage struct {
	h        *Handler
	settings []Setting
}

// NewSettingsPage returns the Settings page over the server's settings.
func NewSettingsPage(h *Handler, settings []Setting) *SettingsPage {
	return &SettingsPage{h: h, settings: settings}
}

// SettingsData is what the Settings page shows.
type SettingsData struct {
	Settings  []Setting
	DataDir   string
	DiskBytes int64
	Version   string
}

func (p *SettingsPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := SettingsData{Settings: p.settings, DataDir: p.h.stats.Dir(), DiskBytes: p.h.stats.DiskUsage(), Version: p.h.opts.Version}
	p.h.Page(w, r, "Settings", "settings", SettingsBody(d))
}
