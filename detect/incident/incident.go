package incident

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	bolt "go.etcd.io/bbolt"

	"outpost/detect"
)

// States of an incident.
const (
	StateOpen     = "open"
	StateAcked    = "acknowledged"
	StateResolved = "resolved"
)

// Kinds of members.
const (
	KindAlert   = "alert"
	KindAnomaly = "anomaly"
)

// AnomalyAlertName is the alertname of the alerts Send receives for strong
// anomalies.
const AnomalyAlertName = "OutpostAnomaly"

// Alert is an alert as Alertmanager's API takes it: what the rule manager sends,
// and what Send receives for strong anomalies.
type Alert struct {
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time // zero: firing
	GeneratorURL string
}

// Options configure a Manager. Every zero field means the default stated on it.
type Options struct {
	// Dir holds incidents.db. Created if missing. Required.
	Dir string
	// Anomalies lists the series anomalous now and recently (*detect.Live's
	// Anomalies). Zero: incidents come from alerts only.
	Anomalies func() []detect.Anomaly
	// MinAnomalyScore is the least score with which an active anomaly becomes an
	// incident member. Zero: 0.75.
	MinAnomalyScore float64
	// Send receives, on each tick, an alert per strong anomaly (alertname
	// OutpostAnomaly; resolved ones with EndsAt set), so notifications route them
	// like rule alerts. Zero: they are not sent.
	Send func([]Alert)
	// Queryable is read by Moved. Zero: Moved answers nothing.
	Queryable storage.Queryable
	// ExternalURL is Outpost's address, for incident links in annotations
	// ("incident_url"). Zero: links are paths only.
	ExternalURL string
	// Interval is how often anomalies are polled, stale alerts ended and
	// incidents resolved. Zero: 10 s. Negative: no background loop (Tick only).
	Interval time.Duration
	// QuietFor is how long every member must have been inactive before an
	// incident resolves by itself. Zero: 5 minutes.
	QuietFor time.Duration
	// JoinWindow is how soon after resolving by itself an incident is reopened
	// by a new signal of its group rather than a new incident opened. Zero: 15
	// minutes.
	JoinWindow time.Duration
	// Retention is how long resolved incidents are kept. Zero: 30 days.
	Retention time.Duration
	// MaxMembers and MaxEvents cap each incident's members and timeline. Zero:
	// 100 and 200.
	MaxMembers, MaxEvents int
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Logger receives persistence failures. Zero: slog.Default().
	Logger *slog.Logger
}

// Incident is one problem: the signals of one group close in time.
type Incident struct {
	ID         uint64    `json:"id"`
	Title      string    `json:"title"`
	Group      string    `json:"group"`             // "service=checkout", "alertname=DiskFull", …
	Service    string    `json:"service,omitempty"` // the service, when the group is one
	ServiceBy  string    `json:"service_label,omitempty"`
	Severity   string    `json:"severity"` // the worst of its members'
	State      string    `json:"state"`
	OpenedAt   time.Time `json:"opened_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	AckedAt    time.Time `json:"acknowledged_at,omitzero"`
	AckedBy    string    `json:"acknowledged_by,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	Members    []Member  `json:"members"`
	Events     []Event   `json:"timeline"`
	// DroppedMembers and DroppedEvents count what the caps left out.
	DroppedMembers int `json:"dropped_members,omitempty"`
	DroppedEvents  int `json:"dropped_events,omitempty"`
	// Dismissed are the members a person resolved while they were active, by key,
	// with the start of the stretch dismissed.
	Dismissed map[string]time.Time `json:"dismissed,omitempty"`
}

