package api

// Notifications: Alertmanager's API v2 (alerts, alert groups, silences,
// receivers, status) in its JSON shapes, so that Grafana's Alertmanager data
// source and amtool work against Outpost, and Outpost's own endpoints for the
// receivers created in the UI, test notifications and the delivery log.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"outpost/detect/notify"
)

// NotifySource is what the notification API reads and changes: *notify.Notifier.
type NotifySource interface {
	Send(alerts ...notify.Alert)
	Alerts() []notify.AlertStatus
	Groups() []notify.AlertGroup
	Silences() []notify.Silence
	Silence(id string) (notify.Silence, error)
	PutSilence(s notify.Silence) (string, error)
	ExpireSilence(id string) error
	Receivers() []notify.ReceiverStatus
	PutReceiver(r notify.UIReceiver) error
	DeleteReceiver(name string) error
	Deliveries(limit int) []notify.Delivery
	Test(ctx context.Context, receiverName string) error
	ConfigYAML() string
}

// NotifyOptions configure the notification API. Every zero field means the
// default stated on it.
type NotifyOptions struct {
	// Version is reported by GET /api/v2/status. Zero: "unknown".
	Version string
	// Started is the uptime reported by GET /api/v2/status. Zero: when
	// NewNotify was called.
	Started time.Time
	// Logger receives changes of silences and receivers. Zero: slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes is the largest request body. Zero: 4 MiB.
	MaxBodyBytes int64
}

// Notify serves the notification endpoints. Mount them with Register.
type Notify struct {
	src  NotifySource
	opts NotifyOptions
}

// NewNotify returns the notification API over src.
func NewNotify(src NotifySource, opts NotifyOptions) *Notify {
	if opts.Version == "" {
		opts.Version = "unknown"
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	return &Notify{src: src, opts: opts}
}

// Register mounts the routes with handle (for example (*API).Handle).
func (h *Notify) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v2/status", http.HandlerFunc(h.status))
	handle("GET /api/v2/receivers", http.HandlerFunc(h.v2Receivers))
	handle("GET /api/v2/alerts", http.HandlerFunc(h.getAlerts))
	handle("POST /api/v2/alerts", http.HandlerFunc(h.postAlerts))
	handle("GET /api/v2/alerts/groups", http.HandlerFunc(h.getGroups))
	handle("GET /api/v2/silences", http.HandlerFunc(h.getSilences))
	handle("POST /api/v2/silences", http.HandlerFunc(h.postSilence))
	handle("GET /api/v2/silence/{id}", http.HandlerFunc(h.getSilence))
	handle("DELETE /api/v2/silence/{id}", http.HandlerFunc(h.deleteSilence))

	handle("GET /api/v1/notify/receivers", http.HandlerFunc(h.receivers))
	handle("PUT /api/v1/notify/receivers/{name}", http.HandlerFunc(h.putReceiver))
	handle("DELETE /api/v1/notify/receivers/{name}", http.HandlerFunc(h.deleteReceiver))
	handle("POST /api/v1/notify/receivers/{name}/test", http.HandlerFunc(h.testReceiver))
	handle("GET /api/v1/notify/deliveries", http.HandlerFunc(h.deliveries))
}

// Alertmanager API v2 shapes (api/v2/openapi.yaml).
type (
	amStatus struct {
		Cluster     amCluster     `json:"cluster"`
		VersionInfo amVersionInfo `json:"versionInfo"`
		Config      amConfig      `json:"config"`
		Uptime      time.Time     `json:"uptime"`
	}
	amCluster struct {
		Status string   `json:"status"`
		Peers  []string `json:"peers"`
	}
	amVersionInfo struct {
		Version   string `json:"version"`
		Revision  string `json:"revision"`
		Branch    string `json:"branch"`
		BuildUser string `json:"buildUser"`
		BuildDate string `json:"buildDate"`
		GoVersion string `json:"goVersion"`
	}
	amConfig struct {
		Original string `json:"original"`
	}
	amReceiver struct {
		Name string `json:"name"`
	}
	amAlert struct {
		Annotations  map[string]string `json:"annotations"`
		EndsAt       time.Time         `json:"endsAt"`
		Fingerprint  string            `json:"fingerprint"`
		Receivers    []amReceiver      `json:"receivers"`
		StartsAt     time.Time         `json:"startsAt"`
		Status       amAlertStatus     `json:"status"`
		UpdatedAt    time.Time         `json:"updatedAt"`
		GeneratorURL string            `json:"generatorURL,omitempty"`
		Labels       map[string]string `json:"labels"`
	}
	amAlertStatus struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
		MutedBy     []string `json:"mutedBy"`
	}
	amAlertGroup struct {
		Labels   map[string]string `json:"labels"`
		Receiver amReceiver        `json:"receiver"`
		Alerts   []amAlert         `json:"alerts"`
	}
	amPostableSilence struct {
		ID        string          `json:"id"`
		Matchers  notify.Matchers `json:"matchers"`
		StartsAt  time.Time       `json:"startsAt"`
		EndsAt    time.Time       `json:"endsAt"`
		CreatedBy string          `json:"createdBy"`
		Comment   string          `json:"comment"`
	}
)

