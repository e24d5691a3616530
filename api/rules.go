package api

// Alert and recording rules: Prometheus' GET /api/v1/rules and GET /api/v1/alerts
// in Prometheus' JSON shapes (so Grafana lists them), and Outpost's own endpoints
// for rule groups created through the API: validate, preview an expression, and
// create, read, replace and delete a group.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"outpost/detect/rules"
	"outpost/detect/rules/promrules"
)

// RuleSource is what the rules API reads and changes: *rules.Manager.
type RuleSource interface {
	Groups() []*promrules.Group
	AlertingRules() []*promrules.AlertingRule
	LoadErrors() []rules.FileError
	Validate(file string, body []byte) (*rulefmt.RuleGroups, []rules.FileError)
	PutGroup(name string, body []byte) ([]rules.FileError, error)
	DeleteGroup(name string) error
	UserGroup(name string) ([]byte, error)
	IsUserFile(file string) bool
	Query(ctx context.Context, expr string, ts time.Time) (promql.Vector, error)
}

// RulesOptions configure the rules API. Every zero field means the default
// stated on it.
type RulesOptions struct {
	// Logger receives changes of rule groups. Zero: slog.Default().
	Logger *slog.Logger
	// Now is the clock of previews without a time. Zero: time.Now.
	Now func() time.Time
	// MaxBodyBytes is the largest rule group a request may send. Zero: 1 MiB.
	MaxBodyBytes int64
}

// Rules serves the rules endpoints. Mount them with Register.
type Rules struct {
	src  RuleSource
	opts RulesOptions
}

// NewRules returns the rules API over src.
func NewRules(src RuleSource, opts RulesOptions) *Rules {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	return &Rules{src: src, opts: opts}
}

// Register mounts the routes with handle (for example (*API).Handle).
func (h *Rules) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v1/rules", http.HandlerFunc(h.rules))
	handle("POST /api/v1/rules", http.HandlerFunc(h.rules))
	handle("GET /api/v1/alerts", http.HandlerFunc(h.alerts))
	handle("POST /api/v1/alerts", http.HandlerFunc(h.alerts))
	handle("POST /api/v1/rules/validate", http.HandlerFunc(h.validate))
	handle("GET /api/v1/rules/preview", http.HandlerFunc(h.preview))
	handle("POST /api/v1/rules/preview", http.HandlerFunc(h.preview))
	handle("GET /api/v1/rules/groups/{name}", http.HandlerFunc(h.getGroup))
	handle("PUT /api/v1/rules/groups/{name}", http.HandlerFunc(h.putGroup))
	handle("DELETE /api/v1/rules/groups/{name}", http.HandlerFunc(h.deleteGroup))
}

// The JSON shapes of Prometheus' web/api/v1.
type (
	ruleDiscovery struct {
		Groups []*ruleGroup `json:"groups"`
		// Errors lists the rule files refused by the last load (Outpost's
		// addition): their last valid version, if any, is what Groups shows.
		Errors []rules.FileError `json:"errors"`
	}
	ruleGroup struct {
		Name           string    `json:"name"`
		File           string    `json:"file"`
		Rules          []any     `json:"rules"`
		Interval       float64   `json:"interval"`
		Limit          int       `json:"limit"`
		EvaluationTime float64   `json:"evaluationTime"`
		LastEvaluation time.Time `json:"lastEvaluation"`
		// Editable says whether the group was created through the API and may be
		// changed through it (Outpost's addition).
		Editable bool `json:"editable"`
	}
	alertingRule struct {
		State          string        `json:"state"`
		Name           string        `json:"name"`
		Query          string        `json:"query"`
		Duration       float64       `json:"duration"`
		KeepFiringFor  float64       `json:"keepFiringFor"`
		Labels         labels.Labels `json:"labels"`
		Annotations    labels.Labels `json:"annotations"`
		Alerts         []*alert      `json:"alerts"`
		Health         string        `json:"health"`
		LastError      string        `json:"lastError,omitempty"`
		EvaluationTime float64       `json:"evaluationTime"`
		LastEvaluation time.Time     `json:"lastEvaluation"`
		Type           string        `json:"type"`
	}
	recordingRule struct {
		Name           string        `json:"name"`
		Query          string        `json:"query"`
		Labels         labels.Labels `json:"labels"`
		Health         string        `json:"health"`
		LastError      string        `json:"lastError,omitempty"`
		EvaluationTime float64       `json:"evaluationTime"`
		LastEvaluation time.Time     `json:"lastEvaluation"`
		Type           string        `json:"type"`
	}
	alert struct {
		Labels          labels.Labels `json:"labels"`
		Annotations     labels.Labels `json:"annotations"`
		State           string        `json:"state"`
		ActiveAt        *time.Time    `json:"activeAt,omitempty"`
		KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
		Value           string        `json:"value"`
	}
)