// Member is one alert or anomalous series of an incident.
type Member struct {
	Key      string            `json:"key"` // alert: its label fingerprint; anomaly: its selector
	Kind     string            `json:"kind"`
	Name     string            `json:"name"` // alertname or metric name
	Labels   map[string]string `json:"labels"`
	Severity string            `json:"severity"`
	Summary  string            `json:"summary"`
	// Expr is the alert's expression, or the anomalous series' selector.
	Expr         string    `json:"expr"`
	GeneratorURL string    `json:"generator_url,omitempty"`
	Counter      bool      `json:"counter,omitempty"` // anomaly judged through its rate
	Score        float64   `json:"score,omitempty"`   // anomaly: highest score
	Value        *float64  `json:"value,omitempty"`
	Lower        *float64  `json:"lower,omitempty"`
	Upper        *float64  `json:"upper,omitempty"`
	Since        time.Time `json:"since"`
	LastSeen     time.Time `json:"last_seen"`
	Ended        time.Time `json:"ended,omitzero"` // zero while active
	Active       bool      `json:"active"`
}

// Event is one line of an incident's timeline.
type Event struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"` // opened, joined, ended, fired_again, acknowledged, note, resolved, reopened, silenced
	By   string    `json:"by,omitempty"`
	Text string    `json:"text"`
}

// Errors of the person-facing methods, usable with errors.Is.
var (
	ErrNotFound = errors.New("incident not found")
	ErrState    = errors.New("incident is not in a state that allows this")
)

// Manager keeps the incidents. Its methods are safe for concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger
	db   *bolt.DB

	mu        sync.Mutex
	incidents map[uint64]*Incident
	byGroup   map[string]uint64 // group → its latest incident
	nextID    uint64
	dirty     map[uint64]bool

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

var bucketIncidents = []byte("incidents")

// Open opens (or creates) Dir/incidents.db, loads the incidents and starts the
// background loop. Close stops it.
func Open(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("cannot open incidents: no directory")
	}
	if opts.MinAnomalyScore == 0 {
		opts.MinAnomalyScore = 0.75
	}
	if opts.Interval == 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.QuietFor == 0 {
		opts.QuietFor = 5 * time.Minute
	}
	if opts.JoinWindow == 0 {
		opts.JoinWindow = 15 * time.Minute
	}
	if opts.Retention == 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.MaxMembers == 0 {
		opts.MaxMembers = 100
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = 200
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.ExternalURL = strings.TrimRight(opts.ExternalURL, "/")
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create incidents directory: %w", err)
	}
	path := filepath.Join(opts.Dir, "incidents.db")
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	m := &Manager{
		opts: opts, log: opts.Logger, db: db,
		incidents: map[uint64]*Incident{}, byGroup: map[string]uint64{}, dirty: map[uint64]bool{},
		stop: make(chan struct{}),
	}
	if err := m.load(); err != nil {
		db.Close()
		return nil, err
	}
	if opts.Interval > 0 {
		m.wg.Add(1)
		go m.loop()
	}
	return m, nil
}

// Close stops the loop, commits what is pending and closes the file. Calling it
// again does nothing.
func (m *Manager) Close() error {
	var err error
	m.once.Do(func() {
		close(m.stop)
		m.wg.Wait()
		m.mu.Lock()
		err = m.flushLocked()
		m.mu.Unlock()
		if cerr := m.db.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

func (m *Manager) loop() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Tick()
		}
	}
}

// ServiceOf is the service a signal's labels name, and the label that names it:
// the first of service, service_name, job and exported_job present.
func ServiceOf(ls map[string]string) (service, label string) {
	for _, k := range []string{"service", "service_name", "job", "exported_job"} {
		if v := ls[k]; v != "" {
			return v, k
		}
	}
	return "", ""
}

func groupOf(kind, name string, ls map[string]string) (group, service, by string) {
	if svc, by := ServiceOf(ls); svc != "" {
		return "service=" + svc, svc, by
	}
	if kind == KindAlert {
		return "alertname=" + name, "", ""
	}
	return "metric=" + name, "", ""
}

// severityRank orders severities: the higher, the worse.
func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "critical", "page", "fatal", "emergency":
		return 4
	case "error", "high":
		return 3
	case "warning", "warn", "medium":
		return 2
	case "info", "low", "none":
		return 1
	}
	return 0
}

// signal is an alert or anomaly seen now.
type signal struct {
	m     Member
	group string
	svc   string
	by    string
}

