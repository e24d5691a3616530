package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// Options configure a Notifier. Every zero field means the default stated on it.
type Options struct {
	// Dir holds the state: silences, the notification log, the receivers
	// created in the UI and the delivery log. Created if missing. Required.
	Dir string
	// ConfigFile is the operator's configuration, a subset of alertmanager.yml
	// (read, never written). Zero: none; alerts are kept and shown, and only
	// the receivers created in the UI are notified.
	ConfigFile string
	// ExternalURL is Outpost's URL, for the externalURL of payloads and links.
	ExternalURL string
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// HTTPClient sends webhook and Slack requests. Zero: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives configuration changes and delivery failures. Zero:
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the notifier's metrics (outpost_notify_…). Zero: they
	// are not registered.
	Registerer prometheus.Registerer
	// ResolveTimeout is when an alert without EndsAt resolves if it is not
	// sent again; the configuration file's global.resolve_timeout wins. Zero: 5m.
	ResolveTimeout time.Duration
	// Timeout bounds one delivery attempt (an HTTP request or an SMTP session).
	// Zero: 10 s.
	Timeout time.Duration
	// MaxAlerts is the most alerts kept; new alerts beyond it are dropped and
	// counted. Zero: 100,000.
	MaxAlerts int
	// MaxGroups is the most aggregation groups; an alert that would open a
	// group beyond it is not notified on that route, and is counted. Zero: 10,000.
	MaxGroups int
	// Retention is how long expired silences and notification-log entries are
	// kept. Zero: 120h, as Alertmanager's --data.retention.
	Retention time.Duration
	// UserAgent is the User-Agent of webhook and Slack requests. Zero: "Outpost".
	UserAgent string
}

// Notifier is Outpost's Alertmanager. Its methods are safe for concurrent use.
type Notifier struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	extURL  string
	baseEnv env
	metrics *metrics

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	idle     *sync.Cond // signalled when busy drops to zero
	closed   bool
	file     *FileConfig
	fileRaw  []byte
	ui       map[string]UIReceiver
	rt       *routing
	alerts   map[model.Fingerprint]*alertEntry
	groups   map[groupID]*aggrGroup
	silences map[string]*Silence
	nflog    map[string]*nflogEntry
	dlog     deliveryLog
	stats    map[string]*integrationStats // by integration id
	nextWake time.Time
	lastGC   time.Time
	dirty    uint8
	busy     int // attempts in flight

	writeMu  sync.Mutex // serializes state-file writes
	wake     chan struct{}
	kick     chan struct{} // asks the persister to write dirty state
	attempts sync.WaitGroup
	loops    sync.WaitGroup
	closing  sync.Once
}

// alertEntry is a stored alert. Its label and annotation maps are never
// changed in place, so snapshots may share them.
type alertEntry struct {
	fp           model.Fingerprint
	labels       model.LabelSet
	annotations  model.LabelSet
	startsAt     time.Time
	endsAt       time.Time
	updatedAt    time.Time
	timeout      bool
	generatorURL string
	version      uint64
	groups       map[groupID]*aggrGroup
}

func (e *alertEntry) resolvedAt(t time.Time) bool { return !e.endsAt.IsZero() && !e.endsAt.After(t) }

type groupID struct {
	route int
	fp    model.Fingerprint
}

// aggrGroup is an aggregation group: the alerts of one route with the same
// group labels, notified together.
type aggrGroup struct {
	id         groupID
	route      *route
	labels     model.LabelSet
	key        string // Alertmanager's group key: route key + group labels
	alerts     map[model.Fingerprint]*alertEntry
	next       time.Time // next flush
	hasFlushed bool
	removed    bool
	targets    []*target
}

// target is one integration of a group: its notification-log key and the
// state of its deliveries.
type target struct {
	key      string
	integ    *integration
	inflight bool
	again    bool // a flush came while an attempt was in flight
	dead     bool // the group is gone
	retry    *retryState
}

type retryState struct {
	at  time.Time
	job *job
}

// job is one notification and its attempts.
type job struct {
	g        *aggrGroup
	alerts   []*snapAlert
	firing   []uint64
	resolved []uint64
	flushAt  time.Time
	attempt  int
	rec      *flushRec
}

