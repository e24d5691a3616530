package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"outpost/internal/atomicfile"
)

// The state files of Options.Dir (README.md describes them).
const (
	silencesFile   = "silences.json"
	nflogFile      = "nflog.json"
	receiversFile  = "receivers.json"
	deliveriesFile = "deliveries.json"

	stateVersion = 1
)

// Dirty flags: which state files must be written.
const (
	dirtySilences uint8 = 1 << iota
	dirtyNflog
	dirtyReceivers
	dirtyDeliveries
	dirtyAll = dirtySilences | dirtyNflog | dirtyReceivers | dirtyDeliveries
)

// maxDeliveries is how many delivery attempts the delivery log keeps.
const maxDeliveries = 1000

// nflogEntry is what was last notified to one integration about one group.
type nflogEntry struct {
	Receiver  string    `json:"receiver"` // receiver/integration/index
	GroupKey  string    `json:"groupKey"`
	Firing    fpList    `json:"firing"`
	Resolved  fpList    `json:"resolved"`
	Timestamp time.Time `json:"timestamp"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// fpList is a list of alert fingerprints, in JSON as 16-digit hex strings.
type fpList []uint64

func (l fpList) MarshalJSON() ([]byte, error) {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = fmt.Sprintf("%016x", v)
	}
	return json.Marshal(s)
}

func (l *fpList) UnmarshalJSON(b []byte) error {
	var s []string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	out := make(fpList, len(s))
	for i, v := range s {
		u, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return fmt.Errorf("bad fingerprint %q: %w", v, err)
		}
		out[i] = u
	}
	*l = out
	return nil
}

// nflogSet records a successful notification. n.mu is held.
func (n *Notifier) nflogSet(key, receiver, groupKey string, firing, resolved []uint64, at time.Time) {
	f, r := slices.Clone(firing), slices.Clone(resolved)
	slices.Sort(f)
	slices.Sort(r)
	n.nflog[key] = &nflogEntry{Receiver: receiver, GroupKey: groupKey, Firing: f, Resolved: r, Timestamp: at, ExpiresAt: at.Add(n.opts.Retention)}
	n.dirty |= dirtyNflog
}

// Delivery is one attempt to deliver a notification.
type Delivery struct {
	Time        time.Time `json:"time"`
	Receiver    string    `json:"receiver"`
	Integration string    `json:"integration"` // webhook, slack, email or action_webhook
	Index       int       `json:"index"`       // of the integration in its receiver
	GroupKey    string    `json:"group_key"`
	Alerts      int       `json:"alerts"`
	Status      string    `json:"status"` // firing or resolved
	Attempt     int       `json:"attempt"`
	OK          bool      `json:"ok"`
	Error       string    `json:"error,omitempty"`
	Duration    float64   `json:"duration_seconds"`
}

// deliveryLog is a ring of the last maxDeliveries attempts.
type deliveryLog struct {
	buf  []Delivery
	next int // where the next one goes once buf is full
}

func (l *deliveryLog) add(d Delivery) {
	if len(l.buf) < maxDeliveries {
		l.buf = append(l.buf, d)
		return
	}
	l.buf[l.next] = d
	l.next = (l.next + 1) % maxDeliveries
}

// newestFirst returns up to limit deliveries (all if limit <= 0).
func (l *deliveryLog) newestFirst(limit int) []Delivery {
	n := len(l.buf)
	if limit <= 0 || limit > n {
		limit = n
	}
	out := make([]Delivery, 0, limit)
	for i := 0; i < limit; i++ {
		// The newest is just before next (or the last when not full yet).
		j := (l.next - 1 - i + 2*n) % n
		if n < maxDeliveries {
			j = n - 1 - i
		}
		out = append(out, l.buf[j])
	}
	return out
}

// oldestFirst returns every delivery, oldest first.
func (l *deliveryLog) oldestFirst() []Delivery {
	out := slices.Clone(l.buf[l.next:])
	return append(out, l.buf[:l.next]...)
}

// Deliveries returns the last delivery attempts, newest first: at most limit
// of them (all kept, up to 1,000, when limit <= 0).
func (n *Notifier) Deliveries(limit int) []Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dlog.newestFirst(limit)
}

// integrationStats is the outcome of an integration's last attempts.
type integrationStats struct {
	lastAttempt time.Time
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
}

// record logs one attempt in the delivery log, the statistics and the
// metrics. n.mu is held.
func (n *Notifier) record(in *integration, groupKey string, alerts []*snapAlert, attempt int, err error, dur time.Duration, now time.Time) {
	status := statusResolved
	for _, a := range alerts {
		if !a.resolved {
			status = statusFiring
			break
		}
	}
	d := Delivery{
		Time: now, Receiver: in.receiver, Integration: in.kind, Index: in.idx, GroupKey: groupKey,
		Alerts: len(alerts), Status: status, Attempt: attempt, OK: err == nil, Duration: dur.Seconds(),
	}
	st := n.stats[in.id()]
	if st == nil {
		st = &integrationStats{}
		n.stats[in.id()] = st
	}
	st.lastAttempt = now
	if err != nil {
		d.Error = err.Error()
		st.lastError, st.lastErrorAt = d.Error, now
		n.log.Warn("notification failed", "receiver", in.receiver, "integration", in.kind, "index", in.idx, "group", groupKey, "attempt", attempt, "err", err)
	} else {
		st.lastSuccess = now
	}
	n.dlog.add(d)
	n.dirty |= dirtyDeliveries
	n.metrics.observe(in.kind, err, dur)
}

// ReceiverStatus is a receiver with the outcome of its last deliveries.
type ReceiverStatus struct {
	Name string `json:"name"`
	// Kinds are the kinds of its integrations: webhook, slack, email.
	Kinds []string `json:"kinds"`
	// Source is where it is defined: "file" or "ui".
	Source       string              `json:"source"`
	Integrations []IntegrationStatus `json:"integrations"`
	LastDelivery *time.Time          `json:"last_delivery,omitempty"`
	LastSuccess  *time.Time          `json:"last_success,omitempty"`
	LastError    string              `json:"last_error,omitempty"`
	LastErrorAt  *time.Time          `json:"last_error_at,omitempty"`
	// Config is the receiver as created in the UI, secrets hidden (UI only).
	Config *UIReceiver `json:"config,omitempty"`
}

// IntegrationStatus is one integration of a receiver.
type IntegrationStatus struct {
	Kind         string     `json:"kind"`
	Index        int        `json:"index"`
	SendResolved bool       `json:"send_resolved"`
	LastDelivery *time.Time `json:"last_delivery,omitempty"`
	LastSuccess  *time.Time `json:"last_success,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	LastErrorAt  *time.Time `json:"last_error_at,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Receivers returns the receivers: those of the configuration file in its
// order, then those created in the UI by name.
func (n *Notifier) Receivers() []ReceiverStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]ReceiverStatus, 0, len(n.rt.order))
	for _, name := range n.rt.order {
		ri := n.rt.receivers[name]
		rs := ReceiverStatus{Name: name, Kinds: slices.Clone(ri.kinds), Source: ri.source, Integrations: []IntegrationStatus{}}
		if rs.Kinds == nil {
			rs.Kinds = []string{}
		}
		var last, lastOK, lastErrAt time.Time
		for _, in := range ri.integrations {
			is := IntegrationStatus{Kind: in.kind, Index: in.idx, SendResolved: in.sendResolved}
			if st := n.stats[in.id()]; st != nil {
				is.LastDelivery, is.LastSuccess = timePtr(st.lastAttempt), timePtr(st.lastSuccess)
				is.LastError, is.LastErrorAt = st.lastError, timePtr(st.lastErrorAt)
				if st.lastAttempt.After(last) {
					last = st.lastAttempt
				}
				if st.lastSuccess.After(lastOK) {
					lastOK = st.lastSuccess
				}
				if st.lastErrorAt.After(lastErrAt) {
					lastErrAt, rs.LastError = st.lastErrorAt, st.lastError
				}
			}
			rs.Integrations = append(rs.Integrations, is)
		}
		rs.LastDelivery, rs.LastSuccess, rs.LastErrorAt = timePtr(last), timePtr(lastOK), timePtr(lastErrAt)
		if u, ok := n.ui[name]; ok && ri.source == "ui" {
			r := u.redacted()
			rs.Config = &r
		}
		out = append(out, rs)
	}
	return out
}