// ObserveAlert takes one alert as the rule manager sends it to Alertmanager
// (firing with EndsAt in the future, resolved with EndsAt now or past) and the
// expression of its rule. It returns the incident the alert belongs to (0 when
// it belongs to none: resolved before it opened one, or dismissed).
func (m *Manager) ObserveAlert(expr string, a Alert) uint64 {
	now := m.opts.Now()
	name := a.Labels["alertname"]
	mem := Member{
		Key: labels.FromMap(a.Labels).String(), Kind: KindAlert, Name: name, Labels: maps.Clone(a.Labels),
		Severity: a.Labels["severity"], Summary: summaryOf(a), Expr: expr, GeneratorURL: a.GeneratorURL,
		Since: a.StartsAt, LastSeen: now,
	}
	if mem.Since.IsZero() {
		mem.Since = now
	}
	firing := a.EndsAt.IsZero() || a.EndsAt.After(now)
	if !firing {
		mem.Ended = a.EndsAt
	}
	mem.Active = firing
	s := signal{m: mem}
	s.group, s.svc, s.by = groupOf(KindAlert, name, a.Labels)
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.observeLocked(now, s, firing, a.EndsAt)
	if err := m.flushLocked(); err != nil {
		m.log.Error("cannot save incidents", "err", err)
	}
	return id
}

// summaryOf is what an alert says of itself: its summary annotation, else its
// description, else its name.
func summaryOf(a Alert) string {
	for _, k := range []string{"summary", "description", "message"} {
		if v := strings.TrimSpace(a.Annotations[k]); v != "" {
			return v
		}
	}
	return a.Labels["alertname"]
}

// URL is the incident's address in the UI.
func (m *Manager) URL(id uint64) string {
	return m.opts.ExternalURL + "/incidents/" + strconv.FormatUint(id, 10)
}

// observeLocked applies one signal. active says whether it is firing now; ended
// is when it ended otherwise.
func (m *Manager) observeLocked(now time.Time, s signal, active bool, ended time.Time) uint64 {
	inc := m.incidents[m.byGroup[s.group]]
	if inc != nil && inc.State == StateResolved && (inc.ResolvedBy != "" || now.Sub(inc.ResolvedAt) > m.opts.JoinWindow) {
		// Closed for good: a new signal opens a new incident, but a stretch a
		// person dismissed when resolving it opens nothing.
		if inc.dismissed(s.m) {
			return 0
		}
		inc = nil
	}
	if inc != nil {
		if i := inc.member(s.m.Key); i >= 0 {
			mem := &inc.Members[i]
			switch {
			case active:
				if inc.State == StateResolved {
					m.reopenLocked(inc, now, s.m)
				}
				if !mem.Active {
					inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "fired_again", Text: describe(s.m) + " fired again"})
					mem.Since = s.m.Since
					m.dirty[inc.ID] = true
				}
				mem.update(s.m)
				mem.Active, mem.Ended = true, time.Time{}
				inc.UpdatedAt = now
				inc.raise(s.m.Severity)
				return inc.ID
			case mem.Active:
				mem.update(s.m)
				m.endLocked(inc, mem, ended)
			}
			if inc.State == StateResolved {
				return 0
			}
			return inc.ID
		}
	}
	if !active {
		return 0 // ended before it joined anything
	}
	if inc == nil {
		m.nextID++
		inc = &Incident{
			ID: m.nextID, Group: s.group, Service: s.svc, ServiceBy: s.by, State: StateOpen,
			Title: titleOf(s), OpenedAt: now, UpdatedAt: now, Severity: s.m.Severity,
		}
		m.incidents[inc.ID] = inc
		m.byGroup[s.group] = inc.ID
		inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "opened", Text: "opened by " + describe(s.m)})
	} else {
		if inc.State == StateResolved {
			m.reopenLocked(inc, now, s.m)
		}
		inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "joined", Text: describe(s.m) + " joined"})
	}
	if len(inc.Members) >= m.opts.MaxMembers {
		inc.DroppedMembers++
	} else {
		inc.Members = append(inc.Members, s.m)
	}
	inc.raise(s.m.Severity)
	inc.UpdatedAt = now
	m.dirty[inc.ID] = true
	return inc.ID
}

