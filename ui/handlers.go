package ui

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"

	"outpost/detect/incident"
	"outpost/store"
)

// StatsSource is what the Overview needs: the store's counters and a few facts.
type StatsSource interface {
	Totals() store.Counts
	Rates() store.Rates
	Services() []store.Service
	DiskUsage() int64
	Started() time.Time
	Dir() string
}

// Options configure the UI handlers.
type Options struct {
	Version string
	Logger  *slog.Logger // nil means slog.Default()
	Now     func() time.Time
}

// Handler serves the UI pages.
type Handler struct {
	stats StatsSource
	opts  Options
	mux   *http.ServeMux

	once    sync.Once
	claimed map[string]bool // navigation paths served by a real page

	incidents IncidentLister // nil: the Overview shows no incidents
}

// IncidentLister lists incidents: *incident.Manager.
type IncidentLister interface {
	List(state string, limit int) []incident.Incident
}

// ShowIncidents makes the Overview list the open incidents of src. Call it
// before serving.
func (h *Handler) ShowIncidents(src IncidentLister) { h.incidents = src }

// New returns the UI handler; mount it at "/".
func New(stats StatsSource, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{stats: stats, opts: opts, mux: http.NewServeMux(), claimed: map[string]bool{}}
	h.mux.HandleFunc("GET /{$}", h.overview)
	h.mux.HandleFunc("GET /ui/overview/stats", h.overviewStats)
	return h
}

// Handle mounts a page or a fragment of one. A page mounted at a navigation path
// ("GET /logs") replaces the notice that the page is not built yet. Call Handle
// before serving.
func (h *Handler) Handle(pattern string, handler http.Handler) {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		h.claimed[path] = true
	} else {
		h.claimed[pattern] = true
	}
	h.mux.Handle(pattern, handler)
}

// mountNotBuilt says plainly, on each navigation path no page claimed, that the
// page does not exist yet.
func (h *Handler) mountNotBuilt() {
	notBuilt := map[string][2]string{
		"/graph":     {"metrics", "The Metrics page will chart PromQL queries over the stored series."},
		"/anomalies": {"anomalies", "The Anomalies page will list the series the detector finds anomalous."},
		"/logs":      {"logs", "The Logs page will search, count and tail log records."},
		"/traces":    {"traces", "The Traces page will search traces and show waterfalls and the service map."},
		"/incidents": {"incidents", "The Incidents page will list what the detectors and alert rules found, with the evidence."},
		"/settings":  {"settings", "The Settings page will manage alert rules, receivers and retention."},
	}
	for path, v := range notBuilt {
		if h.claimed[path] {
			continue
		}
		key, what := v[0], v[1]
		title := titleOf(key)
		h.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			h.render(w, r, http.StatusOK, Layout(title, key, h.opts.Version), NotBuilt(title, what))
		})
	}
}

func titleOf(key string) string {
	for _, n := range navItems {
		if n.Key == key {
			return n.Label
		}
	}
	return key
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.mountNotBuilt)
	h.mux.ServeHTTP(w, r)
}

// Page renders body inside the layout, with the navigation entry key marked
// active: the way pages in other files draw themselves.
func (h *Handler) Page(w http.ResponseWriter, r *http.Request, title, key string, body templ.Component) {
	h.render(w, r, http.StatusOK, Layout(title, key, h.opts.Version), body)
}

// Fragment renders a component alone, for htmx swaps.
func (h *Handler) Fragment(w http.ResponseWriter, r *http.Request, c templ.Component) {
	h.renderFragment(w, r, c)
}

// Fail shows an error page and logs the cause.
func (h *Handler) Fail(w http.ResponseWriter, r *http.Request, e *Error) { h.fail(w, r, e) }

func (h *Handler) overviewData() OverviewData {
	now := h.opts.Now()
	svcs := h.stats.Services()
	rows := make([]ServiceRow, len(svcs))
	for i, s := range svcs {
		rows[i] = ServiceRow{
			Name:       s.Name,
			Points:     s.Counts.Points,
			LogRecords: s.Counts.LogRecords,
			Spans:      s.Counts.Spans,
			LastSeen:   formatAgo(s.LastSeen, now),
		}
	}
	var incidents []IncidentRow
	if h.incidents != nil {
		for _, inc := range h.incidents.List("active", 10) {
			incidents = append(incidents, incidentRow(inc, now))
		}
	}
	return OverviewData{
		Incidents: incidents, ShowIncidents: h.incidents != nil,
		Version:   h.opts.Version,
		DataDir:   h.stats.Dir(),
		Uptime:    formatDuration(now.Sub(h.stats.Started())),
		DiskBytes: h.stats.DiskUsage(),
		Totals:    h.stats.Totals(),
		Rates:     h.stats.Rates(),
		Services:  rows,
	}
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, Layout("Overview", "overview", h.opts.Version), Overview(h.overviewData()))
}

func (h *Handler) overviewStats(w http.ResponseWriter, r *http.Request) {
	h.renderFragment(w, r, OverviewStats(h.overviewData()))
}

// Error is a failure to show a page: the status code, what the user is told, and
// the cause (logged, never shown).
type Error struct {
	Code        int
	UserMessage string
	Err         error
}

func (e *Error) Error() string { return e.UserMessage + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// render draws body inside the layout into a buffer, then writes it; a render
// failure becomes an error page instead of half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, layout, body templ.Component) {
	var buf bytes.Buffer
	ctx := templ.WithChildren(r.Context(), body)
	if err := layout.Render(ctx, &buf); err != nil {
		h.fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The page could not be rendered.", Err: err})
		return
	}
	writeHTML(w, code, buf.Bytes())
}

// renderStandalone writes a whole page that draws its own frame.
func (h *Handler) renderStandalone(w http.ResponseWriter, r *http.Request, code int, page templ.Component) {
	var buf bytes.Buffer
	if err := page.Render(r.Context(), &buf); err != nil {
		h.fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The page could not be rendered.", Err: err})
		return
	}
	writeHTML(w, code, buf.Bytes())
}

func (h *Handler) renderFragment(w http.ResponseWriter, r *http.Request, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		h.fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The page could not be rendered.", Err: err})
		return
	}
	writeHTML(w, http.StatusOK, buf.Bytes())
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, e *Error) {
	if !errors.Is(e.Err, context.Canceled) {
		h.opts.Logger.Error("ui request failed", "path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
	var buf bytes.Buffer
	ctx := templ.WithChildren(r.Context(), ErrorPage(e.Code, e.UserMessage))
	if err := Layout("Error", "", h.opts.Version).Render(ctx, &buf); err != nil {
		http.Error(w, e.UserMessage, e.Code)
		return
	}
	writeHTML(w, e.Code, buf.Bytes())
}

func writeHTML(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(body)
}