// flushRec follows the deliveries of one flush of a group: once all succeeded,
// the resolved alerts it carried leave the group, as Alertmanager does.
type flushRec struct {
	g        *aggrGroup
	resolved []*snapAlert
	pending  int
	failed   bool
	partial  bool // one target only: never removes alerts
	started  bool
	finished bool
}

// snapAlert is an alert as of a flush.
type snapAlert struct {
	fp           model.Fingerprint
	labels       model.LabelSet
	annotations  model.LabelSet
	startsAt     time.Time
	endsAt       time.Time
	generatorURL string
	resolved     bool
	version      uint64
	silenced     bool
}

// Defaults.
const (
	defaultResolveTimeout = 5 * time.Minute
	defaultTimeout        = 10 * time.Second
	defaultMaxAlerts      = 100_000
	defaultMaxGroups      = 10_000
	defaultRetention      = 120 * time.Hour

	// resolvedKeep is how long a resolved alert stays listed after it left
	// its groups; resolvedDrop is when it goes even if a failing receiver
	// kept it in a group.
	resolvedKeep = 15 * time.Minute
	resolvedDrop = time.Hour
	gcInterval   = time.Minute
	// maxSleep bounds the scheduler's sleep, so that an injected clock is
	// looked at at least this often.
	maxSleep = time.Second
	// Retry backoff: doubling from minBackoff to maxBackoff, with jitter.
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// New loads the state of opts.Dir and the configuration file, and starts the
// scheduler. A configuration file that does not load is an error; Close stops
// the notifier.
func New(opts Options) (*Notifier, error) {
	return newNotifier(opts, true)
}

func newNotifier(opts Options, start bool) (*Notifier, error) {
	if opts.Dir == "" {
		return nil, errors.New("cannot start notifier: no state directory")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ResolveTimeout == 0 {
		opts.ResolveTimeout = defaultResolveTimeout
	}
	if opts.Timeout == 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxAlerts == 0 {
		opts.MaxAlerts = defaultMaxAlerts
	}
	if opts.MaxGroups == 0 {
		opts.MaxGroups = defaultMaxGroups
	}
	if opts.Retention == 0 {
		opts.Retention = defaultRetention
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "Outpost"
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create notifier state directory: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	n := &Notifier{
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		extURL:   strings.TrimRight(opts.ExternalURL, "/"),
		ui:       map[string]UIReceiver{},
		alerts:   map[model.Fingerprint]*alertEntry{},
		groups:   map[groupID]*aggrGroup{},
		silences: map[string]*Silence{},
		nflog:    map[string]*nflogEntry{},
		stats:    map[string]*integrationStats{},
		wake:     make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
	}
	n.idle = sync.NewCond(&n.mu)
	n.baseEnv = env{client: opts.HTTPClient, externalURL: n.extURL, userAgent: opts.UserAgent, hostname: host}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.load(); err != nil {
		n.cancel()
		return nil, err
	}
	if opts.ConfigFile != "" {
		cfg, raw, err := readConfig(opts.ConfigFile)
		if err != nil {
			n.cancel()
			return nil, err
		}
		n.file, n.fileRaw = cfg, raw
	}
	rt, err := n.buildAll(n.file)
	if err != nil {
		n.cancel()
		return nil, err
	}
	n.rt = rt
	n.lastGC = n.now()
	n.metrics = newMetrics(n, opts.Registerer)
	if start {
		n.loops.Add(2)
		go n.loop()
		go n.persister()
	}
	return n, nil
}

func readConfig(path string) (*FileConfig, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read notification config: %w", err)
	}
	cfg, err := ParseConfig(path, b)
	if err != nil {
		return nil, nil, err
	}
	return cfg, b, nil
}

// build compiles a routing with a fresh environment.
func (n *Notifier) build(file *FileConfig, ui []UIReceiver) (*routing, error) {
	e := n.baseEnv
	return buildRouting(file, ui, &e, n.opts.ResolveTimeout)
}

// buildAll compiles the routing of a configuration file and the receivers of
// the UI. A UI receiver that clashes with the file or does not compile is left
// out (and logged) but kept in the state. n.mu is held or not shared yet.
func (n *Notifier) buildAll(file *FileConfig) (*routing, error) {
	ui := n.sortedUI(nil)
	rt, err := n.build(file, ui)
	if err == nil {
		return rt, nil
	}
	var ok []UIReceiver
	for _, u := range ui {
		if _, err := n.build(file, append(slices.Clone(ok), u)); err != nil {
			n.log.Error("receiver created in the UI left out", "receiver", u.Name, "err", err)
			continue
		}
		ok = append(ok, u)
	}
	return n.build(file, ok)
}

// sortedUI returns the UI receivers by name, with override replacing or
// adding one (nil: none) — the candidate set of PutReceiver.
func (n *Notifier) sortedUI(override *UIReceiver) []UIReceiver {
	out := make([]UIReceiver, 0, len(n.ui)+1)
	for name, u := range n.ui {
		if override != nil && name == override.Name {
			continue
		}
		out = append(out, u)
	}
	if override != nil {
		out = append(out, *override)
	}
	slices.SortFunc(out, func(a, b UIReceiver) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Close stops the scheduler, cancels deliveries in flight, waits for its
// goroutines and writes the state. It is safe to call more than once.
func (n *Notifier) Close() {
	n.closing.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.cancel()
		n.loops.Wait()
		n.attempts.Wait()
		if err := n.persist(dirtyAll); err != nil {
			n.log.Error("cannot save notification state", "err", err)
		}
	})
}

// Reload re-reads the configuration file. A file that does not load leaves
// the running configuration in place and returns a *ConfigError naming the
// file and line.
func (n *Notifier) Reload() error {
	if n.opts.ConfigFile == "" {
		return nil
	}
	cfg, raw, err := readConfig(n.opts.ConfigFile)
	if err != nil {
		n.log.Error("notification config refused; keeping the previous one", "err", err)
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rt, err := n.buildAll(cfg)
	if err != nil {
		n.log.Error("notification config refused; keeping the previous one", "err", err)
		return &ConfigError{File: n.opts.ConfigFile, Msg: err.Error()}
	}
	n.file, n.fileRaw = cfg, raw
	n.apply(rt)
	n.log.Info("notification config loaded", "file", n.opts.ConfigFile, "receivers", len(rt.receivers))
	return nil
}

// apply switches to a new routing: every group is rebuilt from the stored
// alerts, as Alertmanager rebuilds its dispatcher on reload. Groups whose
// alerts waited long enough flush at once; the notification log keeps
// unchanged groups from being notified again. n.mu is held.
func (n *Notifier) apply(rt *routing) {
	now := n.now()
	for _, g := range n.groups {
		n.removeGroup(g)
	}
	n.rt = rt
	for _, e := range n.alerts {
		n.route(e, now)
	}
	n.wakeUp()
}

// Send hands alerts to the notifier. It never waits for receivers. Alerts
// that do not validate (see Alert.Validate) are dropped and counted.
func (n *Notifier) Send(alerts ...Alert) {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	wakeAt := time.Time{}
	for i := range alerts {
		if t, ok := n.put(&alerts[i], now); ok && (wakeAt.IsZero() || t.Before(wakeAt)) {
			wakeAt = t
		}
	}
	if !wakeAt.IsZero() && wakeAt.Before(n.nextWake) {
		n.wakeUp()
	}
}

// put stores one alert and routes it; it returns the earliest flush time it
// set. n.mu is held.
func (n *Notifier) put(a *Alert, now time.Time) (time.Time, bool) {
	if err := a.Validate(); err != nil {
		n.metrics.invalid.Inc()
		n.log.Debug("invalid alert dropped", "err", err)
		return time.Time{}, false
	}
	lset := labelSet(a.Labels)
	fp := lset.Fingerprint()
	startsAt, endsAt, timeout := a.StartsAt, a.EndsAt, false
	if startsAt.IsZero() {
		startsAt = now
		if !endsAt.IsZero() {
			startsAt = endsAt
		}
	}
	if endsAt.IsZero() {
		timeout = true
		endsAt = now.Add(n.rt.resolve)
	}
	e := n.alerts[fp]
	if e == nil {
		if len(n.alerts) >= n.opts.MaxAlerts {
			n.gcAlerts(now)
		}
		if len(n.alerts) >= n.opts.MaxAlerts {
			n.metrics.dropped.Inc()
			return time.Time{}, false
		}
		e = &alertEntry{fp: fp, labels: lset, groups: map[groupID]*aggrGroup{}}
		n.alerts[fp] = e
	} else if (endsAt.After(e.startsAt) && endsAt.Before(e.endsAt)) || (startsAt.After(e.startsAt) && startsAt.Before(e.endsAt)) {
		// Overlapping activity: merge as Alertmanager's Alert.Merge does.
		if e.startsAt.Before(startsAt) {
			startsAt = e.startsAt
		}
		if !endsAt.After(now) { // the new one is resolved
			if e.resolvedAt(now) && e.endsAt.After(endsAt) {
				endsAt = e.endsAt
			}
		} else if e.endsAt.After(endsAt) && !e.timeout {
			endsAt, timeout = e.endsAt, false
		}
	}
	e.annotations = labelSet(a.Annotations)
	e.startsAt, e.endsAt, e.timeout = startsAt, endsAt, timeout
	e.generatorURL = a.GeneratorURL
	e.updatedAt = now
	e.version++
	return n.route(e, now)
}

// route puts an alert into the groups of the routes it matches and takes it
// out of the others. It returns the earliest flush time of those groups.
// n.mu is held.
func (n *Notifier) route(e *alertEntry, now time.Time) (time.Time, bool) {
	var earliest time.Time
	var keep []groupID
	for _, r := range n.rt.match(e) {
		gl := r.groupLabels(e)
		id := groupID{r.id, gl.Fingerprint()}
		g := n.groups[id]
		if g == nil {
			if len(n.groups) >= n.opts.MaxGroups {
				n.metrics.groupsDropped.Inc()
				continue
			}
			g = n.newGroup(id, r, gl, now)
		}
		g.alerts[e.fp] = e
		e.groups[id] = g
		keep = append(keep, id)
		if !g.hasFlushed && e.startsAt.Add(r.groupWait).Before(now) {
			g.next = now
		}
		if earliest.IsZero() || g.next.Before(earliest) {
			earliest = g.next
		}
	}
	for id, g := range e.groups {
		if !slices.Contains(keep, id) {
			delete(e.groups, id)
			delete(g.alerts, e.fp)
			if len(g.alerts) == 0 {
				n.removeGroup(g)
			}
		}
	}
	return earliest, !earliest.IsZero()
}

func (n *Notifier) newGroup(id groupID, r *route, gl model.LabelSet, now time.Time) *aggrGroup {
	g := &aggrGroup{
		id: id, route: r, labels: gl,
		key:    r.key + ":" + gl.String(),
		alerts: map[model.Fingerprint]*alertEntry{},
		next:   now.Add(r.groupWait),
	}
	var ints []*integration
	if ri := n.rt.receivers[r.receiver]; ri != nil {
		ints = append(ints, ri.integrations...)
	}
	ints = append(ints, r.actions...)
	if r.byAction {
		u := string(gl[actionAnnotation])
		if checkURL(u) == nil {
			ints = append(ints, &integration{receiver: actionReceiver, kind: kindAction, sendResolved: true,
				s: &webhookSender{env: n.rt.env, url: u}})
		}
	}
	for _, in := range ints {
		g.targets = append(g.targets, &target{key: g.key + ":" + in.id(), integ: in})
	}
	n.groups[id] = g
	return g
}

// removeGroup forgets a group; attempts in flight finish, retries are
// dropped. n.mu is held.
func (n *Notifier) removeGroup(g *aggrGroup) {
	if g.removed {
		return
	}
	g.removed = true
	delete(n.groups, g.id)
	for fp, e := range g.alerts {
		delete(e.groups, g.id)
		delete(g.alerts, fp)
	}
	for _, t := range g.targets {
		t.dead = true
		if t.retry != nil {
			n.recDone(t.retry.job.rec, false)
			t.retry = nil
		}
	}
}

// wakeUp makes the scheduler look at the groups now. n.mu may be held.
func (n *Notifier) wakeUp() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// loop runs the scheduler: flushes, retries and garbage collection.
func (n *Notifier) loop() {
	defer n.loops.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.wake:
		case <-t.C:
		}
		d := n.tick()
		t.Reset(d)
	}
}

// tick does what is due and returns how long to sleep.
func (n *Notifier) tick() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return maxSleep
	}
	now := n.now()
	for _, g := range n.groups {
		if !g.next.After(now) {
			n.flushGroup(g, now)
		}
	}
	next := now.Add(maxSleep)
	for _, g := range n.groups {
		if g.next.Before(next) {
			next = g.next
		}
		for _, t := range g.targets {
			switch {
			case t.inflight:
			case t.retry != nil && !t.retry.at.After(now):
				j := t.retry.job
				t.retry = nil
				n.launch(t, j)
			case t.again:
				t.again = false
				rec := &flushRec{g: g, partial: true}
				n.flushTarget(g, t, n.snapshot(g, now), now, rec)
				rec.started = true
				n.recCheck(rec)
			}
			if t.retry != nil && t.retry.at.Before(next) {
				next = t.retry.at
			}
		}
	}
	if now.Sub(n.lastGC) >= gcInterval {
		n.lastGC = now
		n.gc(now)
	}
	if n.dirty != 0 {
		n.kickPersister()
	}
	n.nextWake = next
	d := next.Sub(now)
	return min(max(d, time.Millisecond), maxSleep)
}