func (m *Manager) reopenLocked(inc *Incident, now time.Time, by Member) {
	inc.State, inc.ResolvedAt, inc.ResolvedBy = StateOpen, time.Time{}, ""
	inc.AckedAt, inc.AckedBy = time.Time{}, ""
	inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "reopened", Text: "reopened by " + describe(by)})
	m.dirty[inc.ID] = true
}

func (m *Manager) endLocked(inc *Incident, mem *Member, ended time.Time) {
	mem.Active, mem.Ended = false, ended
	inc.UpdatedAt = ended
	inc.event(m.opts.MaxEvents, Event{Time: ended, Kind: "ended", Text: describe(*mem) + " ended"})
	m.dirty[inc.ID] = true
}

func titleOf(s signal) string {
	t := s.m.Name
	if s.m.Kind == KindAnomaly {
		t = "Anomaly in " + s.m.Name
	}
	if s.svc != "" {
		t += " on " + s.svc
	}
	return t
}

func describe(mem Member) string {
	if mem.Kind == KindAnomaly {
		return "anomaly in " + mem.Expr
	}
	return "alert " + mem.Name + " " + labelsShort(mem.Labels)
}

// labelsShort writes labels other than alertname as {k="v", …}.
func labelsShort(ls map[string]string) string {
	b := labels.NewBuilder(labels.FromMap(ls))
	b.Del("alertname", "__name__")
	return b.Labels().String()
}

func (inc *Incident) member(key string) int {
	return slices.IndexFunc(inc.Members, func(x Member) bool { return x.Key == key })
}

func (inc *Incident) dismissed(mem Member) bool {
	since, ok := inc.Dismissed[mem.Key]
	return ok && !mem.Since.After(since)
}

func (inc *Incident) raise(sev string) {
	if severityRank(sev) > severityRank(inc.Severity) {
		inc.Severity = sev
	}
}

func (inc *Incident) event(limit int, e Event) {
	if len(inc.Events) >= limit {
		// Keep the first event (how it opened) and the newest ones.
		inc.Events = slices.Delete(inc.Events, 1, 2)
		inc.DroppedEvents++
	}
	inc.Events = append(inc.Events, e)
}

// update copies what a newer sighting says of a member.
func (mem *Member) update(n Member) {
	mem.LastSeen = n.LastSeen
	mem.Labels = n.Labels
	if n.Summary != "" {
		mem.Summary = n.Summary
	}
	if n.Expr != "" {
		mem.Expr = n.Expr
	}
	if n.Severity != "" {
		mem.Severity = n.Severity
	}
	if n.Score > mem.Score {
		mem.Score = n.Score
	}
	if n.Value != nil {
		mem.Value, mem.Lower, mem.Upper = n.Value, n.Lower, n.Upper
	}
	if n.GeneratorURL != "" {
		mem.GeneratorURL = n.GeneratorURL
	}
}

