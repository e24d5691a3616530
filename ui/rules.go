package ui

import (
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect/rules"
	"outpost/detect/rules/promrules"
)

// RuleSource is what the Alert rules pages read: the rule manager
// (*rules.Manager). The editor changes groups through the rules API
// (/api/v1/rules/…), not through this interface.
type RuleSource interface {
	Groups() []*promrules.Group
	AlertingRules() []*promrules.AlertingRule
	LoadErrors() []rules.FileError
	UserGroup(name string) ([]byte, error)
	IsUserFile(file string) bool
}

// RulesPages are the Alert rules page ("GET /rules": groups, rules, their
// state and errors, active alerts, refused files) and the editor of the groups
// created in the UI ("GET /rules/new", "GET /rules/edit/{name}"). Mount them
// with Register.
type RulesPages struct {
	h   *Handler
	src RuleSource
}

// NewRulesPages returns the Alert rules pages drawn inside h's layout.
func NewRulesPages(h *Handler, src RuleSource) *RulesPages {
	return &RulesPages{h: h, src: src}
}

// Register mounts the pages with handle (for example (*Handler).Handle).
func (p *RulesPages) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /rules", http.HandlerFunc(p.list))
	handle("GET /ui/rules/content", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.h.Fragment(w, r, RulesContent(rulesData(p.src)))
	}))
	handle("GET /rules/new", http.HandlerFunc(p.newGroup))
	handle("GET /rules/edit/{name}", http.HandlerFunc(p.edit))
}

// RulesData is what the Alert rules page shows.
type RulesData struct {
	LoadErrors []rules.FileError
	Groups     []RuleGroupRow
	Alerts     []ActiveAlertRow
}

// RuleGroupRow is one running rule group.
type RuleGroupRow struct {
	Name, File     string
	Editable       bool   // created in the UI
	Interval       string // "1m"
	LastEvaluation string // "2026-03-05 14:02:03 UTC", or "never"
	EvalDuration   string // "1.2ms"
	Rules          []RuleRow
}

// RuleRow is one rule of a group.
type RuleRow struct {
	Type        string // "alerting" or "recording"
	Name        string
	State       string // alerting rules: "inactive", "pending", "firing", or "unknown" before the first evaluation
	Expr        string
	For         string // alerting rules: the hold duration, "" when zero
	KeepFiring  string // keep_firing_for, "" when zero
	Labels      []LabelPair
	Annotations []LabelPair
	Health      string // "ok", "err" or "unknown"
	LastError   string
}

// LabelPair is one label or annotation.
type LabelPair struct{ Name, Value string }

// ActiveAlertRow is one pending or firing alert.
type ActiveAlertRow struct {
	Rule   string
	State  string
	Labels []LabelPair
	Value  string
	Since  string // "2026-03-05 14:02:03 UTC"
}

// RuleEditorData is what the editor shows.
type RuleEditorData struct {
	Name   string // empty for a new group
	Body   string // the group's stored rule file, or a template for a new one
	IsNew  bool
	Exists bool // the group is saved (Delete makes sense)
}

func pairs(ls labels.Labels) []LabelPair {
	out := make([]LabelPair, 0, ls.Len())
	ls.Range(func(l labels.Label) { out = append(out, LabelPair{l.Name, l.Value}) })
	return out
}

func whenSeconds(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func shortDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return promDuration(d)
}

// promDuration writes d as Prometheus does ("1m", "1h30m", "15s").
func promDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	out := ""
	for _, u := range []struct {
		n string
		d time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d >= u.d {
			out += strconv.FormatInt(int64(d/u.d), 10) + u.n
			d %= u.d
		}
	}
	if out == "" {
		return d.String()
	}
	return out
}

// RulesData collects what the Alert rules page shows from src.
func rulesData(src RuleSource) RulesData {
	d := RulesData{LoadErrors: src.LoadErrors()}
	for _, g := range src.Groups() {
		row := RuleGroupRow{
			Name: g.Name(), File: g.File(), Editable: src.IsUserFile(g.File()),
			Interval:       promDuration(g.Interval()),
			LastEvaluation: whenSeconds(g.GetLastEvaluation()),
			EvalDuration:   g.GetEvaluationTime().Round(time.Microsecond).String(),
		}
		for _, r := range g.Rules() {
			rr := RuleRow{Name: r.Name(), Expr: r.Query().String(), Labels: pairs(r.Labels()), Health: string(r.Health())}
			if err := r.LastError(); err != nil {
				rr.LastError = err.Error()
			}
			switch r := r.(type) {
			case *promrules.AlertingRule:
				rr.Type = "alerting"
				rr.State = r.State().String()
				rr.For = shortDuration(r.HoldDuration())
				rr.KeepFiring = shortDuration(r.KeepFiringFor())
				rr.Annotations = pairs(r.Annotations())
				for _, a := range r.ActiveAlerts() {
					d.Alerts = append(d.Alerts, ActiveAlertRow{
						Rule: r.Name(), State: a.State.String(), Labels: pairs(a.Labels),
						Value: strconv.FormatFloat(a.Value, 'g', 6, 64), Since: whenSeconds(a.ActiveAt),
					})
				}
			default:
				rr.Type = "recording"
			}
			row.Rules = append(row.Rules, rr)
		}
		d.Groups = append(d.Groups, row)
	}
	return d
}

func (p *RulesPages) list(w http.ResponseWriter, r *http.Request) {
	p.h.Page(w, r, "Alert rules", "alerts", RulesBody(rulesData(p.src)))
}

// newGroupTemplate is what the editor starts with for a new group.
const newGroupTemplate = `name: my-group
interval: 1m
rules:
  - alert: HighErrorRate
    expr: sum(rate(http_server_request_duration_seconds_count{http_response_status_code=~"5.."}[5m])) > 1
    for: 5m
    labels:
      severity: page
    annotations:
      summary: "errors at {{ $value }} per second"
`

func (p *RulesPages) newGroup(w http.ResponseWriter, r *http.Request) {
	p.h.Page(w, r, "New rule group", "alerts", RuleEditor(RuleEditorData{Body: newGroupTemplate, IsNew: true}))
}

func (p *RulesPages) edit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := p.src.UserGroup(name)
	if err == nil {
		p.h.Page(w, r, "Edit "+name, "alerts", RuleEditor(RuleEditorData{Name: name, Body: string(body), Exists: true}))
		return
	}
	if errors.Is(err, rules.ErrNotFound) || errors.Is(err, rules.ErrNoUserDir) {
		for _, g := range p.src.Groups() {
			if g.Name() == name && !p.src.IsUserFile(g.File()) {
				p.h.Page(w, r, name, "alerts", RuleReadOnly(name, filepath.Base(g.File())))
				return
			}
		}
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "No rule group " + strconv.Quote(name) + " was created in the UI.", Err: err})
		return
	}
	p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The rule group could not be read.", Err: err})
}

func pathEscape(s string) string { return url.PathEscape(s) }

func boolAttr(b bool) string { return strconv.FormatBool(b) }
