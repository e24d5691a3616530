package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect"
	"outpost/detect/incident"
)

// IncidentSource is what the Incidents pages read and change:
// *incident.Manager.
type IncidentSource interface {
	List(state string, limit int) []incident.Incident
	Get(id uint64) (incident.Incident, error)
	Moved(ctx context.Context, id uint64, limit int) ([]incident.Moved, error)
	Acknowledge(id uint64, who, comment string) error
	Resolve(id uint64, who, comment string) error
	Note(id uint64, kind, who, text string) error
}

// Silencer creates a silence with equality matchers until a time, and returns
// its id: the notifier's. Nil: incidents cannot be silenced from their page.
type Silencer func(matchers map[string]string, until time.Time, by, comment string) (string, error)

// IncidentPages are the Incidents list and each incident's page, with the forms
// that acknowledge, resolve, silence and annotate one.
type IncidentPages struct {
	h       *Handler
	src     IncidentSource
	silence Silencer
}

// NewIncidentPages returns the Incidents pages drawn inside h's layout. silence
// may be nil.
func NewIncidentPages(h *Handler, src IncidentSource, silence Silencer) *IncidentPages {
	return &IncidentPages{h: h, src: src, silence: silence}
}

// Register mounts the pages with handle (Handler.Handle).
func (p *IncidentPages) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /incidents", http.HandlerFunc(p.list))
	handle("GET /ui/incidents/list", http.HandlerFunc(p.listFragment))
	handle("GET /incidents/{id}", http.HandlerFunc(p.page))
	handle("POST /incidents/{id}/acknowledge", p.action(func(id uint64, by, comment string) error {
		return p.src.Acknowledge(id, by, comment)
	}))
	handle("POST /incidents/{id}/resolve", p.action(func(id uint64, by, comment string) error {
		return p.src.Resolve(id, by, comment)
	}))
	handle("POST /incidents/{id}/note", p.action(func(id uint64, by, comment string) error {
		if strings.TrimSpace(comment) == "" {
			return errEmptyNote
		}
		return p.src.Note(id, "note", by, comment)
	}))
	handle("POST /incidents/{id}/silence", http.HandlerFunc(p.silenceIncident))
}

var errEmptyNote = errors.New("empty note")

// IncidentRow is one line of the Incidents list.
type IncidentRow struct {
	ID       string
	URL      string
	Title    string
	Service  string
	Severity string
	State    string
	Started  string
	Duration string
	Members  string // "3 alerts, 1 anomaly (2 active)"
}

// IncidentsData is the Incidents list.
type IncidentsData struct {
	Active, Resolved []IncidentRow
}

func (p *IncidentPages) listData() IncidentsData {
	now := p.h.opts.Now()
	var d IncidentsData
	for _, inc := range p.src.List("", 200) {
		row := incidentRow(inc, now)
		if inc.State == incident.StateResolved {
			if len(d.Resolved) < 50 {
				d.Resolved = append(d.Resolved, row)
			}
			continue
		}
		d.Active = append(d.Active, row)
	}
	return d
}

func incidentRow(inc incident.Incident, now time.Time) IncidentRow {
	end := now
	if inc.State == incident.StateResolved {
		end = inc.ResolvedAt
	}
	alerts, anomalies, active := 0, 0, 0
	for _, m := range inc.Members {
		if m.Kind == incident.KindAnomaly {
			anomalies++
		} else {
			alerts++
		}
		if m.Active {
			active++
		}
	}
	var parts []string
	if alerts > 0 {
		parts = append(parts, plural(alerts, "alert"))
	}
	if anomalies > 0 {
		parts = append(parts, plural(anomalies, "anomaly"))
	}
	members := strings.Join(parts, ", ")
	if inc.State != incident.StateResolved {
		members += " (" + strconv.Itoa(active) + " active)"
	}
	sev := inc.Severity
	if sev == "" {
		sev = "none"
	}
	return IncidentRow{
		ID: strconv.FormatUint(inc.ID, 10), URL: "/incidents/" + strconv.FormatUint(inc.ID, 10),
		Title: inc.Title, Service: inc.Service, Severity: sev, State: inc.State,
		Started: inc.OpenedAt.UTC().Format("2006-01-02 15:04 UTC"), Duration: formatDuration(end.Sub(inc.OpenedAt)),
		Members: members,
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "y") {
		return strconv.Itoa(n) + " " + strings.TrimSuffix(what, "y") + "ies"
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func (p *IncidentPages) list(w http.ResponseWriter, r *http.Request) {
	p.h.Page(w, r, "Incidents", "incidents", IncidentsBody(p.listData()))
}

func (p *IncidentPages) listFragment(w http.ResponseWriter, r *http.Request) {
	p.h.Fragment(w, r, IncidentLists(p.listData()))
}

// IncidentData is one incident's page.
type IncidentData struct {
	Row        IncidentRow
	Inc        incident.Incident
	Opened     string
	AckedBy    string
	ResolvedBy string
	Members    []MemberRow
	Events     []EventRow
	Charts     []EvidenceChart
	Moved      []MovedRow
	MovedErr   string
	CanSilence bool
	SilenceOn  string // the matchers a silence would take, e.g. job="checkout"
	Notice     string // what the last action did
}

// MemberRow is one alert or anomalous series of an incident.
type MemberRow struct {
	Kind, Name, Expr, Summary, Severity string
	Labels                              []LabelPair
	Since, Ended                        string
	Active                              bool
	Band                                string
	Chart                               string // the Metrics page charting it
}

// EventRow is one line of the timeline.
type EventRow struct{ Time, Kind, By, Text string }

// EvidenceChart is a chart the page draws: a query over a time range, and for
// an anomalous series the queries of its expected band.
type EvidenceChart struct {
	Title        string
	Query        string
	Lower, Upper string
	Start, End   int64 // Unix seconds
	Step         int64
	Mark         int64 // when the incident opened
	Link         string
}

// MovedRow is a series of the service that moved when the incident opened.
type MovedRow struct {
	Selector, Before, After, Peak, Change, Chart string
	Counter                                      bool
}

func (p *IncidentPages) id(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "There is no such incident.", Err: err})
		return 0, false
	}
	return id, true
}

