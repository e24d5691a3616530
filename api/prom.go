package api

// The Prometheus HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/)
// over Outpost's TSDB: the same paths, parameters, JSON envelope, error types and
// status codes as Prometheus, so that Grafana's Prometheus data source and other
// Prometheus clients work unchanged. Queries run on Prometheus' own engine.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/jsonutil"

	"outpost/tsdb"
)

// MetricsDB is what the Prometheus API reads and flushes: *tsdb.DB.
type MetricsDB interface {
	storage.Queryable
	// Metadata returns the type, help and unit of every metric family, by name.
	Metadata() map[string]tsdb.Metadata
	// Flush writes the in-memory head into compressed partitions now.
	Flush() error
}

// PromOptions configure the Prometheus API. Every zero field means the default
// stated on it.
type PromOptions struct {
	// Version is reported by /api/v1/status/buildinfo. Zero: "unknown".
	Version string
	// Logger receives failed queries and admin actions. Zero: slog.Default().
	Logger *slog.Logger
	// Registerer receives the PromQL engine's metrics (prometheus_engine_…).
	// Zero: they are not registered.
	Registerer prometheus.Registerer

	// Timeout bounds the evaluation of one query; a request's "timeout" parameter
	// may only shorten it. Zero: 2 minutes.
	Timeout time.Duration
	// MaxSamples is the most samples one query may hold in memory at once (the
	// engine's --query.max-samples). Zero: 50,000,000.
	MaxSamples int
	// MaxSeries is the most series one query may read from storage, summed over
	// its selectors. Zero: 500,000. Negative: no limit.
	MaxSeries int
	// MaxPointsPerSeries is the most steps a range query may have ((end-start)/step).
	// Zero: 11,000, as in Prometheus.
	MaxPointsPerSeries int
	// LookbackDelta is how far back an instant selector looks for a sample. Zero:
	// 5 minutes.
	LookbackDelta time.Duration
	// Now is the clock for queries without a time. Zero: time.Now.
	Now func() time.Time
	// MaxConcurrent is the most queries evaluated at once (Prometheus'
	// --query.max-concurrency); more wait for a slot within their timeout.
	// Zero: 20.
	MaxConcurrent int
	// CacheBytes bounds the memory of the range-query cache, which answers a
	// range query asked again (a dashboard's refresh) from the steps already
	// answered; it is used when the MetricsDB is a ChangeFeed. Zero: 32 MiB.
	// Negative: no cache.
	CacheBytes int64
}

// Prometheus serves the Prometheus HTTP API. Mount its routes with Register.
type Prometheus struct {
	db     MetricsDB
	opts   PromOptions
	engine *promql.Engine
	parser parser.Parser
	gate   queryGate   // bounds the queries of both engines
	cache  *rangeCache // nil: range queries are not cached
	// partEngine evaluates the parts of a range query split across the cores,
	// at most parts of them, each with MaxSamples/parts (nil: no split).
	partEngine *promql.Engine
	parts      int
}

// NewPrometheus returns the Prometheus API over db.
func NewPrometheus(db MetricsDB, opts PromOptions) *Prometheus {
	if opts.Version == "" {
		opts.Version = "unknown"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.MaxSamples == 0 {
		opts.MaxSamples = 50_000_000
	}
	if opts.MaxSeries == 0 {
		opts.MaxSeries = 500_000
	}
	if opts.MaxPointsPerSeries == 0 {
		opts.MaxPointsPerSeries = 11_000
	}
	if opts.LookbackDelta == 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConcurrent == 0 {
		opts.MaxConcurrent = 20
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 32 << 20
	}
	p := &Prometheus{db: db, opts: opts, parser: parser.NewParser(parser.Options{})}
	if feed, ok := db.(ChangeFeed); ok && opts.CacheBytes > 0 {
		p.cache = newRangeCache(feed, opts.CacheBytes, opts.Registerer)
	}
	p.gate = queryGate{make(chan struct{}, opts.MaxConcurrent)}
	p.engine = p.newEngine(opts.MaxSamples, opts.Registerer)
	if p.cache != nil {
		p.splitInto(min(runtime.GOMAXPROCS(0), 8))
	}
	return p
}

// newEngine returns a PromQL engine with the API's options, holding at most
// maxSamples samples per query, with its metrics registered with reg if not
// nil.
func (p *Prometheus) newEngine(maxSamples int, reg prometheus.Registerer) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:               p.opts.Logger.With("component", "promql"),
		Reg:                  reg,
		MaxSamples:           maxSamples,
		Timeout:              p.opts.Timeout,
		LookbackDelta:        p.opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		ActiveQueryTracker:   p.gate,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
		Parser: p.parser,
	})
}