// snapshot copies a group's alerts as of now, sorted as Alertmanager sorts
// them, with firing alerts' EndsAt cleared. n.mu is held.
func (n *Notifier) snapshot(g *aggrGroup, now time.Time) []*snapAlert {
	out := make([]*snapAlert, 0, len(g.alerts))
	for _, e := range g.alerts {
		s := &snapAlert{
			fp: e.fp, labels: e.labels, annotations: e.annotations,
			startsAt: e.startsAt, endsAt: e.endsAt, generatorURL: e.generatorURL,
			resolved: e.resolvedAt(now), version: e.version,
		}
		if !s.resolved {
			s.endsAt = time.Time{}
			s.silenced = n.muted(e.labels, now)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, compareAlerts)
	return out
}

// muted reports whether an active silence matches lset. n.mu is held.
func (n *Notifier) muted(lset model.LabelSet, now time.Time) bool {
	for _, s := range n.silences {
		if s.mutes(lset, now) {
			return true
		}
	}
	return false
}

// compareAlerts orders alerts as Alertmanager's AlertSlice: by job, then
// instance, then the whole label set.
func compareAlerts(a, b *snapAlert) int {
	for _, k := range [...]model.LabelName{"job", "instance"} {
		av, aok := a.labels[k]
		bv, bok := b.labels[k]
		switch {
		case !aok && !bok:
			continue
		case !aok:
			return 1
		case !bok:
			return -1
		case av != bv:
			return strings.Compare(string(av), string(bv))
		}
	}
	switch {
	case a.labels.Before(b.labels):
		return -1
	case b.labels.Before(a.labels):
		return 1
	}
	return 0
}

// flushGroup notifies a group's targets of its alerts. n.mu is held.
func (n *Notifier) flushGroup(g *aggrGroup, now time.Time) {
	g.hasFlushed = true
	g.next = now.Add(g.route.groupInterval)
	snap := n.snapshot(g, now)
	rec := &flushRec{g: g}
	for _, a := range snap {
		if a.resolved {
			rec.resolved = append(rec.resolved, a)
		}
	}
	for _, t := range g.targets {
		if t.retry != nil { // superseded by this flush
			n.recDone(t.retry.job.rec, false)
			t.retry = nil
		}
		if t.inflight {
			t.again = true
			rec.failed = true
			continue
		}
		t.again = false
		n.flushTarget(g, t, snap, now, rec)
	}
	rec.started = true
	n.recCheck(rec)
}

// flushTarget decides, from the notification log, whether one target must be
// notified, and starts the delivery. n.mu is held.
func (n *Notifier) flushTarget(g *aggrGroup, t *target, snap []*snapAlert, now time.Time, rec *flushRec) {
	var (
		alerts           []*snapAlert
		firing, resolved []uint64
		firingUnmuted    int
	)
	action := t.integ.kind == kindAction
	for _, a := range snap {
		if a.silenced && !action {
			continue
		}
		alerts = append(alerts, a)
		if a.resolved {
			resolved = append(resolved, uint64(a.fp))
		} else {
			firing = append(firing, uint64(a.fp))
			if !a.silenced {
				firingUnmuted++
			}
		}
	}
	entry := n.nflog[t.key]
	var need bool
	if action {
		switch {
		case firingUnmuted > 0:
			need = entry == nil || len(entry.Firing) == 0 // open
			alerts = slices.DeleteFunc(alerts, func(a *snapAlert) bool { return a.silenced })
		case len(firing) == 0:
			need = entry != nil && len(entry.Firing) > 0 // resolve
		}
		if !need && firingUnmuted == 0 && len(firing) > 0 {
			return // all firing alerts silenced: neither open nor resolve
		}
	} else {
		need = needsUpdate(entry, firing, resolved, t.integ.sendResolved, g.route.repeatInterval, now)
	}
	if !need {
		return
	}
	if !t.integ.sendResolved {
		alerts = slices.DeleteFunc(slices.Clone(alerts), func(a *snapAlert) bool { return a.resolved })
	}
	if len(alerts) == 0 {
		// Nothing to send (only resolved alerts, send_resolved false), but the
		// log must know, as Alertmanager's RetryStage reports success.
		n.nflogSet(t.key, t.integ.id(), g.key, firing, resolved, now)
		return
	}
	rec.pending++
	n.launch(t, &job{g: g, alerts: alerts, firing: firing, resolved: resolved, flushAt: now, attempt: 1, rec: rec})
}

// needsUpdate is Alertmanager's DedupStage.needsUpdate.
func needsUpdate(entry *nflogEntry, firing, resolved []uint64, sendResolved bool, repeat time.Duration, now time.Time) bool {
	if entry == nil {
		return len(firing) > 0
	}
	if !isSubset(entry.Firing, firing) {
		return true
	}
	if len(firing) == 0 {
		return len(entry.Firing) > 0
	}
	if sendResolved && !isSubset(entry.Resolved, resolved) {
		return true
	}
	return entry.Timestamp.Before(now.Add(-repeat))
}

// isSubset reports whether every element of sub is in set.
func isSubset(set, sub []uint64) bool {
	if len(sub) == 0 {
		return true
	}
	m := make(map[uint64]struct{}, len(set))
	for _, v := range set {
		m[v] = struct{}{}
	}
	for _, v := range sub {
		if _, ok := m[v]; !ok {
			return false
		}
	}
	return true
}

// launch starts one delivery attempt in its own goroutine. n.mu is held.
func (n *Notifier) launch(t *target, j *job) {
	t.inflight = true
	n.busy++
	n.attempts.Add(1)
	go n.attempt(t, j)
}

func (n *Notifier) attempt(t *target, j *job) {
	defer n.attempts.Done()
	receiver := t.integ.receiver
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	m := &message{receiver: receiver, groupKey: j.g.key, groupLabels: j.g.labels, alerts: j.alerts, now: j.flushAt}
	start := time.Now()
	retry, err := t.integ.s.send(ctx, m)
	dur := time.Since(start)
	cancel()

	n.mu.Lock()
	defer n.mu.Unlock()
	t.inflight = false
	n.busy--
	if n.busy == 0 {
		n.idle.Broadcast()
	}
	if n.closed && err != nil && errors.Is(err, context.Canceled) {
		n.recDone(j.rec, false)
		return
	}
	now := n.now()
	n.record(t.integ, j.g.key, j.alerts, j.attempt, err, dur, now)
	switch {
	case err == nil:
		n.nflogSet(t.key, t.integ.id(), j.g.key, j.firing, j.resolved, j.flushAt)
		n.recDone(j.rec, true)
	case retry && !n.closed && !t.dead:
		t.retry = &retryState{at: now.Add(backoff(j.attempt)), job: j}
		j.attempt++
		if t.retry.at.Before(n.nextWake) {
			n.wakeUp()
		}
	default:
		n.recDone(j.rec, false)
	}
	if t.again {
		n.wakeUp()
	}
	n.kickPersister()
}

// backoff is the wait after the attempt-th failure: doubling from 1 s to
// 1 min, with up to half of it taken off at random.
func backoff(attempt int) time.Duration {
	d := minBackoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d - time.Duration(rand.Int64N(int64(d/2)+1))
}

// recDone counts one finished delivery of a flush. n.mu is held.
func (n *Notifier) recDone(rec *flushRec, ok bool) {
	rec.pending--
	if !ok {
		rec.failed = true
	}
	n.recCheck(rec)
}

// recCheck completes a flush once its deliveries are done: when all
// succeeded, its resolved alerts that did not change since leave the group,
// and an empty group is removed. n.mu is held.
func (n *Notifier) recCheck(rec *flushRec) {
	if !rec.started || rec.pending > 0 || rec.finished {
		return
	}
	rec.finished = true
	g := rec.g
	if rec.failed || rec.partial || g.removed {
		return
	}
	for _, a := range rec.resolved {
		if e := g.alerts[a.fp]; e != nil && e.version == a.version {
			delete(g.alerts, a.fp)
			delete(e.groups, g.id)
		}
	}
	if len(g.alerts) == 0 {
		n.removeGroup(g)
	}
}

// gc drops old resolved alerts, expired silences and notification-log
// entries. n.mu is held.
func (n *Notifier) gc(now time.Time) {
	n.gcAlerts(now)
	n.gcSilences(now)
	for k, e := range n.nflog {
		if !e.ExpiresAt.After(now) {
			delete(n.nflog, k)
			n.dirty |= dirtyNflog
		}
	}
}

func (n *Notifier) gcAlerts(now time.Time) {
	for fp, e := range n.alerts {
		if !e.resolvedAt(now) {
			continue
		}
		age := now.Sub(e.endsAt)
		if age < resolvedKeep || (len(e.groups) > 0 && age < resolvedDrop) {
			continue
		}
		for _, g := range e.groups {
			delete(g.alerts, fp)
			if len(g.alerts) == 0 {
				n.removeGroup(g)
			}
		}
		delete(n.alerts, fp)
	}
}

// waitIdle waits until no delivery attempt is in flight.
func (n *Notifier) waitIdle() {
	n.mu.Lock()
	for n.busy > 0 {
		n.idle.Wait()
	}
	n.mu.Unlock()
}

// AlertStatus is an alert with what the notifier knows of it.
type AlertStatus struct {
	Alert
	Fingerprint string    `json:"fingerprint"`
	UpdatedAt   time.Time `json:"updatedAt"`
	// State is "active", "suppressed" (silenced) or "resolved".
	State      string   `json:"state"`
	SilencedBy []string `json:"silencedBy"`
	// Receivers are the receivers of the routes the alert goes to.
	Receivers []string `json:"receivers"`
}

// Alert states.
const (
	StateActive     = "active"
	StateSuppressed = "suppressed"
	StateResolved   = "resolved"
)

// Alerts returns the current alerts (resolved ones for a while after they
// resolved), sorted by labels.
func (n *Notifier) Alerts() []AlertStatus {
	now := n.now()
	n.mu.Lock()
	out := make([]AlertStatus, 0, len(n.alerts))
	for _, e := range n.alerts {
		out = append(out, n.status(e, now))
	}
	n.mu.Unlock()
	sortStatuses(out)
	return out
}

func sortStatuses(s []AlertStatus) {
	slices.SortFunc(s, func(a, b AlertStatus) int {
		la, lb := labelSet(a.Labels), labelSet(b.Labels)
		switch {
		case la.Before(lb):
			return -1
		case lb.Before(la):
			return 1
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
}

// status describes one alert. n.mu is held.
func (n *Notifier) status(e *alertEntry, now time.Time) AlertStatus {
	s := AlertStatus{
		Alert: Alert{
			Labels: labelMap(e.labels), Annotations: labelMap(e.annotations),
			StartsAt: e.startsAt, EndsAt: e.endsAt, GeneratorURL: e.generatorURL,
		},
		Fingerprint: e.fp.String(),
		UpdatedAt:   e.updatedAt,
		State:       StateActive,
		SilencedBy:  []string{},
		Receivers:   []string{},
	}
	if e.resolvedAt(now) {
		s.State = StateResolved
	} else if ids := n.silencedBy(e.labels, now); len(ids) > 0 {
		s.State, s.SilencedBy = StateSuppressed, ids
	}
	for _, g := range e.groups {
		if r := g.route.receiver; r != "" && !slices.Contains(s.Receivers, r) {
			s.Receivers = append(s.Receivers, r)
		}
	}
	slices.Sort(s.Receivers)
	return s
}

func labelMap(ls model.LabelSet) map[string]string {
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

// AlertGroup is an aggregation group as GET /api/v2/alerts/groups shows it.
type AlertGroup struct {
	Labels   map[string]string `json:"labels"`
	Receiver string            `json:"receiver"`
	GroupKey string            `json:"groupKey"`
	Alerts   []AlertStatus     `json:"alerts"`
}

// Groups returns the aggregation groups of the receivers' routes (not those
// of action webhooks), sorted by receiver and group key.
func (n *Notifier) Groups() []AlertGroup {
	now := n.now()
	n.mu.Lock()
	out := make([]AlertGroup, 0, len(n.groups))
	for _, g := range n.groups {
		if g.route.byAction {
			continue
		}
		ag := AlertGroup{Labels: labelMap(g.labels), Receiver: g.route.receiver, GroupKey: g.key, Alerts: make([]AlertStatus, 0, len(g.alerts))}
		for _, e := range g.alerts {
			ag.Alerts = append(ag.Alerts, n.status(e, now))
		}
		out = append(out, ag)
	}
	n.mu.Unlock()
	for i := range out {
		sortStatuses(out[i].Alerts)
	}
	slices.SortFunc(out, func(a, b AlertGroup) int {
		if c := strings.Compare(a.Receiver, b.Receiver); c != 0 {
			return c
		}
		return strings.Compare(a.GroupKey, b.GroupKey)
	})
	return out
}

// ConfigYAML returns the configuration file as loaded, with secrets hidden
// (empty without a file).
func (n *Notifier) ConfigYAML() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return marshalRedacted(n.file)
}

// Test sends a test notification (one firing alert) to every integration of
// the receiver now, and returns their errors.
func (n *Notifier) Test(ctx context.Context, receiverName string) error {
	now := n.now()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errNotifierIsClosing
	}
	ri := n.rt.receivers[receiverName]
	n.mu.Unlock()
	if ri == nil {
		return fmt.Errorf("%w: %q", ErrReceiverNotFound, receiverName)
	}
	lset := model.LabelSet{model.AlertNameLabel: "OutpostTestNotification", "receiver": model.LabelValue(receiverName), "severity": "none"}
	a := &snapAlert{
		fp: lset.Fingerprint(), labels: lset,
		annotations: model.LabelSet{
			"summary":     "Test notification from Outpost",
			"description": "Sent on request to check that the receiver " + model.LabelValue(receiverName) + " works.",
		},
		startsAt: now, generatorURL: n.extURL,
	}
	gl := model.LabelSet{model.AlertNameLabel: lset[model.AlertNameLabel]}
	m := &message{receiver: receiverName, groupKey: "{}/test:" + gl.String(), groupLabels: gl, alerts: []*snapAlert{a}, now: now}
	var errs []error
	for _, in := range ri.integrations {
		actx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
		start := time.Now()
		_, err := in.s.send(actx, m)
		dur := time.Since(start)
		cancel()
		n.mu.Lock()
		n.record(in, m.groupKey, m.alerts, 1, err, dur, n.now())
		n.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", in.kind, in.idx, err))
		}
	}
	n.kickPersister()
	if len(ri.integrations) == 0 {
		return fmt.Errorf("receiver %q has no integrations", receiverName)
	}
	return errors.Join(errs...)
}