// Tick polls the anomalies, ends alerts nobody renewed, resolves quiet incidents
// and deletes old ones. The background loop calls it every Interval.
func (m *Manager) Tick() {
	now := m.opts.Now()
	var anomalies []detect.Anomaly
	if m.opts.Anomalies != nil {
		anomalies = m.opts.Anomalies()
	}
	var send []Alert
	m.mu.Lock()
	seen := map[string]bool{}
	for _, a := range anomalies {
		if !a.Active || a.Current < m.opts.MinAnomalyScore && a.Score < m.opts.MinAnomalyScore {
			continue
		}
		s := anomalySignal(a, now)
		seen[s.m.Key] = true
		id := m.observeLocked(now, s, true, time.Time{})
		if id != 0 {
			send = append(send, m.anomalyAlert(s.m, id, now, time.Time{}))
		}
	}
	for _, inc := range m.incidents {
		if inc.State == StateResolved {
			if now.Sub(inc.ResolvedAt) > m.opts.Retention {
				m.deleteLocked(inc)
			}
			continue
		}
		for i := range inc.Members {
			mem := &inc.Members[i]
			if !mem.Active {
				continue
			}
			switch {
			case mem.Kind == KindAnomaly && !seen[mem.Key]:
				m.endLocked(inc, mem, now)
				send = append(send, m.anomalyAlert(*mem, inc.ID, now, now))
			case mem.Kind == KindAlert && now.Sub(mem.LastSeen) > staleAfter:
				// The rule manager resends a firing alert at least every
				// minute; one not renewed for this long is gone (its rule was
				// deleted, or the process restarted without it).
				m.endLocked(inc, mem, mem.LastSeen)
			}
		}
		m.maybeResolveLocked(inc, now)
	}
	if err := m.flushLocked(); err != nil {
		m.log.Error("cannot save incidents", "err", err)
	}
	m.mu.Unlock()
	if len(send) > 0 && m.opts.Send != nil {
		m.opts.Send(send)
	}
}

// staleAfter is how long a firing alert may go without being resent before it
// is taken as ended: Prometheus' validity of a sent alert (4 × the resend delay
// of 1 minute) plus slack.
const staleAfter = 5 * time.Minute

func (m *Manager) maybeResolveLocked(inc *Incident, now time.Time) {
	if inc.State == StateResolved {
		return
	}
	var last time.Time
	for _, mem := range inc.Members {
		if mem.Active {
			return
		}
		if mem.Ended.After(last) {
			last = mem.Ended
		}
	}
	if now.Sub(last) < m.opts.QuietFor {
		return
	}
	inc.State, inc.ResolvedAt, inc.ResolvedBy = StateResolved, now, ""
	inc.UpdatedAt = now
	inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "resolved", Text: "resolved: every alert and anomaly ended " + roundDur(now.Sub(last)) + " ago"})
	m.dirty[inc.ID] = true
}