// splitInto lets range queries the cache does not answer be split into at
// most n parts evaluated at once. The parts share MaxSamples, so that together
// they hold no more than the query would whole.
func (p *Prometheus) splitInto(n int) {
	if n > 1 {
		p.parts, p.partEngine = n, p.newEngine(max(p.opts.MaxSamples/n, 1), nil)
	}
}

// Register mounts the API's routes with handle (for example (*API).Handle). Every
// read endpoint answers GET and POST (form-encoded), as Prometheus does.
func (p *Prometheus) Register(handle func(pattern string, h http.Handler)) {
	for path, f := range map[string]func(*http.Request) result{
		"/api/v1/query":               p.query,
		"/api/v1/query_range":         p.queryRange,
		"/api/v1/series":              p.series,
		"/api/v1/labels":              p.labelNames,
		"/api/v1/label/{name}/values": p.labelValues,
		"/api/v1/query_exemplars":     p.queryExemplars,
		"/api/v1/metadata":            p.metadata,
		"/api/v1/status/buildinfo":    p.buildInfo,
	} {
		h := p.wrap(f)
		handle("GET "+path, h)
		handle("POST "+path, h)
	}
	handle("POST /api/v1/admin/flush", p.wrap(p.flush))
}

// Error types and their status codes, as in Prometheus' web/api/v1.
const (
	errBadData   = "bad_data"   // 400
	errExec      = "execution"  // 422
	errCostLimit = "cost_limit" // 422: too many series read
	errCanceled  = "canceled"   // 499
	errTimeout   = "timeout"    // 503
	errInternal  = "internal"   // 500
	errForbidden = "forbidden"  // 403: admin endpoint from a non-loopback client
)

func errorCode(typ string) int {
	switch typ {
	case errBadData:
		return http.StatusBadRequest
	case errExec, errCostLimit:
		return http.StatusUnprocessableEntity
	case errCanceled:
		return 499 // client closed the request, as Prometheus answers
	case errTimeout:
		return http.StatusServiceUnavailable
	case errForbidden:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

type apiError struct {
	typ string
	err error
}

// result is what an endpoint returns: either err, or data written by write.
type result struct {
	write    func(s *jsoniter.Stream) // writes the "data" value; nil: no data
	err      *apiError
	warnings annotations.Annotations
	query    string // for positions in annotations
	close    func() // runs after the response is encoded
}

func fail(typ string, err error) result { return result{err: &apiError{typ, err}} }

func badParam(name string, err error) result {
	return fail(errBadData, fmt.Errorf("invalid parameter %q: %w", name, err))
}

func (p *Prometheus) wrap(f func(*http.Request) result) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			p.respond(w, r, fail(errBadData, fmt.Errorf("error parsing form values: %w", err)))
			return
		}
		res := f(r)
		p.respond(w, r, res)
		if res.close != nil {
			res.close()
		}
	})
}

// respond writes the Prometheus envelope:
// {"status":"success","data":…,"warnings":[…],"infos":[…]} or
// {"status":"error","errorType":"…","error":"…"}.
func (p *Prometheus) respond(w http.ResponseWriter, r *http.Request, res result) {
	s := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(s)
	code := http.StatusOK
	s.WriteObjectStart()
	s.WriteObjectField("status")
	if res.err != nil {
		code = errorCode(res.err.typ)
		s.WriteString("error")
		s.WriteMore()
		s.WriteObjectField("errorType")
		s.WriteString(res.err.typ)
		s.WriteMore()
		s.WriteObjectField("error")
		s.WriteString(res.err.err.Error())
		if code >= 500 && res.err.typ != errTimeout {
			p.opts.Logger.Error("prometheus api request failed", "path", r.URL.Path, "err", res.err.err)
		}
	} else {
		s.WriteString("success")
		if res.write != nil {
			s.WriteMore()
			s.WriteObjectField("data")
			res.write(s)
		}
	}
	warn, info := res.warnings.AsStrings(res.query, 10, 10)
	for _, f := range []struct {
		name string
		list []string
	}{{"warnings", warn}, {"infos", info}} {
		if len(f.list) == 0 {
			continue
		}
		s.WriteMore()
		s.WriteObjectField(f.name)
		writeStrings(s, f.list)
	}
	s.WriteObjectEnd()
	s.WriteRaw("\n")
	if s.Error != nil {
		http.Error(w, "cannot encode response: "+s.Error.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.Buffer())))
	w.WriteHeader(code)
	w.Write(s.Buffer())
}