// PutReceiver creates or replaces a receiver of the UI. Secrets sent as
// "<secret>" keep their stored value. A name of the configuration file is
// refused with ErrReceiverConflict.
func (n *Notifier) PutReceiver(r UIReceiver) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errNotifierIsClosing
	}
	if old, ok := n.ui[r.Name]; ok {
		r.unredact(old)
	}
	var g GlobalConfig
	if n.file != nil {
		g = n.file.Global
		for _, fr := range n.file.Receivers {
			if fr.Name == r.Name {
				n.mu.Unlock()
				return fmt.Errorf("%w: %q", ErrReceiverConflict, r.Name)
			}
		}
	}
	if err := validateUIReceiver(&r, &g); err != nil {
		n.mu.Unlock()
		return err
	}
	rt, err := n.build(n.file, n.sortedUI(&r))
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrInvalidReceiver, err)
	}
	n.ui[r.Name] = r
	n.apply(rt)
	n.dirty |= dirtyReceivers
	n.mu.Unlock()
	n.log.Info("receiver saved", "receiver", r.Name)
	return n.persist(dirtyReceivers)
}

// DeleteReceiver removes a receiver of the UI.
func (n *Notifier) DeleteReceiver(name string) error {
	n.mu.Lock()
	if _, ok := n.ui[name]; !ok {
		src := ""
		if ri := n.rt.receivers[name]; ri != nil {
			src = ri.source
		}
		n.mu.Unlock()
		if src == "file" {
			return fmt.Errorf("%w: %q", ErrReceiverConflict, name)
		}
		return fmt.Errorf("%w: %q", ErrReceiverNotFound, name)
	}
	old := n.ui[name]
	delete(n.ui, name)
	rt, err := n.buildAll(n.file)
	if err != nil {
		n.ui[name] = old
		n.mu.Unlock()
		return err
	}
	n.apply(rt)
	n.dirty |= dirtyReceivers
	n.mu.Unlock()
	n.log.Info("receiver deleted", "receiver", name)
	return n.persist(dirtyReceivers)
}