func (p *IncidentPages) page(w http.ResponseWriter, r *http.Request) {
	id, ok := p.id(w, r)
	if !ok {
		return
	}
	inc, err := p.src.Get(id)
	if err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "There is no incident " + strconv.FormatUint(id, 10) + ".", Err: err})
		return
	}
	now := p.h.opts.Now()
	d := IncidentData{Row: incidentRow(inc, now), Inc: inc, Opened: inc.OpenedAt.UTC().Format("2006-01-02 15:04:05 UTC"), Notice: r.URL.Query().Get("done")}
	if inc.AckedBy != "" {
		d.AckedBy = inc.AckedBy + " at " + inc.AckedAt.UTC().Format("15:04 UTC")
	}
	if inc.State == incident.StateResolved {
		d.ResolvedBy = "by itself"
		if inc.ResolvedBy != "" {
			d.ResolvedBy = "by " + inc.ResolvedBy
		}
		d.ResolvedBy += " at " + inc.ResolvedAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	// Charts cover from half an hour before the first member to five minutes
	// after the last sighting (or now).
	from := inc.OpenedAt
	to := now
	if inc.State == incident.StateResolved {
		to = inc.ResolvedAt.Add(5 * time.Minute)
	}
	for _, m := range inc.Members {
		if !m.Since.IsZero() && m.Since.Before(from) {
			from = m.Since
		}
	}
	from = from.Add(-30 * time.Minute)
	if to.Before(from.Add(time.Hour)) {
		to = from.Add(time.Hour)
	}
	step := max(15, int64(to.Sub(from).Seconds())/240)
	for _, m := range inc.Members {
		row := MemberRow{
			Kind: m.Kind, Name: m.Name, Expr: m.Expr, Summary: m.Summary, Severity: m.Severity,
			Labels: pairs(labels.FromMap(m.Labels)), Since: m.Since.UTC().Format("2006-01-02 15:04 UTC"), Active: m.Active,
		}
		if !m.Ended.IsZero() {
			row.Ended = m.Ended.UTC().Format("15:04 UTC")
		}
		if m.Lower != nil && m.Upper != nil {
			row.Band = strconv.FormatFloat(*m.Lower, 'g', 4, 64) + " – " + strconv.FormatFloat(*m.Upper, 'g', 4, 64)
		}
		c := EvidenceChart{Title: m.Name, Query: m.Expr, Start: from.Unix(), End: to.Unix(), Step: step, Mark: inc.OpenedAt.Unix()}
		if m.Kind == incident.KindAnomaly {
			if m.Counter {
				c.Query = "rate(" + m.Expr + "[5m])"
			}
			c.Lower, c.Upper = bandQuery(detect.LowerMetric, m.Labels), bandQuery(detect.UpperMetric, m.Labels)
			c.Title = "Anomaly: " + c.Query
		} else {
			c.Title = "Alert " + m.Name + ": " + m.Expr
		}
		c.Link = graphLink(c.Query, c.Lower != "", to.Sub(from))
		row.Chart = c.Link
		d.Members = append(d.Members, row)
		if len(d.Charts) < 6 && !slices.ContainsFunc(d.Charts, func(x EvidenceChart) bool { return x.Query == c.Query }) {
			d.Charts = append(d.Charts, c)
		}
	}
	for i := len(inc.Events) - 1; i >= 0; i-- {
		e := inc.Events[i]
		d.Events = append(d.Events, EventRow{Time: e.Time.UTC().Format("2006-01-02 15:04:05"), Kind: e.Kind, By: e.By, Text: e.Text})
	}
	moved, err := p.src.Moved(r.Context(), id, 10)
	if err != nil {
		d.MovedErr = "The other series of the service could not be read: " + err.Error()
	}
	for _, mv := range moved {
		q := mv.Selector
		if mv.Counter {
			q = "rate(" + q + "[5m])"
		}
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
		d.Moved = append(d.Moved, MovedRow{
			Selector: q, Before: f(mv.Before), After: f(mv.After), Peak: f(mv.Peak),
			Change: strconv.FormatFloat(mv.Change, 'f', 1, 64) + "σ", Chart: graphLink(q, false, to.Sub(from)), Counter: mv.Counter,
		})
	}
	if p.silence != nil && inc.State != incident.StateResolved {
		d.CanSilence = true
		d.SilenceOn = silenceMatchers(inc).String()
	}
	p.h.Page(w, r, "Incident "+d.Row.ID, "incidents", IncidentBody(d))
}