func (p *Prometheus) query(r *http.Request) result {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return badParam("limit", err)
	}
	ts := p.opts.Now()
	if v := r.FormValue("time"); v != "" {
		if ts, err = parseTime(v); err != nil {
			return badParam("time", fmt.Errorf("invalid time value for 'time': %w", err))
		}
	}
	ctx, cancel, res := p.queryContext(r)
	if res.err != nil {
		return res
	}
	defer cancel()
	opts, res := p.queryOpts(r)
	if res.err != nil {
		return res
	}
	qs := r.FormValue("query")
	qry, err := p.engine.NewInstantQuery(ctx, p.limited(), opts, qs, ts)
	if err != nil {
		return p.constructionError(err)
	}
	return p.exec(ctx, qry, qs, limit)
}

func (p *Prometheus) queryRange(r *http.Request) result {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return badParam("limit", err)
	}
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return badParam("start", err)
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return badParam("end", err)
	}
	if end.Before(start) {
		return badParam("end", errors.New("end timestamp must not be before start time"))
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return badParam("step", err)
	}
	if step <= 0 {
		return badParam("step", errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"))
	}
	if pts := end.Sub(start) / step; pts > time.Duration(p.opts.MaxPointsPerSeries) {
		return fail(errBadData, fmt.Errorf("exceeded maximum resolution of %d points per timeseries (this query asks for %d). Try decreasing the query resolution (?step=XX)", p.opts.MaxPointsPerSeries, int64(pts)))
	}
	ctx, cancel, res := p.queryContext(r)
	if res.err != nil {
		return res
	}
	defer cancel()
	opts, res := p.queryOpts(r)
	if res.err != nil {
		return res
	}
	qs := r.FormValue("query")
	if p.cache != nil {
		if expr, err := p.parser.ParseExpr(qs); err == nil && (expr.Type() == parser.ValueTypeVector || expr.Type() == parser.ValueTypeScalar) {
			if cacheable(expr) {
				return p.cachedResult(ctx, opts, qs, start, end, step, limit)
			}
			p.cache.results.WithLabelValues("uncacheable").Inc()
		}
	}
	qry, err := p.engine.NewRangeQuery(ctx, p.limited(), opts, qs, start, end, step)
	if err != nil {
		return p.constructionError(err)
	}
	return p.exec(ctx, qry, qs, limit)
}

// limited returns the storage a query reads through: one that fails the query
// once its selectors have returned more than MaxSeries series in all. (The
// engine's own query-cost limit would do the same, but it checks the context
// twice for every sample read, about a sixth of the CPU of a query over many
// samples.)
func (p *Prometheus) limited() storage.Queryable {
	if p.opts.MaxSeries <= 0 {
		return p.db
	}
	return seriesLimit{p.db, p.opts.MaxSeries}
}

// seriesLimit is a Queryable whose queriers count the series their selects
// return, in all, and fail past max.
type seriesLimit struct {
	storage.Queryable
	max int
}

func (l seriesLimit) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := l.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &seriesLimitQuerier{Querier: q, left: l.max}, nil
}

type seriesLimitQuerier struct {
	storage.Querier
	mu   sync.Mutex // the engine may select concurrently
	left int
}

func (q *seriesLimitQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &seriesLimitSet{SeriesSet: q.Querier.Select(ctx, sorted, hints, ms...), q: q}
}

type seriesLimitSet struct {
	storage.SeriesSet
	q   *seriesLimitQuerier
	err error
}

func (s *seriesLimitSet) Next() bool {
	if s.err != nil || !s.SeriesSet.Next() {
		return false
	}
	s.q.mu.Lock()
	s.q.left--
	over := s.q.left < 0
	s.q.mu.Unlock()
	if over {
		s.err = promql.ErrTooManySeries("query execution")
		return false
	}
	return true
}

func (s *seriesLimitSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.SeriesSet.Err()
}