type rulesEnvelope struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

func success(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, rulesEnvelope{Status: "success", Data: data})
}

func failure(w http.ResponseWriter, typ string, err error, data any) {
	writeJSON(w, errorCode(typ), rulesEnvelope{Status: "error", ErrorType: typ, Error: err.Error(), Data: data})
}

func toAlerts(in []*promrules.Alert) []*alert {
	out := make([]*alert, len(in))
	for i, a := range in {
		out[i] = &alert{
			Labels:      a.Labels,
			Annotations: a.Annotations,
			State:       a.State.String(),
			ActiveAt:    &a.ActiveAt,
			Value:       strconv.FormatFloat(a.Value, 'e', -1, 64),
		}
		if !a.KeepFiringSince.IsZero() {
			out[i].KeepFiringSince = &a.KeepFiringSince
		}
	}
	return out
}

func set(vals []string) map[string]bool {
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

// rules answers GET /api/v1/rules with Prometheus' parameters: type (alert or
// record), rule_name[], rule_group[], file[] and exclude_alerts.
func (h *Rules) rules(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		failure(w, errBadData, fmt.Errorf("error parsing form values: %w", err), nil)
		return
	}
	typ := r.FormValue("type")
	if typ != "" && typ != "alert" && typ != "record" {
		failure(w, errBadData, fmt.Errorf("unsupported type %q", typ), nil)
		return
	}
	excludeAlerts := false
	if v := r.FormValue("exclude_alerts"); v != "" {
		var err error
		if excludeAlerts, err = strconv.ParseBool(v); err != nil {
			failure(w, errBadData, fmt.Errorf("parameter \"exclude_alerts\" must be a boolean: %w", err), nil)
			return
		}
	}
	names, groups, files := set(r.Form["rule_name[]"]), set(r.Form["rule_group[]"]), set(r.Form["file[]"])
	out := ruleDiscovery{Groups: []*ruleGroup{}, Errors: h.src.LoadErrors()}
	if out.Errors == nil {
		out.Errors = []rules.FileError{}
	}
	for _, g := range h.src.Groups() {
		if (len(groups) > 0 && !groups[g.Name()]) || (len(files) > 0 && !files[g.File()]) {
			continue
		}
		rg := &ruleGroup{
			Name:           g.Name(),
			File:           g.File(),
			Rules:          []any{},
			Interval:       g.Interval().Seconds(),
			Limit:          g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(),
			LastEvaluation: g.GetLastEvaluation(),
			Editable:       h.src.IsUserFile(g.File()),
		}
		for _, rule := range g.Rules() {
			if len(names) > 0 && !names[rule.Name()] {
				continue
			}
			lastErr := ""
			if err := rule.LastError(); err != nil {
				lastErr = err.Error()
			}
			switch rule := rule.(type) {
			case *promrules.AlertingRule:
				if typ == "record" {
					continue
				}
				var alerts []*alert
				if !excludeAlerts {
					alerts = toAlerts(rule.ActiveAlerts())
				}
				rg.Rules = append(rg.Rules, alertingRule{
					State:          rule.State().String(),
					Name:           rule.Name(),
					Query:          rule.Query().String(),
					Duration:       rule.HoldDuration().Seconds(),
					KeepFiringFor:  rule.KeepFiringFor().Seconds(),
					Labels:         rule.Labels(),
					Annotations:    rule.Annotations(),
					Alerts:         alerts,
					Health:         string(rule.Health()),
					LastError:      lastErr,
					EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(),
					Type:           "alerting",
				})
			case *promrules.RecordingRule:
				if typ == "alert" {
					continue
				}
				rg.Rules = append(rg.Rules, recordingRule{
					Name:           rule.Name(),
					Query:          rule.Query().String(),
					Labels:         rule.Labels(),
					Health:         string(rule.Health()),
					LastError:      lastErr,
					EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(),
					Type:           "recording",
				})
			}
		}
		if (typ != "" || len(names) > 0) && len(rg.Rules) == 0 {
			continue // as Prometheus: filtered-out groups are left out
		}
		out.Groups = append(out.Groups, rg)
	}
	success(w, out)
}

// alerts answers GET /api/v1/alerts: every pending and firing alert.
func (h *Rules) alerts(w http.ResponseWriter, r *http.Request) {
	all := []*alert{}
	for _, rule := range h.src.AlertingRules() {
		all = append(all, toAlerts(rule.ActiveAlerts())...)
	}
	success(w, map[string]any{"alerts": all})
}

