package api

// Incidents: GET /api/v1/incidents and /api/v1/incidents/{id} (with the series
// of the incident's service that moved when it opened), and the actions a person
// takes on one: acknowledge, resolve, add a note.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"outpost/detect/incident"
)

// IncidentSource is what the incidents API reads and changes:
// *incident.Manager.
type IncidentSource interface {
	List(state string, limit int) []incident.Incident
	Get(id uint64) (incident.Incident, error)
	Moved(ctx context.Context, id uint64, limit int) ([]incident.Moved, error)
	Acknowledge(id uint64, who, comment string) error
	Resolve(id uint64, who, comment string) error
	Note(id uint64, kind, who, text string) error
}

// Incidents serves the incidents endpoints. Mount them with Register.
type Incidents struct{ src IncidentSource }

// NewIncidents returns the incidents API over src.
func NewIncidents(src IncidentSource) *Incidents { return &Incidents{src: src} }

// Register mounts the endpoints with handle (API.Handle).
func (h *Incidents) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v1/incidents", http.HandlerFunc(h.list))
	handle("GET /api/v1/incidents/{id}", http.HandlerFunc(h.get))
	handle("POST /api/v1/incidents/{id}/acknowledge", h.action(func(id uint64, a incidentAction) error {
		return h.src.Acknowledge(id, a.By, a.Comment)
	}))
	handle("POST /api/v1/incidents/{id}/resolve", h.action(func(id uint64, a incidentAction) error {
		return h.src.Resolve(id, a.By, a.Comment)
	}))
	handle("POST /api/v1/incidents/{id}/notes", h.action(func(id uint64, a incidentAction) error {
		if strings.TrimSpace(a.Comment) == "" {
			return errNoComment
		}
		return h.src.Note(id, "note", a.By, a.Comment)
	}))
}

var errNoComment = errors.New(`a note needs a "comment"`)

// IncidentStates are the values ?state= takes.
var incidentStates = map[string]bool{"": true, "all": true, "active": true, incident.StateOpen: true, incident.StateAcked: true, incident.StateResolved: true}

// list answers {"status":"success","data":[…]}: open incidents first (worst
// severity first), then acknowledged, then resolved, each newest first.
// ?state=open|acknowledged|resolved|active|all (default all); ?limit=N (default
// 100, at most 1000).
func (h *Incidents) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if !incidentStates[state] {
		failure(w, errBadData, errors.New(`invalid parameter "state": want open, acknowledged, resolved, active or all, got `+strconv.Quote(state)), nil)
		return
	}
	if state == "all" {
		state = ""
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			failure(w, errBadData, errors.New(`invalid parameter "limit": want a positive integer, got `+strconv.Quote(s)), nil)
			return
		}
		limit = min(n, 1000)
	}
	out := h.src.List(state, limit)
	if out == nil {
		out = []incident.Incident{}
	}
	success(w, out)
}

// IncidentJSON is GET /api/v1/incidents/{id}: the incident and the other series
// of its service that moved when it opened.
type IncidentJSON struct {
	incident.Incident
	Moved []incident.Moved `json:"moved"`
}

func (h *Incidents) id(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	s := r.PathValue("id")
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		failure(w, errBadData, errors.New("invalid incident id "+strconv.Quote(s)+": want a positive integer"), nil)
		return 0, false
	}
	return id, true
}

func (h *Incidents) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	inc, err := h.src.Get(id)
	if err != nil {
		h.fail(w, err)
		return
	}
	moved, err := h.src.Moved(r.Context(), id, 10)
	if err != nil {
		failure(w, errInternal, err, nil)
		return
	}
	if moved == nil {
		moved = []incident.Moved{}
	}
	success(w, IncidentJSON{Incident: inc, Moved: moved})
}

// incidentAction is the body of an action: JSON {"by": …, "comment": …} or a
// form with the same fields.
type incidentAction struct {
	By      string `json:"by"`
	Comment string `json:"comment"`
}

func (h *Incidents) action(do func(uint64, incidentAction) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := h.id(w, r)
		if !ok {
			return
		}
		var a incidentAction
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/json" {
			if err := json.NewDecoder(r.Body).Decode(&a); err != nil && !errors.Is(err, io.EOF) {
				failure(w, errBadData, errors.New("invalid JSON body: "+err.Error()), nil)
				return
			}
		} else {
			if err := r.ParseForm(); err != nil {
				failure(w, errBadData, err, nil)
				return
			}
			a.By, a.Comment = r.PostForm.Get("by"), r.PostForm.Get("comment")
		}
		a.By = strings.TrimSpace(a.By)
		if a.By == "" {
			a.By = "anonymous"
		}
		if err := do(id, a); err != nil {
			h.fail(w, err)
			return
		}
		inc, err := h.src.Get(id)
		if err != nil {
			h.fail(w, err)
			return
		}
		success(w, inc)
	})
}

func (h *Incidents) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, incident.ErrNotFound):
		writeJSON(w, http.StatusNotFound, rulesEnvelope{Status: "error", ErrorType: "not_found", Error: err.Error()})
	case errors.Is(err, incident.ErrState):
		writeJSON(w, http.StatusConflict, rulesEnvelope{Status: "error", ErrorType: "conflict", Error: err.Error()})
	case errors.Is(err, errNoComment):
		failure(w, errBadData, err, nil)
	default:
		failure(w, errInternal, err, nil)
	}
}