// queryGate bounds the queries the engine evaluates at once: a query takes a
// slot before it runs and waits for one, within its context, when all are
// taken (the engine's QueryTracker, without Prometheus' on-disk log).
type queryGate struct{ slots chan struct{} }

func (g queryGate) GetMaxConcurrent() int { return cap(g.slots) }
func (g queryGate) Close() error          { return nil }
func (g queryGate) Delete(int)            { <-g.slots }
func (g queryGate) Insert(ctx context.Context, _ string) (int, error) {
	select {
	case g.slots <- struct{}{}:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// queryContext applies the request's "timeout" parameter; the engine's own
// timeout (Options.Timeout) applies in any case.
func (p *Prometheus) queryContext(r *http.Request) (context.Context, context.CancelFunc, result) {
	ctx := r.Context()
	v := r.FormValue("timeout")
	if v == "" {
		return ctx, func() {}, result{}
	}
	d, err := parseDuration(v)
	if err != nil {
		return nil, nil, badParam("timeout", err)
	}
	if d <= 0 {
		return nil, nil, badParam("timeout", fmt.Errorf("timeout must be positive, got %s", d))
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, result{}
}

func (p *Prometheus) queryOpts(r *http.Request) (promql.QueryOpts, result) {
	var lookback time.Duration
	if v := r.FormValue("lookback_delta"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, fail(errBadData, fmt.Errorf("error parsing lookback delta duration: %w", err))
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(false, lookback, nil), result{}
}

// exec runs qry and encodes its value; the query is closed once the response is
// written, since its value's memory is pooled.
func (p *Prometheus) exec(ctx context.Context, qry promql.Query, qs string, limit int) result {
	res := qry.Exec(ctx)
	if res.Err != nil {
		defer qry.Close()
		return result{err: p.execError(res.Err), warnings: res.Warnings, query: qs}
	}
	warnings := res.Warnings
	val := res.Value
	if limit > 0 {
		switch v := val.(type) {
		case promql.Vector:
			if len(v) > limit {
				val = v[:limit]
				warnings = warnings.Add(errors.New("results truncated due to limit"))
			}
		case promql.Matrix:
			if len(v) > limit {
				val = v[:limit]
				warnings = warnings.Add(errors.New("results truncated due to limit"))
			}
		}
	}
	return result{
		write:    func(s *jsoniter.Stream) { writeQueryData(s, val) },
		warnings: warnings,
		query:    qs,
		close:    qry.Close,
	}
}

// cachedResult answers a range query through the cache.
func (p *Prometheus) cachedResult(ctx context.Context, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration, limit int) result {
	from, st := timestamp.FromTime(start), step.Milliseconds()
	last := from + (timestamp.FromTime(end)-from)/st*st
	mat, warnings, err := p.cachedRange(ctx, opts, qs, from, last, st)
	if err != nil {
		var be buildError
		if errors.As(err, &be) {
			return p.constructionError(be.err)
		}
		return result{err: p.execError(err), warnings: warnings, query: qs}
	}
	if limit > 0 && len(mat) > limit {
		mat = mat[:limit]
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	return result{write: func(s *jsoniter.Stream) { writeQueryData(s, mat) }, warnings: warnings, query: qs}
}

// constructionError classifies an error of building a query: a timeout or a
// cancellation while waiting, otherwise a bad query.
func (p *Prometheus) constructionError(err error) result {
	var eqt promql.ErrQueryTimeout
	var eqc promql.ErrQueryCanceled
	if errors.As(err, &eqt) || errors.As(err, &eqc) {
		return result{err: p.execError(err)}
	}
	return badParam("query", err)
}

// execError classifies an evaluation error and says which limit was hit.
func (p *Prometheus) execError(err error) *apiError {
	var (
		tooManySamples promql.ErrTooManySamples
		tooManySeries  promql.ErrTooManySeries
		timeout        promql.ErrQueryTimeout
	)
	// The storage may notice the deadline before the engine does, and then
	// returns the context's own error.
	if errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &timeout) {
		err = promql.ErrQueryTimeout("query execution")
	}
	switch {
	case errors.As(err, &tooManySamples):
		err = fmt.Errorf("%w (the limit is %d samples per query)", err, p.opts.MaxSamples)
	case errors.As(err, &tooManySeries):
		err = fmt.Errorf("%w (the limit is %d series per query)", err, p.opts.MaxSeries)
	case errors.As(err, &timeout):
		err = fmt.Errorf("%w (the limit is %s per query)", err, p.opts.Timeout)
	}
	return classify(err)
}

func classify(err error) *apiError {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
		ets promql.ErrTooManySeries
		etr promql.ErrTooManySamplesRead
	)
	switch {
	case errors.As(err, &eqc):
		return &apiError{errCanceled, err}
	case errors.As(err, &eqt):
		return &apiError{errTimeout, err}
	case errors.As(err, &ets), errors.As(err, &etr):
		return &apiError{errCostLimit, err}
	case errors.As(err, &es):
		return &apiError{errInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{errCanceled, err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{errTimeout, err}
	}
	return &apiError{errExec, err}
}

func (p *Prometheus) series(r *http.Request) result {
	if len(r.Form["match[]"]) == 0 {
		return fail(errBadData, errors.New("no match[] parameter provided"))
	}
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return badParam("limit", err)
	}
	start, end, res := timeRange(r)
	if res.err != nil {
		return res
	}
	sets, err := p.matchers(r.Form["match[]"])
	if err != nil {
		return badParam("match[]", err)
	}
	q, err := p.db.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return result{err: classify(err)}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: timestamp.FromTime(start), End: timestamp.FromTime(end), Func: "series"}
	ctx := r.Context()
	var set storage.SeriesSet
	if len(sets) > 1 {
		var all []storage.SeriesSet
		for _, ms := range sets {
			all = append(all, q.Select(ctx, true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(all, 0, storage.ChainedSeriesMerge)
	} else {
		set = q.Select(ctx, false, hints, sets[0]...)
	}
	var out []labels.Labels
	warnings := set.Warnings()
	for set.Next() {
		if limit > 0 && len(out) == limit {
			warnings = warnings.Add(errors.New("results truncated due to limit"))
			break
		}
		out = append(out, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		return result{err: classify(err), warnings: warnings}
	}
	return result{warnings: warnings, write: func(s *jsoniter.Stream) {
		s.WriteArrayStart()
		for i, ls := range out {
			if i > 0 {
				s.WriteMore()
			}
			writeLabels(s, ls)
		}
		s.WriteArrayEnd()
	}}
}

func (p *Prometheus) labelNames(r *http.Request) result {
	return p.labelList(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, &storage.LabelHints{}, ms...)
	})
}

func (p *Prometheus) labelValues(r *http.Request) result {
	name := r.PathValue("name")
	if len(name) > 3 && name[:3] == "U__" {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return fail(errBadData, fmt.Errorf("invalid label name: %q", name))
	}
	return p.labelList(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, &storage.LabelHints{}, ms...)
	})
}

// labelList answers /labels and /label/…/values: the union over the match[]
// selectors (all series when none), sorted, cut at limit.
func (p *Prometheus) labelList(r *http.Request, list func(context.Context, storage.Querier, []*labels.Matcher) ([]string, annotations.Annotations, error)) result {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return badParam("limit", err)
	}
	start, end, res := timeRange(r)
	if res.err != nil {
		return res
	}
	sets, err := p.matchers(r.Form["match[]"])
	if err != nil {
		return fail(errBadData, err)
	}
	q, err := p.db.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return result{err: classify(err)}
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	var warnings annotations.Annotations
	seen := map[string]struct{}{}
	for _, ms := range sets {
		vals, ws, err := list(r.Context(), q, ms)
		warnings.Merge(ws)
		if err != nil {
			return result{err: &apiError{errExec, err}, warnings: warnings}
		}
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	return result{warnings: warnings, write: func(s *jsoniter.Stream) { writeStrings(s, out) }}
}

// queryExemplars answers /api/v1/query_exemplars, which Grafana calls beside
// queries: the TSDB stores no exemplars, so a valid request gets an empty list.
func (p *Prometheus) queryExemplars(r *http.Request) result {
	start, end, res := timeRange(r)
	if res.err != nil {
		return res
	}
	if end.Before(start) {
		return badParam("end", errors.New("end timestamp must not be before start timestamp"))
	}
	if _, err := p.parser.ParseExpr(r.FormValue("query")); err != nil {
		return fail(errBadData, err)
	}
	return result{write: func(s *jsoniter.Stream) { writeStrings(s, nil) }}
}

// metadata answers /api/v1/metadata: {"<metric>":[{"type","help","unit"}]}, with
// the optional "metric" filter, "limit" (metrics) and "limit_per_metric".
func (p *Prometheus) metadata(r *http.Request) result {
	limit := -1
	if v := r.FormValue("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil {
			return fail(errBadData, errors.New("limit must be a number"))
		}
	}
	if v := r.FormValue("limit_per_metric"); v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return fail(errBadData, errors.New("limit_per_metric must be a number"))
		}
		// Outpost keeps one metadata entry per metric: any limit ≥ 1 is met.
	}
	md := p.db.Metadata()
	metric := r.FormValue("metric")
	names := make([]string, 0, len(md))
	for name := range md {
		if metric == "" || name == metric {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if limit >= 0 && len(names) > limit {
		names = names[:limit]
	}
	return result{write: func(s *jsoniter.Stream) {
		s.WriteObjectStart()
		for i, name := range names {
			if i > 0 {
				s.WriteMore()
			}
			m := md[name]
			s.WriteObjectField(name)
			s.WriteArrayStart()
			s.WriteObjectStart()
			s.WriteObjectField("type")
			s.WriteString(m.Type)
			s.WriteMore()
			s.WriteObjectField("help")
			s.WriteString(m.Help)
			s.WriteMore()
			s.WriteObjectField("unit")
			s.WriteString(m.Unit)
			s.WriteObjectEnd()
			s.WriteArrayEnd()
		}
		s.WriteObjectEnd()
	}}
}

func (p *Prometheus) buildInfo(*http.Request) result {
	return result{write: func(s *jsoniter.Stream) {
		s.WriteObjectStart()
		for i, kv := range [][2]string{
			{"version", p.opts.Version},
			{"revision", ""},
			{"branch", ""},
			{"buildUser", ""},
			{"buildDate", ""},
			{"goVersion", runtime.Version()},
		} {
			if i > 0 {
				s.WriteMore()
			}
			s.WriteObjectField(kv[0])
			s.WriteString(kv[1])
		}
		s.WriteObjectEnd()
	}}
}

// flush answers POST /api/v1/admin/flush. Until Outpost has logins, only a client
// on the loopback interface that did not come through a proxy may call it.
func (p *Prometheus) flush(r *http.Request) result {
	if !fromLoopback(r) {
		return fail(errForbidden, errors.New("admin endpoints only answer requests from the loopback interface"))
	}
	t0 := time.Now()
	if err := p.db.Flush(); err != nil {
		return fail(errInternal, fmt.Errorf("cannot flush: %w", err))
	}
	took := time.Since(t0)
	p.opts.Logger.Info("tsdb flushed by admin request", "took_ms", took.Milliseconds())
	return result{write: func(s *jsoniter.Stream) {
		s.WriteObjectStart()
		s.WriteObjectField("tookSeconds")
		s.WriteFloat64(took.Seconds())
		s.WriteObjectEnd()
	}}
}

// fromLoopback reports whether r comes straight from the loopback interface: a
// loopback peer that forwards for someone else (a reverse proxy) does not count.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	return r.Header.Get("X-Forwarded-For") == "" && r.Header.Get("Forwarded") == "" && r.Header.Get("X-Real-Ip") == ""
}

// matchers parses match[] selectors; each must hold a matcher that does not match
// the empty string, as Prometheus requires.
func (p *Prometheus) matchers(sel []string) ([][]*labels.Matcher, error) {
	sets, err := p.parser.ParseMetricSelectors(sel)
	if err != nil {
		return nil, err
	}
outer:
	for _, ms := range sets {
		for _, m := range ms {
			if m != nil && !m.Matches("") {
				continue outer
			}
		}
		return nil, errors.New("match[] must contain at least one non-empty matcher")
	}
	return sets, nil
}

// The optional start and end of the metadata endpoints, as Prometheus bounds them.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
)