// amError answers with Alertmanager's error payload: a JSON string.
func amError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, msg)
}

func (h *Notify) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, amStatus{
		Cluster:     amCluster{Status: "disabled", Peers: []string{}},
		VersionInfo: amVersionInfo{Version: h.opts.Version, GoVersion: runtime.Version()},
		Config:      amConfig{Original: h.src.ConfigYAML()},
		Uptime:      h.opts.Started.UTC(),
	})
}

func (h *Notify) v2Receivers(w http.ResponseWriter, r *http.Request) {
	out := []amReceiver{}
	for _, rs := range h.src.Receivers() {
		out = append(out, amReceiver{Name: rs.Name})
	}
	writeJSON(w, http.StatusOK, out)
}

// alertFilter is the common query of GET /api/v2/alerts and /alerts/groups.
type alertFilter struct {
	active, silenced, inhibited, unprocessed bool
	matchers                                 notify.Matchers
	receiver                                 *regexp.Regexp
}

func parseAlertFilter(r *http.Request) (*alertFilter, error) {
	q := r.URL.Query()
	f := &alertFilter{}
	for _, p := range []struct {
		name string
		dst  *bool
	}{{"active", &f.active}, {"silenced", &f.silenced}, {"inhibited", &f.inhibited}, {"unprocessed", &f.unprocessed}} {
		*p.dst = true
		if v := q.Get(p.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("parameter %q must be a boolean, got %q", p.name, v)
			}
			*p.dst = b
		}
	}
	for _, s := range q["filter"] {
		ms, err := notify.ParseMatchers(s)
		if err != nil {
			return nil, fmt.Errorf("bad filter: %v", err)
		}
		f.matchers = append(f.matchers, ms...)
	}
	if v := q.Get("receiver"); v != "" {
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			return nil, fmt.Errorf("bad receiver regular expression %q: %v", v, err)
		}
		f.receiver = re
	}
	return f, nil
}

// keep reports whether an alert passes the filter. Resolved alerts never do,
// as in Alertmanager.
func (f *alertFilter) keep(a notify.AlertStatus) bool {
	switch a.State {
	case notify.StateResolved:
		return false
	case notify.StateActive:
		if !f.active {
			return false
		}
	case notify.StateSuppressed:
		if !f.silenced {
			return false
		}
	}
	for _, m := range f.matchers {
		if !m.Matches(a.Labels[m.Name]) {
			return false
		}
	}
	if f.receiver != nil && !slices.ContainsFunc(a.Receivers, f.receiver.MatchString) {
		return false
	}
	return true
}

