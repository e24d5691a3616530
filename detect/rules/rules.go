package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"go.yaml.in/yaml/v3"
	"outpost/detect/rules/promrules"

	"outpost/internal/atomicfile"
)

// Storage is what rules read and write: *tsdb.DB.
type Storage interface {
	storage.Queryable
	storage.AppendableV2
}

// Options configure a Manager. Every zero field means the default stated on it.
type Options struct {
	// Storage is queried by the rules and receives recording-rule results, ALERTS
	// and ALERTS_FOR_STATE. Required.
	Storage Storage
	// Dir holds the operator's rule files (*.yml, *.yaml), read but never written.
	// Zero: none.
	Dir string
	// UserDir holds the groups created through the API, one rule file per group.
	// It is created when the first group is saved. Zero: PutGroup and DeleteGroup
	// fail with ErrNoUserDir.
	UserDir string
	// Interval is the evaluation interval of a group that states none. Zero: 1m,
	// Prometheus' default evaluation_interval.
	Interval time.Duration
	// PollInterval is how often the files' modification times, sizes and set are
	// compared with the last load. Zero: 5 s. Negative: no polling (Reload only).
	PollInterval time.Duration
	// OutageTolerance is how long a pending alert's `for` state may have been
	// unrecorded and still be restored after a restart. Zero: 1h, as Prometheus'
	// --rules.alert.for-outage-tolerance.
	OutageTolerance time.Duration
	// ForGracePeriod is the least time a restored alert waits before it fires.
	// Zero: 10m, as Prometheus' --rules.alert.for-grace-period.
	ForGracePeriod time.Duration
	// ResendDelay is how often a still-active alert is handed to Notify again.
	// Zero: 1m, as Prometheus' --rules.alert.resend-delay.
	ResendDelay time.Duration
	// QueryTimeout bounds one rule's query. Zero: 2m.
	QueryTimeout time.Duration
	// MaxSamples is the most samples one rule's query may hold. Zero: 50,000,000.
	MaxSamples int
	// LookbackDelta is how far back an instant selector looks. Zero: 5m.
	LookbackDelta time.Duration
	// Notify receives, after each evaluation of an alerting rule, the alerts that
	// are due to be sent (Prometheus' NotifyFunc). Zero: alerts go nowhere.
	Notify promrules.NotifyFunc
	// Logger receives load errors and evaluation failures. Zero: slog.Default().
	Logger *slog.Logger
	// Registerer receives the rule manager's metrics (prometheus_rule_…). Zero:
	// they are not registered.
	Registerer prometheus.Registerer
}