func timeRange(r *http.Request) (start, end time.Time, res result) {
	start, end = minTime, maxTime
	var err error
	if v := r.FormValue("start"); v != "" {
		if start, err = parseTime(v); err != nil {
			return start, end, badParam("start", fmt.Errorf("invalid time value for 'start': %w", err))
		}
	}
	if v := r.FormValue("end"); v != "" {
		if end, err = parseTime(v); err != nil {
			return start, end, badParam("end", fmt.Errorf("invalid time value for 'end': %w", err))
		}
	}
	return start, end, result{}
}

// parseTime reads Unix seconds (a float, millisecond precision) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(t)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTime.Format(time.RFC3339Nano):
		return minTime, nil
	case maxTime.Format(time.RFC3339Nano):
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration reads seconds (a float) or a Prometheus duration ("1m30s").
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// parseLimit reads a "limit" parameter; 0 means none.
func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}

// writeQueryData writes {"resultType":…,"result":…} in Prometheus' shapes:
// vector samples {"metric":{…},"value":[t,"v"]} or {"metric":{…},"histogram":[t,{…}]},
// matrix series {"metric":{…},"values":[[t,"v"],…],"histograms":[[t,{…}],…]},
// scalar and string [t,"v"].
func writeQueryData(s *jsoniter.Stream, v parser.Value) {
	s.WriteObjectStart()
	s.WriteObjectField("resultType")
	s.WriteString(string(v.Type()))
	s.WriteMore()
	s.WriteObjectField("result")
	switch v := v.(type) {
	case promql.Vector:
		s.WriteArrayStart()
		for i, smp := range v {
			if i > 0 {
				s.WriteMore()
			}
			s.WriteObjectStart()
			s.WriteObjectField("metric")
			writeLabels(s, smp.Metric)
			s.WriteMore()
			if smp.H == nil {
				s.WriteObjectField("value")
			} else {
				s.WriteObjectField("histogram")
			}
			s.WriteArrayStart()
			jsonutil.MarshalTimestamp(smp.T, s)
			s.WriteMore()
			if smp.H == nil {
				jsonutil.MarshalFloat(smp.F, s)
			} else {
				jsonutil.MarshalHistogram(smp.H, s)
			}
			s.WriteArrayEnd()
			s.WriteObjectEnd()
		}
		s.WriteArrayEnd()
	case promql.Matrix:
		s.WriteArrayStart()
		for i, ser := range v {
			if i > 0 {
				s.WriteMore()
			}
			s.WriteObjectStart()
			s.WriteObjectField("metric")
			writeLabels(s, ser.Metric)
			if len(ser.Floats) > 0 {
				s.WriteMore()
				s.WriteObjectField("values")
				s.WriteArrayStart()
				for j, pt := range ser.Floats {
					if j > 0 {
						s.WriteMore()
					}
					s.WriteArrayStart()
					jsonutil.MarshalTimestamp(pt.T, s)
					s.WriteMore()
					jsonutil.MarshalFloat(pt.F, s)
					s.WriteArrayEnd()
				}
				s.WriteArrayEnd()
			}
			if len(ser.Histograms) > 0 {
				s.WriteMore()
				s.WriteObjectField("histograms")
				s.WriteArrayStart()
				for j, pt := range ser.Histograms {
					if j > 0 {
						s.WriteMore()
					}
					s.WriteArrayStart()
					jsonutil.MarshalTimestamp(pt.T, s)
					s.WriteMore()
					jsonutil.MarshalHistogram(pt.H, s)
					s.WriteArrayEnd()
				}
				s.WriteArrayEnd()
			}
			s.WriteObjectEnd()
		}
		s.WriteArrayEnd()
	case promql.Scalar:
		s.WriteArrayStart()
		jsonutil.MarshalTimestamp(v.T, s)
		s.WriteMore()
		jsonutil.MarshalFloat(v.V, s)
		s.WriteArrayEnd()
	case promql.String:
		s.WriteArrayStart()
		jsonutil.MarshalTimestamp(v.T, s)
		s.WriteMore()
		s.WriteString(v.V)
		s.WriteArrayEnd()
	default:
		s.WriteNil()
	}
	s.WriteObjectEnd()
}

func writeLabels(s *jsoniter.Stream, ls labels.Labels) {
	s.WriteObjectStart()
	i := 0
	ls.Range(func(l labels.Label) {
		if i > 0 {
			s.WriteMore()
		}
		i++
		s.WriteObjectField(l.Name)
		s.WriteString(l.Value)
	})
	s.WriteObjectEnd()
}

func writeStrings(s *jsoniter.Stream, list []string) {
	s.WriteArrayStart()
	for i, v := range list {
		if i > 0 {
			s.WriteMore()
		}
		s.WriteString(v)
	}
	s.WriteArrayEnd()
}