func (h *Rules) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, rulesEnvelope{Status: "error", ErrorType: errBadData, Error: fmt.Sprintf("rule group larger than %d bytes", h.opts.MaxBodyBytes)})
		} else {
			failure(w, errBadData, fmt.Errorf("cannot read body: %w", err), nil)
		}
		return nil, false
	}
	return b, true
}

// validationResult is the data of POST /api/v1/rules/validate.
type validationResult struct {
	Valid  bool              `json:"valid"`
	Groups []string          `json:"groups"`
	Errors []rules.FileError `json:"errors"`
}

// validate answers POST /api/v1/rules/validate: the body is a rule group or a
// rule file; the answer lists its errors with the lines of the body.
func (h *Rules) validate(w http.ResponseWriter, r *http.Request) {
	b, ok := h.body(w, r)
	if !ok {
		return
	}
	rgs, errs := h.src.Validate("body", b)
	res := validationResult{Valid: len(errs) == 0, Groups: []string{}, Errors: errs}
	if res.Errors == nil {
		res.Errors = []rules.FileError{}
	}
	if rgs != nil {
		for _, g := range rgs.Groups {
			res.Groups = append(res.Groups, g.Name)
		}
	}
	success(w, res)
}

// preview answers GET /api/v1/rules/preview?expr=…[&time=…]: the expression's
// result now, as a rule would see it, in the shape of /api/v1/query.
func (h *Rules) preview(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		failure(w, errBadData, fmt.Errorf("error parsing form values: %w", err), nil)
		return
	}
	ts := h.opts.Now()
	if v := r.FormValue("time"); v != "" {
		var err error
		if ts, err = parseTime(v); err != nil {
			failure(w, errBadData, fmt.Errorf("invalid parameter \"time\": %w", err), nil)
			return
		}
	}
	expr := r.FormValue("expr")
	if expr == "" {
		failure(w, errBadData, errors.New("missing parameter \"expr\""), nil)
		return
	}
	v, err := h.src.Query(r.Context(), expr, ts)
	if err != nil {
		var perr *parser.ParseErr
		var perrs parser.ParseErrors
		if errors.As(err, &perr) || errors.As(err, &perrs) {
			failure(w, errBadData, err, nil)
			return
		}
		e := classify(err)
		failure(w, e.typ, e.err, nil)
		return
	}
	s := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(s)
	s.WriteRaw(`{"status":"success","data":`)
	writeQueryData(s, v)
	s.WriteRaw("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.Buffer())
}

func (h *Rules) groupError(w http.ResponseWriter, err error, ferrs []rules.FileError) {
	data := map[string]any{"errors": ferrs}
	if ferrs == nil {
		data = nil
	}
	switch {
	case errors.Is(err, rules.ErrNotFound):
		writeJSON(w, http.StatusNotFound, rulesEnvelope{Status: "error", ErrorType: "not_found", Error: err.Error()})
	case errors.Is(err, rules.ErrConflict):
		writeJSON(w, http.StatusConflict, rulesEnvelope{Status: "error", ErrorType: "conflict", Error: err.Error()})
	case errors.Is(err, rules.ErrInvalid):
		msg := err.Error()
		if len(ferrs) > 0 {
			msg = fmt.Sprintf("%v: %v", err, ferrs[0])
		}
		failure(w, errBadData, errors.New(msg), data)
	case errors.Is(err, rules.ErrNoUserDir):
		failure(w, errInternal, err, nil)
	default:
		failure(w, errInternal, err, nil)
	}
}

// getGroup answers GET /api/v1/rules/groups/{name} with the stored rule file of
// a group created through the API (application/yaml).
func (h *Rules) getGroup(w http.ResponseWriter, r *http.Request) {
	b, err := h.src.UserGroup(r.PathValue("name"))
	if err != nil {
		h.groupError(w, err, nil)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(b)
}

// putGroup answers PUT /api/v1/rules/groups/{name}: the body (a rule group, or
// a rule file holding just that group) replaces or creates the group.
func (h *Rules) putGroup(w http.ResponseWriter, r *http.Request) {
	b, ok := h.body(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	ferrs, err := h.src.PutGroup(name, b)
	if err != nil {
		h.groupError(w, err, ferrs)
		return
	}
	h.opts.Logger.Info("rule group saved", "group", name, "bytes", len(b))
	success(w, map[string]string{"name": name})
}

// deleteGroup answers DELETE /api/v1/rules/groups/{name}.
func (h *Rules) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.src.DeleteGroup(name); err != nil {
		h.groupError(w, err, nil)
		return
	}
	h.opts.Logger.Info("rule group deleted", "group", name)
	success(w, map[string]string{"name": name})
}