// FileError is a refused rule file or group: where and why.
type FileError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"error"`
}

func (e FileError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Message)
}

// Errors returned by PutGroup and DeleteGroup, usable with errors.Is.
var (
	ErrNoUserDir = errors.New("no directory for rule groups created through the API")
	ErrNotFound  = errors.New("rule group not found")
	ErrInvalid   = errors.New("invalid rule group")
	ErrConflict  = errors.New("rule group is defined in a rule file of the rules directory")
)

// Manager loads rule files and evaluates them. Its methods are safe for
// concurrent use.
type Manager struct {
	opts   Options
	log    *slog.Logger
	parser parser.Parser
	engine *promql.Engine
	query  promrules.QueryFunc
	prom   *promrules.Manager

	mu     sync.Mutex                     // serializes loads and writes
	good   map[string]*rulefmt.RuleGroups // last valid content of each file, by path
	stamps map[string]stamp               // what the last load saw, for the poller
	// scanErrs is what the last load could not read, for the poller.
	scanErrs []FileError

	errMu sync.RWMutex
	errs  []FileError // of the last load

	evalMu sync.Mutex
	evals  map[*promrules.Group]int // EvalAt's evaluations of each group

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type stamp struct {
	mtime time.Time
	size  int64
}

// New loads the rule files and starts evaluating them and polling for changes.
// Refused files are logged and reported by LoadErrors; they do not make New fail.
// Close stops it.
func New(opts Options) (*Manager, error) {
	if opts.Storage == nil {
		return nil, errors.New("cannot start rules: no storage")
	}
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.OutageTolerance == 0 {
		opts.OutageTolerance = time.Hour
	}
	if opts.ForGracePeriod == 0 {
		opts.ForGracePeriod = 10 * time.Minute
	}
	if opts.ResendDelay == 0 {
		opts.ResendDelay = time.Minute
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = 2 * time.Minute
	}
	if opts.MaxSamples == 0 {
		opts.MaxSamples = 50_000_000
	}
	if opts.LookbackDelta == 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	if opts.Notify == nil {
		opts.Notify = func(context.Context, string, ...*promrules.Alert) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{
		opts:   opts,
		log:    opts.Logger,
		parser: parser.NewParser(parser.Options{}),
		good:   map[string]*rulefmt.RuleGroups{},
		stamps: map[string]stamp{},
		stop:   make(chan struct{}),
	}
	m.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               opts.Logger.With("component", "promql"),
		MaxSamples:           opts.MaxSamples,
		Timeout:              opts.QueryTimeout,
		LookbackDelta:        opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
		Parser: m.parser,
	})
	m.query = promrules.EngineQueryFunc(m.engine, opts.Storage)
	m.prom = promrules.NewManager(&promrules.ManagerOptions{
		QueryFunc:       m.query,
		NotifyFunc:      opts.Notify,
		Context:         context.Background(),
		AppendableV2:    opts.Storage,
		Queryable:       opts.Storage,
		Logger:          opts.Logger,
		Registerer:      opts.Registerer,
		OutageTolerance: opts.OutageTolerance,
		ForGracePeriod:  opts.ForGracePeriod,
		ResendDelay:     opts.ResendDelay,
		GroupLoader:     loader{m},
		Parser:          m.parser,
	})
	m.mu.Lock()
	_, err := m.reloadLocked()
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.prom.Run() }()
	if opts.PollInterval > 0 {
		m.wg.Add(1)
		go m.poll()
	}
	return m, nil
}

// Close stops evaluation and polling and waits for them. Calling it again does
// nothing.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		close(m.stop)
		m.mu.Lock() // no reload in flight
		m.prom.Stop()
		m.mu.Unlock()
		m.wg.Wait()
	})
}

func (m *Manager) poll() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		stamps, errs := m.scan()
		m.mu.Lock()
		changed := !slices.Equal(errs, m.scanErrs) || !stampsEqual(stamps, m.stamps)
		m.mu.Unlock()
		if changed {
			m.log.Info("rule files changed; reloading")
			m.Reload()
		}
	}
}

func stampsEqual(a, b map[string]stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.mtime.Equal(v.mtime) || w.size != v.size {
			return false
		}
	}
	return true
}

// Reload re-reads every rule file now (on SIGHUP). Files that are refused keep
// their last valid version running; their errors are logged, returned joined,
// and kept for LoadErrors.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.stop:
		return errors.New("cannot reload rules: manager closed")
	default:
	}
	refused, err := m.reloadLocked()
	if err != nil {
		return err
	}
	errs := make([]error, len(refused))
	for i, e := range refused {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// scan lists the rule files of both directories with their stamps, and what
// could not be read.
func (m *Manager) scan() (map[string]stamp, []FileError) {
	out := map[string]stamp{}
	var errs []FileError
	for _, dir := range []string{m.opts.Dir, m.opts.UserDir} {
		if dir == "" {
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			if dir == m.opts.UserDir && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			errs = append(errs, FileError{File: dir, Message: fmt.Sprintf("cannot read rules directory: %v", err)})
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) {
				continue
			}
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p) // follows symlinks, as a ConfigMap mount has them
			if err != nil {
				errs = append(errs, FileError{File: p, Message: fmt.Sprintf("cannot stat rule file: %v", err)})
				continue
			}
			if fi.IsDir() {
				continue
			}
			out[p] = stamp{fi.ModTime(), fi.Size()}
		}
	}
	return out, errs
}

// reloadLocked loads the files; refused lists the files refused (logged), err
// says the manager could not take the new set.
func (m *Manager) reloadLocked() (refused []FileError, err error) {
	t0 := time.Now()
	stamps, scanErrs := m.scan()
	ferrs := slices.Clone(scanErrs)
	next := make(map[string]*rulefmt.RuleGroups, len(stamps))
	for p := range stamps {
		b, err := os.ReadFile(p)
		var errs []FileError
		var rgs *rulefmt.RuleGroups
		if err != nil {
			errs = []FileError{{File: p, Message: fmt.Sprintf("cannot read: %v", err)}}
		} else {
			rgs, errs = m.parse(p, b, 0)
		}
		if len(errs) > 0 {
			ferrs = append(ferrs, errs...)
			if old, ok := m.good[p]; ok {
				next[p] = old
			}
			continue
		}
		next[p] = rgs
	}
	for _, e := range scanErrs { // an unreadable directory or file keeps what it had
		for p, g := range m.good {
			if _, ok := next[p]; !ok && (p == e.File || filepath.Dir(p) == filepath.Clean(e.File)) {
				next[p] = g
			}
		}
	}
	slices.SortFunc(ferrs, func(a, b FileError) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	for _, e := range ferrs {
		m.log.Error("rule file refused; its last valid version keeps running", "file", e.File, "line", e.Line, "column", e.Column, "reason", e.Message)
	}
	m.good, m.stamps, m.scanErrs = next, stamps, scanErrs
	m.errMu.Lock()
	m.errs = ferrs
	m.errMu.Unlock()
	files := make([]string, 0, len(next))
	for p := range next {
		files = append(files, p)
	}
	slices.Sort(files)
	if err := m.prom.Update(m.opts.Interval, files, labels.EmptyLabels(), "", nil); err != nil {
		return ferrs, fmt.Errorf("cannot update rule groups: %w", err)
	}
	groups := 0
	for _, g := range next {
		groups += len(g.Groups)
	}
	m.log.Info("rules loaded", "files", len(files), "groups", groups, "refused", len(ferrs), "took_ms", time.Since(t0).Milliseconds())
	return ferrs, nil
}

// loader serves the manager the parsed files of the last load, so that a file
// refused on disk keeps its last valid version.
type loader struct{ m *Manager }

func (l loader) Load(identifier string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	if g, ok := l.m.good[identifier]; ok { // called under m.mu, by Update
		return g, nil
	}
	return nil, []error{fmt.Errorf("%s: not loaded", identifier)}
}

func (l loader) Parse(query string) (parser.Expr, error) { return l.m.parser.ParseExpr(query) }

// parse parses and validates a rule file's content; lineOffset is subtracted
// from the lines of its errors.
func (m *Manager) parse(file string, b []byte, lineOffset int) (*rulefmt.RuleGroups, []FileError) {
	rgs, errs := rulefmt.Parse(b, false, model.UTF8Validation, m.parser, m.log)
	if len(errs) == 0 {
		return rgs, nil
	}
	out := make([]FileError, 0, len(errs))
	for _, err := range errs {
		fe := locate(file, err)
		if fe.Line == 0 {
			findLine(b, &fe)
		}
		fe.shift(lineOffset)
		if !slices.Contains(out, fe) { // YAML errors come twice: rulefmt decodes twice
			out = append(out, fe)
		}
	}
	return nil, out
}

var (
	posRE      = regexp.MustCompile(`^(\d+):(\d+): (?:\d+:\d+: )?`)
	lineRE     = regexp.MustCompile(`line (\d+)`)
	repeatedRE = regexp.MustCompile(`^groupname: "(.*)" is repeated`)
	ruleRE     = regexp.MustCompile(`^group "(.*)", rule (\d+), `)
)

// locate turns a rulefmt or YAML error into a FileError with its line and
// column when the error states them.
func locate(file string, err error) FileError {
	msg := err.Error()
	fe := FileError{File: file, Message: msg}
	if sm := posRE.FindStringSubmatch(msg); sm != nil {
		fe.Line, _ = strconv.Atoi(sm[1])
		fe.Column, _ = strconv.Atoi(sm[2])
		fe.Message = msg[len(sm[0]):]
	} else if sm := lineRE.FindStringSubmatch(msg); sm != nil {
		fe.Line, _ = strconv.Atoi(sm[1])
		fe.Message = strings.TrimPrefix(msg, "yaml: ")
	}
	return fe
}

// findLine finds the line of errors rulefmt gives without one: a repeated group
// name (the second group) and a bad template (its rule).
func findLine(content []byte, fe *FileError) {
	var doc yaml.Node
	if yaml.Unmarshal(content, &doc) != nil || len(doc.Content) != 1 {
		return
	}
	groups := child(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return
	}
	if sm := repeatedRE.FindStringSubmatch(fe.Message); sm != nil {
		seen := false
		for _, g := range groups.Content {
			if n := child(g, "name"); n != nil && n.Value == sm[1] {
				if seen {
					fe.Line, fe.Column = g.Line, g.Column
					return
				}
				seen = true
			}
		}
		return
	}
	if sm := ruleRE.FindStringSubmatch(fe.Message); sm != nil {
		i, _ := strconv.Atoi(sm[2])
		for _, g := range groups.Content {
			if n := child(g, "name"); n != nil && n.Value == sm[1] {
				if rules := child(g, "rules"); rules != nil && i >= 1 && i <= len(rules.Content) {
					r := rules.Content[i-1]
					fe.Line, fe.Column = r.Line, r.Column
				}
				return
			}
		}
	}
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// shift maps a position in a group wrapped into a file (asFile) back to the
// group's own text: off lines up, two columns left.
func (fe *FileError) shift(off int) {
	if off == 0 || fe.Line == 0 {
		return
	}
	fe.Line -= off
	if fe.Column > 2 {
		fe.Column -= 2
	}
	fe.Message = lineRE.ReplaceAllStringFunc(fe.Message, func(w string) string {
		n, _ := strconv.Atoi(w[len("line "):])
		return "line " + strconv.Itoa(n-off)
	})
}

// LoadErrors returns the errors of the files refused by the last load.
func (m *Manager) LoadErrors() []FileError {
	m.errMu.RLock()
	defer m.errMu.RUnlock()
	return slices.Clone(m.errs)
}

// Groups returns the running rule groups, sorted by file and name.
func (m *Manager) Groups() []*promrules.Group { return m.prom.RuleGroups() }

// AlertingRules returns every running alerting rule.
func (m *Manager) AlertingRules() []*promrules.AlertingRule { return m.prom.AlertingRules() }

// Query evaluates expr at ts as rules do (a scalar becomes a one-sample
// vector): the preview of a rule's expression. A parse error is a
// *parser.ParseErr.
func (m *Manager) Query(ctx context.Context, expr string, ts time.Time) (promql.Vector, error) {
	if _, err := m.parser.ParseExpr(expr); err != nil {
		return nil, err
	}
	return m.query(ctx, expr, ts)
}

// EvalAt evaluates every group once at ts in the caller's goroutine, as the
// scheduler would, including its restore of pending alerts' `for` state from
// ALERTS_FOR_STATE after a group's second evaluation since loading (until then,
// as in Prometheus, ALERTS and ALERTS_FOR_STATE are not written). It is for
// tests and back-tests with a clock of their own: the groups' intervals must be
// long enough that the scheduler does not evaluate them meanwhile.
func (m *Manager) EvalAt(ctx context.Context, ts time.Time) {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()
	if m.evals == nil {
		m.evals = map[*promrules.Group]int{}
	}
	for _, g := range m.prom.RuleGroups() {
		promrules.DefaultEvalIterationFunc(ctx, g, ts)
		m.evals[g]++
		if m.evals[g] == 2 && !restored(g) {
			g.RestoreForState(ts)
		}
	}
}

func restored(g *promrules.Group) bool {
	for _, r := range g.AlertingRules() {
		if !r.Restored() {
			return false
		}
	}
	return true
}

// Validate parses and validates body, a rule group (name, interval, rules) or a
// whole rule file (groups: …), as PutGroup would. The errors' lines are those
// of body; their File is file.
func (m *Manager) Validate(file string, body []byte) (*rulefmt.RuleGroups, []FileError) {
	content, offset, ferr := asFile(file, body)
	if ferr != nil {
		return nil, []FileError{*ferr}
	}
	return m.parse(file, content, offset)
}

// asFile turns a single group into a rule file; a rule file stays as it is.
func asFile(file string, body []byte) ([]byte, int, *FileError) {
	var top yaml.Node
	if err := yaml.Unmarshal(body, &top); err != nil {
		fe := locate(file, err)
		return nil, 0, &fe
	}
	if len(top.Content) == 1 && top.Content[0].Kind == yaml.MappingNode {
		for i := 0; i+1 < len(top.Content[0].Content); i += 2 {
			if top.Content[0].Content[i].Value == "groups" {
				return body, 0, nil
			}
		}
	} else if len(top.Content) == 0 {
		return nil, 0, &FileError{File: file, Message: "empty rule group"}
	}
	var b bytes.Buffer
	b.WriteString("groups:\n")
	for i, line := range strings.Split(strings.TrimRight(string(body), "\n"), "\n") {
		if i == 0 {
			b.WriteString("- ")
		} else if line != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), 1, nil
}

// userFile is where the API-created group name is kept.
func (m *Manager) userFile(name string) string {
	return filepath.Join(m.opts.UserDir, url.PathEscape(name)+".yml")
}

// PutGroup creates or replaces the API-created group name with body (a group,
// or a rule file holding exactly that one group), stored as a rule file in
// UserDir, and loads it. An invalid body is refused with ErrInvalid and its
// errors; nothing changes then.
func (m *Manager) PutGroup(name string, body []byte) ([]FileError, error) {
	if m.opts.UserDir == "" {
		return nil, ErrNoUserDir
	}
	if name == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalid)
	}
	file := m.userFile(name)
	content, offset, ferr := asFile(file, body)
	if ferr != nil {
		return []FileError{*ferr}, ErrInvalid
	}
	rgs, ferrs := m.parse(file, content, offset)
	if len(ferrs) > 0 {
		return ferrs, ErrInvalid
	}
	if len(rgs.Groups) != 1 || rgs.Groups[0].Name != name {
		got := make([]string, len(rgs.Groups))
		for i, g := range rgs.Groups {
			got[i] = g.Name
		}
		return []FileError{{File: file, Message: fmt.Sprintf("the body must hold exactly the group %q, it holds %q", name, got)}}, ErrInvalid
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, g := range m.good {
		if filepath.Dir(p) == filepath.Clean(m.opts.UserDir) {
			continue
		}
		for _, rg := range g.Groups {
			if rg.Name == name {
				return nil, fmt.Errorf("%w: %q in %s", ErrConflict, name, p)
			}
		}
	}
	if err := os.MkdirAll(m.opts.UserDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create rules directory: %w", err)
	}
	if err := atomicfile.WriteFile(file, content, 0o644); err != nil {
		return nil, err
	}
	m.reloadLocked()
	return nil, nil
}

// DeleteGroup removes the API-created group name and stops evaluating it.
func (m *Manager) DeleteGroup(name string) error {
	if m.opts.UserDir == "" {
		return ErrNoUserDir
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	file := m.userFile(name)
	if err := os.Remove(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		return fmt.Errorf("cannot delete rule group %q: %w", name, err)
	}
	if err := atomicfile.SyncDir(m.opts.UserDir); err != nil {
		return err
	}
	m.reloadLocked()
	return nil
}

// UserGroup returns the stored rule file of the API-created group name.
func (m *Manager) UserGroup(name string) ([]byte, error) {
	if m.opts.UserDir == "" {
		return nil, ErrNoUserDir
	}
	b, err := os.ReadFile(m.userFile(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return b, err
}

// IsUserFile reports whether file is a rule file of an API-created group.
func (m *Manager) IsUserFile(file string) bool {
	return m.opts.UserDir != "" && filepath.Dir(file) == filepath.Clean(m.opts.UserDir)
}