// The JSON of the state files.
type (
	silencesState struct {
		Version  int        `json:"version"`
		Silences []*Silence `json:"silences"`
	}
	nflogState struct {
		Version int                    `json:"version"`
		Entries map[string]*nflogEntry `json:"entries"`
	}
	receiversState struct {
		Version   int          `json:"version"`
		Receivers []UIReceiver `json:"receivers"`
	}
	deliveriesState struct {
		Version    int        `json:"version"`
		Deliveries []Delivery `json:"deliveries"` // oldest first
	}
)

// kickPersister asks the persister to write the dirty state soon.
func (n *Notifier) kickPersister() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// persister writes dirty state, at most about every 200 ms.
func (n *Notifier) persister() {
	defer n.loops.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(200 * time.Millisecond): // lets a burst of changes coalesce
		}
		if err := n.persist(dirtyNflog | dirtyDeliveries | dirtySilences); err != nil {
			n.log.Error("cannot save notification state", "err", err)
		}
	}
}

// persist writes the state files of which that are dirty (all of which when
// which is dirtyAll, as Close does).
func (n *Notifier) persist(which uint8) error {
	n.writeMu.Lock()
	defer n.writeMu.Unlock()
	type file struct {
		name string
		b    []byte
		mode os.FileMode
	}
	var files []file
	n.mu.Lock()
	todo := n.dirty & which
	if which == dirtyAll {
		todo = dirtyAll
	}
	var err error
	marshal := func(name string, mode os.FileMode, v any) {
		if err != nil {
			return
		}
		var b []byte
		if b, err = json.MarshalIndent(v, "", " "); err == nil {
			files = append(files, file{name, b, mode})
		}
	}
	if todo&dirtySilences != 0 {
		s := silencesState{Version: stateVersion, Silences: make([]*Silence, 0, len(n.silences))}
		for _, v := range n.silences {
			c := *v
			c.Status = SilenceStatus{}
			s.Silences = append(s.Silences, &c)
		}
		slices.SortFunc(s.Silences, func(a, b *Silence) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
		marshal(silencesFile, 0o644, s)
	}
	if todo&dirtyNflog != 0 {
		marshal(nflogFile, 0o644, nflogState{Version: stateVersion, Entries: n.nflog})
	}
	if todo&dirtyReceivers != 0 {
		marshal(receiversFile, 0o600, receiversState{Version: stateVersion, Receivers: n.sortedUI(nil)})
	}
	if todo&dirtyDeliveries != 0 {
		marshal(deliveriesFile, 0o644, deliveriesState{Version: stateVersion, Deliveries: n.dlog.oldestFirst()})
	}
	n.dirty &^= todo
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot encode notification state: %w", err)
	}
	var errs []error
	for _, f := range files {
		if werr := atomicfile.WriteFile(filepath.Join(n.opts.Dir, f.name), f.b, f.mode); werr != nil {
			errs = append(errs, werr)
		}
	}
	if len(errs) > 0 {
		n.mu.Lock()
		n.dirty |= todo // try again later
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}

// load reads the state files; missing files are empty state.
func (n *Notifier) load() error {
	var ss silencesState
	if err := readState(n.opts.Dir, silencesFile, &ss, &ss.Version); err != nil {
		return err
	}
	for _, s := range ss.Silences {
		if s == nil || s.ID == "" {
			continue
		}
		n.silences[s.ID] = s
	}
	var ns nflogState
	if err := readState(n.opts.Dir, nflogFile, &ns, &ns.Version); err != nil {
		return err
	}
	for k, e := range ns.Entries {
		if e != nil {
			n.nflog[k] = e
		}
	}
	var rs receiversState
	if err := readState(n.opts.Dir, receiversFile, &rs, &rs.Version); err != nil {
		return err
	}
	for _, r := range rs.Receivers {
		n.ui[r.Name] = r
	}
	var ds deliveriesState
	if err := readState(n.opts.Dir, deliveriesFile, &ds, &ds.Version); err != nil {
		return err
	}
	for _, d := range ds.Deliveries {
		n.dlog.add(d)
	}
	return nil
}

func readState(dir, name string, v any, version *int) error {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read notification state: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cannot load notification state %q (%d bytes): %w", path, len(b), err)
	}
	if *version > stateVersion {
		return fmt.Errorf("cannot load notification state %q: version %d is newer than this Outpost's %d", path, *version, stateVersion)
	}
	return nil
}