// bandQuery is the selector of the detector's band series for a watched
// series: its labels, its metric name in anomaly_metric.
func bandQuery(out string, ls map[string]string) string {
	b := labels.NewBuilder(labels.FromMap(ls))
	b.Set(detect.MetricLabel, ls[labels.MetricName])
	b.Set(labels.MetricName, out)
	return detect.Selector(b.Labels())
}

func graphLink(q string, band bool, span time.Duration) string {
	v := url.Values{"q": {q}, "range": {rangeCovering(span)}}
	if band {
		v.Set("band", "1")
	}
	return "/graph?" + v.Encode()
}

// silenceMatchers are what a silence of the incident matches: the label that
// names its service, or its group's label.
func silenceMatchers(inc incident.Incident) labels.Labels {
	if inc.Service != "" && inc.ServiceBy != "" {
		return labels.FromStrings(inc.ServiceBy, inc.Service)
	}
	// "alertname=X", or "metric=X", the label anomaly alerts carry.
	k, v, _ := strings.Cut(inc.Group, "=")
	return labels.FromStrings(k, v)
}

func (p *IncidentPages) action(do func(id uint64, by, comment string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := p.id(w, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "The form could not be read.", Err: err})
			return
		}
		by := strings.TrimSpace(r.PostForm.Get("by"))
		if by == "" {
			by = "anonymous"
		}
		if err := do(id, by, r.PostForm.Get("comment")); err != nil {
			p.actionFailed(w, r, err)
			return
		}
		http.Redirect(w, r, "/incidents/"+strconv.FormatUint(id, 10), http.StatusSeeOther)
	})
}

func (p *IncidentPages) actionFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, incident.ErrNotFound):
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "There is no such incident.", Err: err})
	case errors.Is(err, incident.ErrState):
		p.h.Fail(w, r, &Error{Code: http.StatusConflict, UserMessage: "The incident changed meanwhile: " + err.Error(), Err: err})
	case errors.Is(err, errEmptyNote):
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "A note needs some text.", Err: err})
	default:
		p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The incident could not be changed.", Err: err})
	}
}

// silenceIncident creates a silence of the incident's service (or group) for
// the duration chosen, and notes it in the timeline.
func (p *IncidentPages) silenceIncident(w http.ResponseWriter, r *http.Request) {
	id, ok := p.id(w, r)
	if !ok {
		return
	}
	if p.silence == nil {
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "Silences are not available.", Err: errors.New("no silencer")})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "The form could not be read.", Err: err})
		return
	}
	d, err := parseRange(r.PostForm.Get("for"))
	if err != nil || d <= 0 || d > 30*24*time.Hour {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "Silence for how long? Give a duration such as 1h (at most 30 days).", Err: err})
		return
	}
	inc, err := p.src.Get(id)
	if err != nil {
		p.actionFailed(w, r, err)
		return
	}
	by := strings.TrimSpace(r.PostForm.Get("by"))
	if by == "" {
		by = "anonymous"
	}
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	if comment == "" {
		comment = "silenced from incident " + strconv.FormatUint(id, 10)
	}
	ms := silenceMatchers(inc)
	until := p.h.opts.Now().Add(d)
	sid, err := p.silence(ms.Map(), until, by, comment)
	if err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "The silence could not be created: " + err.Error(), Err: err})
		return
	}
	text := "silenced " + ms.String() + " until " + until.UTC().Format("2006-01-02 15:04 UTC") + " (silence " + sid + ")"
	if err := p.src.Note(id, "silenced", by, text); err != nil {
		p.actionFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/incidents/"+strconv.FormatUint(id, 10), http.StatusSeeOther)
}