func roundDur(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func anomalySignal(a detect.Anomaly, now time.Time) signal {
	ls := a.Labels.Map()
	mem := Member{
		Key: a.Selector, Kind: KindAnomaly, Name: a.Metric, Labels: ls, Severity: "warning",
		Summary: a.Explanation, Expr: a.Selector, Counter: a.Counter, Score: a.Score,
		Value: num(a.Value), Lower: num(a.Lower), Upper: num(a.Upper),
		Since: a.Since, LastSeen: now, Active: true,
	}
	s := signal{m: mem}
	s.group, s.svc, s.by = groupOf(KindAnomaly, a.Metric, ls)
	return s
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// anomalyAlert is the alert Send receives for an anomaly member: the series'
// labels (its name as "metric"), alertname OutpostAnomaly, severity warning.
func (m *Manager) anomalyAlert(mem Member, id uint64, now, ended time.Time) Alert {
	ls := map[string]string{}
	for k, v := range mem.Labels {
		if k == labels.MetricName {
			k = "metric"
		}
		ls[k] = v
	}
	ls["alertname"] = AnomalyAlertName
	ls["severity"] = mem.Severity
	a := Alert{
		Labels: ls,
		Annotations: map[string]string{
			"summary":      "Anomaly in " + mem.Expr,
			"description":  mem.Summary,
			"incident_url": m.URL(id),
		},
		StartsAt:     mem.Since,
		GeneratorURL: m.opts.ExternalURL + "/graph?" + "band=1&range=1h&q=" + urlQueryEscape(mem.Expr),
	}
	if ended.IsZero() {
		a.EndsAt = now.Add(4 * m.opts.Interval).Add(time.Minute)
	} else {
		a.EndsAt = ended
	}
	return a
}

// List returns the incidents in state (StateOpen, StateAcked, StateResolved; "active"
// for open and acknowledged; "" for all): open first, then acknowledged, then
// resolved, each newest first; at most limit (≤ 0: all). The copies are the
// caller's.
func (m *Manager) List(state string, limit int) []Incident {
	m.mu.Lock()
	out := make([]Incident, 0, len(m.incidents))
	for _, inc := range m.incidents {
		switch {
		case state == "", state == inc.State, state == "active" && inc.State != StateResolved:
			out = append(out, inc.clone())
		}
	}
	m.mu.Unlock()
	rank := map[string]int{StateOpen: 0, StateAcked: 1, StateResolved: 2}
	slices.SortFunc(out, func(a, b Incident) int {
		if c := cmp.Compare(rank[a.State], rank[b.State]); c != 0 {
			return c
		}
		if c := cmp.Compare(severityRank(b.Severity), severityRank(a.Severity)); c != 0 && a.State != StateResolved {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Get returns one incident.
func (m *Manager) Get(id uint64) (Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc := m.incidents[id]
	if inc == nil {
		return Incident{}, ErrNotFound
	}
	return inc.clone(), nil
}

func (inc *Incident) clone() Incident {
	c := *inc
	c.Members = slices.Clone(inc.Members)
	c.Events = slices.Clone(inc.Events)
	c.Dismissed = maps.Clone(inc.Dismissed)
	return c
}

// Acknowledge marks an open incident as being handled by who.
func (m *Manager) Acknowledge(id uint64, who, comment string) error {
	return m.act(id, func(inc *Incident, now time.Time) error {
		if inc.State != StateOpen {
			return fmt.Errorf("cannot acknowledge incident %d: it is %s: %w", id, inc.State, ErrState)
		}
		inc.State, inc.AckedAt, inc.AckedBy = StateAcked, now, who
		inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "acknowledged", By: who, Text: withComment("acknowledged", comment)})
		return nil
	})
}

// Resolve closes an incident by hand. Members still active are dismissed: they
// open nothing until they end and fire again.
func (m *Manager) Resolve(id uint64, who, comment string) error {
	return m.act(id, func(inc *Incident, now time.Time) error {
		if inc.State == StateResolved {
			return fmt.Errorf("cannot resolve incident %d: it is resolved already: %w", id, ErrState)
		}
		if who == "" {
			who = "someone"
		}
		for i := range inc.Members {
			mem := &inc.Members[i]
			if mem.Active {
				if inc.Dismissed == nil {
					inc.Dismissed = map[string]time.Time{}
				}
				inc.Dismissed[mem.Key] = mem.Since
				mem.Active, mem.Ended = false, now
			}
		}
		inc.State, inc.ResolvedAt, inc.ResolvedBy = StateResolved, now, who
		inc.event(m.opts.MaxEvents, Event{Time: now, Kind: "resolved", By: who, Text: withComment("resolved by hand", comment)})
		return nil
	})
}

// Note adds a line to an incident's timeline: a comment, or what was done from
// its page (kind "silenced" when a silence was created for it).
func (m *Manager) Note(id uint64, kind, who, text string) error {
	if kind == "" {
		kind = "note"
	}
	return m.act(id, func(inc *Incident, now time.Time) error {
		inc.event(m.opts.MaxEvents, Event{Time: now, Kind: kind, By: who, Text: text})
		return nil
	})
}

func withComment(s, comment string) string {
	if c := strings.TrimSpace(comment); c != "" {
		return s + ": " + c
	}
	return s
}

func (m *Manager) act(id uint64, f func(*Incident, time.Time) error) error {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	inc := m.incidents[id]
	if inc == nil {
		return fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	if err := f(inc, now); err != nil {
		return err
	}
	inc.UpdatedAt = now
	m.dirty[id] = true
	if err := m.flushLocked(); err != nil {
		return fmt.Errorf("cannot save incident %d: %w", id, err)
	}
	return nil
}

// Counts returns how many incidents are open and acknowledged.
func (m *Manager) Counts() (open, acknowledged int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inc := range m.incidents {
		switch inc.State {
		case StateOpen:
			open++
		case StateAcked:
			acknowledged++
		}
	}
	return open, acknowledged
}