func toAMAlert(a notify.AlertStatus) amAlert {
	out := amAlert{
		Annotations: a.Annotations, EndsAt: a.EndsAt, Fingerprint: a.Fingerprint,
		Receivers: make([]amReceiver, 0, len(a.Receivers)), StartsAt: a.StartsAt,
		Status:    amAlertStatus{State: a.State, SilencedBy: a.SilencedBy, InhibitedBy: []string{}, MutedBy: []string{}},
		UpdatedAt: a.UpdatedAt, GeneratorURL: a.GeneratorURL, Labels: a.Labels,
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if out.Status.SilencedBy == nil {
		out.Status.SilencedBy = []string{}
	}
	for _, r := range a.Receivers {
		out.Receivers = append(out.Receivers, amReceiver{Name: r})
	}
	return out
}

// getAlerts answers GET /api/v2/alerts with Alertmanager's parameters: active,
// silenced, inhibited, unprocessed, filter (repeatable matchers), receiver.
func (h *Notify) getAlerts(w http.ResponseWriter, r *http.Request) {
	f, err := parseAlertFilter(r)
	if err != nil {
		amError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := []amAlert{}
	for _, a := range h.src.Alerts() {
		if f.keep(a) {
			out = append(out, toAMAlert(a))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// postAlerts answers POST /api/v2/alerts: a JSON array of postable alerts.
// Valid alerts are taken even when others are refused, as Alertmanager does.
func (h *Notify) postAlerts(w http.ResponseWriter, r *http.Request) {
	b, ok := h.body(w, r)
	if !ok {
		return
	}
	var in []notify.Alert
	if err := json.Unmarshal(b, &in); err != nil {
		amError(w, http.StatusBadRequest, "cannot decode alerts: "+err.Error())
		return
	}
	valid := in[:0]
	var errs []string
	for i := range in {
		if err := in[i].Validate(); err != nil {
			errs = append(errs, fmt.Sprintf("alert %d: %v", i, err))
			continue
		}
		valid = append(valid, in[i])
	}
	if len(valid) > 0 {
		h.src.Send(valid...)
	}
	if len(errs) > 0 {
		amError(w, http.StatusBadRequest, strings.Join(errs, "; "))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// getGroups answers GET /api/v2/alerts/groups with the filters of
// /api/v2/alerts; groups left without alerts are omitted.
func (h *Notify) getGroups(w http.ResponseWriter, r *http.Request) {
	f, err := parseAlertFilter(r)
	if err != nil {
		amError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := []amAlertGroup{}
	for _, g := range h.src.Groups() {
		if f.receiver != nil && !f.receiver.MatchString(g.Receiver) {
			continue
		}
		ag := amAlertGroup{Labels: g.Labels, Receiver: amReceiver{Name: g.Receiver}, Alerts: []amAlert{}}
		for _, a := range g.Alerts {
			if f.keep(a) {
				ag.Alerts = append(ag.Alerts, toAMAlert(a))
			}
		}
		if len(ag.Alerts) > 0 {
			out = append(out, ag)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// silenceMatchesFilter is Alertmanager's filter of silences: every filter
// matcher must match the value of a silence matcher of the same label.
func silenceMatchesFilter(s notify.Silence, filter notify.Matchers) bool {
	for _, f := range filter {
		if !slices.ContainsFunc(s.Matchers, func(m notify.Matcher) bool { return m.Name == f.Name && f.Matches(m.Value) }) {
			return false
		}
	}
	return true
}

// getSilences answers GET /api/v2/silences[?filter=…].
func (h *Notify) getSilences(w http.ResponseWriter, r *http.Request) {
	var filter notify.Matchers
	for _, s := range r.URL.Query()["filter"] {
		ms, err := notify.ParseMatchers(s)
		if err != nil {
			amError(w, http.StatusBadRequest, "bad filter: "+err.Error())
			return
		}
		filter = append(filter, ms...)
	}
	out := []notify.Silence{}
	for _, s := range h.src.Silences() {
		if silenceMatchesFilter(s, filter) {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// postSilence answers POST /api/v2/silences: create, or update when id is
// set, and answer {"silenceID": …}.
func (h *Notify) postSilence(w http.ResponseWriter, r *http.Request) {
	b, ok := h.body(w, r)
	if !ok {
		return
	}
	var in amPostableSilence
	if err := json.Unmarshal(b, &in); err != nil {
		amError(w, http.StatusBadRequest, "cannot decode silence: "+err.Error())
		return
	}
	if !in.StartsAt.IsZero() && !in.StartsAt.Before(in.EndsAt) {
		amError(w, http.StatusBadRequest, "Failed to create silence: start time must be before end time")
		return
	}
	id, err := h.src.PutSilence(notify.Silence{ID: in.ID, Matchers: in.Matchers, StartsAt: in.StartsAt, EndsAt: in.EndsAt, CreatedBy: in.CreatedBy, Comment: in.Comment})
	switch {
	case errors.Is(err, notify.ErrSilenceNotFound):
		amError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, notify.ErrInvalidSilence), errors.Is(err, notify.ErrTooManySilences):
		amError(w, http.StatusBadRequest, "Failed to create silence: "+err.Error())
		return
	case err != nil && id == "":
		amError(w, http.StatusInternalServerError, err.Error())
		return
	case err != nil:
		h.opts.Logger.Error("silence not saved to disk", "id", id, "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"silenceID": id})
}

func (h *Notify) getSilence(w http.ResponseWriter, r *http.Request) {
	s, err := h.src.Silence(r.PathValue("id"))
	if err != nil {
		amError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *Notify) deleteSilence(w http.ResponseWriter, r *http.Request) {
	err := h.src.ExpireSilence(r.PathValue("id"))
	switch {
	case errors.Is(err, notify.ErrSilenceNotFound):
		amError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, notify.ErrSilenceExpired):
		amError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		amError(w, http.StatusInternalServerError, err.Error())
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (h *Notify) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			amError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.opts.MaxBodyBytes))
		} else {
			amError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

// Outpost's endpoints answer in the envelope of its other JSON APIs.

func notifyFailure(w http.ResponseWriter, code int, typ string, err error) {
	writeJSON(w, code, rulesEnvelope{Status: "error", ErrorType: typ, Error: err.Error()})
}

// receivers answers GET /api/v1/notify/receivers: every receiver with the
// outcome of its last deliveries.
func (h *Notify) receivers(w http.ResponseWriter, r *http.Request) {
	success(w, h.src.Receivers())
}

func (h *Notify) receiverError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, notify.ErrReceiverNotFound):
		notifyFailure(w, http.StatusNotFound, "not_found", err)
	case errors.Is(err, notify.ErrReceiverConflict):
		notifyFailure(w, http.StatusConflict, "conflict", err)
	case errors.Is(err, notify.ErrInvalidReceiver):
		notifyFailure(w, http.StatusBadRequest, errBadData, err)
	default:
		notifyFailure(w, http.StatusInternalServerError, errInternal, err)
	}
}

// putReceiver answers PUT /api/v1/notify/receivers/{name}: the body is a
// notify.UIReceiver (its name, if set, must be the path's). Secrets sent as
// "<secret>" keep their stored values.
func (h *Notify) putReceiver(w http.ResponseWriter, r *http.Request) {
	b, ok := h.body(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	var in notify.UIReceiver
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		notifyFailure(w, http.StatusBadRequest, errBadData, fmt.Errorf("cannot decode receiver: %w", err))
		return
	}
	if in.Name != "" && in.Name != name {
		notifyFailure(w, http.StatusBadRequest, errBadData, fmt.Errorf("receiver name %q in the body differs from %q in the path", in.Name, name))
		return
	}
	in.Name = name
	if err := h.src.PutReceiver(in); err != nil {
		h.receiverError(w, err)
		return
	}
	h.opts.Logger.Info("receiver saved", "receiver", name)
	success(w, map[string]string{"name": name})
}

// deleteReceiver answers DELETE /api/v1/notify/receivers/{name}.
func (h *Notify) deleteReceiver(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.src.DeleteReceiver(name); err != nil {
		h.receiverError(w, err)
		return
	}
	h.opts.Logger.Info("receiver deleted", "receiver", name)
	success(w, map[string]string{"name": name})
}

// testReceiver answers POST /api/v1/notify/receivers/{name}/test: a test
// notification is sent now; a failed delivery is a 502 with its error.
func (h *Notify) testReceiver(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := h.src.Test(r.Context(), name)
	switch {
	case errors.Is(err, notify.ErrReceiverNotFound):
		notifyFailure(w, http.StatusNotFound, "not_found", err)
	case err != nil:
		notifyFailure(w, http.StatusBadGateway, "delivery", err)
	default:
		success(w, map[string]any{"receiver": name, "ok": true})
	}
}

// deliveries answers GET /api/v1/notify/deliveries?limit=N: the last delivery
// attempts, newest first (default 100, at most 1,000).
func (h *Notify) deliveries(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 1000 {
			notifyFailure(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter \"limit\" must be an integer from 1 to 1000, got %q", s))
			return
		}
		limit = n
	}
	success(w, h.src.Deliveries(limit))
}
