package api

// The Logs API: search, counts over time, facets and a live tail of the log
// records in the log index, as JSON and server-sent events.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"outpost/logindex"
)

// LogReader is what the Logs API reads: *logindex.Index.
type LogReader interface {
	Search(ctx context.Context, req logindex.SearchRequest) (*logindex.SearchResult, error)
	Histogram(ctx context.Context, req logindex.HistogramRequest) (*logindex.Histogram, error)
	Facets(ctx context.Context, req logindex.FacetsRequest) (*logindex.Facets, error)
	Tail(query string) (*logindex.Tail, error)
	Get(id string) (logindex.Record, error)
}

// LogsOptions configure the Logs API. Every zero field means the default stated
// on it.
type LogsOptions struct {
	// Logger receives failed reads. Zero: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// DefaultLookback is the time range without a start parameter, ending at the
	// end parameter (or now). Zero: 1 h.
	DefaultLookback time.Duration
	// Timeout bounds every search, histogram and facet request (the log index has
	// its own bound too; the shorter wins). Zero: 30 s.
	Timeout time.Duration
	// Heartbeat is how often an idle tail sends a comment, so that proxies and
	// browsers keep the stream open. Zero: 15 s.
	Heartbeat time.Duration
	// MaxTailDuration ends a tail after this long; browsers reconnect on their
	// own. Zero: 1 h.
	MaxTailDuration time.Duration
}

// Logs serves the Logs API. Mount it with Register; call Close when the server
// shuts down, so that open tails end (http.Server.Shutdown waits for them
// otherwise).
type Logs struct {
	src  LogReader
	opts LogsOptions

	done      chan struct{} // closed by Close: open tails end
	closeOnce sync.Once
	tails     atomic.Int64
}

// NewLogs returns the Logs API over src.
func NewLogs(src LogReader, opts LogsOptions) *Logs {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultLookback <= 0 {
		opts.DefaultLookback = time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.MaxTailDuration <= 0 {
		opts.MaxTailDuration = time.Hour
	}
	return &Logs{src: src, opts: opts, done: make(chan struct{})}
}

// Register mounts the endpoints with handle (API.Handle):
//
//	GET /api/v1/logs            ?query=&start=&end=&limit=&cursor=
//	GET /api/v1/logs/histogram  ?query=&start=&end=&step=
//	GET /api/v1/logs/facets     ?query=&start=&end=&size=&keys=
//	GET /api/v1/logs/tail       ?query=   (server-sent events)
//	GET /api/v1/logs/{id}       one record
func (l *Logs) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v1/logs", http.HandlerFunc(l.search))
	handle("GET /api/v1/logs/histogram", http.HandlerFunc(l.histogram))
	handle("GET /api/v1/logs/facets", http.HandlerFunc(l.facets))
	handle("GET /api/v1/logs/tail", http.HandlerFunc(l.tail))
	handle("GET /api/v1/logs/{id}", http.HandlerFunc(l.record))
}

// Close ends every open tail and refuses new ones. It is safe to call more than
// once and may be passed to http.Server.RegisterOnShutdown.
func (l *Logs) Close() { l.closeOnce.Do(func() { close(l.done) }) }

// OpenTails is the number of tails being served.
func (l *Logs) OpenTails() int { return int(l.tails.Load()) }

// LogsError is the body of every error answer: {"error": "..."}.
type LogsError struct {
	Error string `json:"error"`
}

func (l *Logs) fail(w http.ResponseWriter, r *http.Request, err error) {
	var qe *logindex.QueryError
	switch {
	case errors.As(err, &qe):
		writeJSON(w, http.StatusBadRequest, LogsError{qe.Error()})
	case errors.Is(err, logindex.ErrNotFound):
		writeJSON(w, http.StatusNotFound, LogsError{"log record not found"})
	case errors.Is(err, logindex.ErrTooManyTails):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, LogsError{err.Error()})
	case errors.Is(err, logindex.ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, LogsError{"the log index is closed"})
	case errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusServiceUnavailable, LogsError{"the search took longer than its timeout; narrow the query or the time range"})
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
	default:
		l.opts.Logger.Error("logs request failed", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, LogsError{err.Error()})
	}
}

// logsParamError is a parameter that cannot be used; it answers 400.
type logsParamError struct{ msg string }

func (e *logsParamError) Error() string { return e.msg }

// timeRange reads start and end: RFC 3339 or Unix seconds; end defaults to now,
// start to end minus DefaultLookback.
func (l *Logs) timeRange(r *http.Request) (start, end time.Time, err error) {
	q := r.URL.Query()
	end = l.opts.Now()
	if s := q.Get("end"); s != "" {
		if end, err = logindex.ParseTime(s); err != nil {
			return start, end, &logsParamError{fmt.Sprintf("invalid end %q: %v", s, err)}
		}
	}
	start = end.Add(-l.opts.DefaultLookback)
	if s := q.Get("start"); s != "" {
		if start, err = logindex.ParseTime(s); err != nil {
			return start, end, &logsParamError{fmt.Sprintf("invalid start %q: %v", s, err)}
		}
	}
	if !end.After(start) {
		return start, end, &logsParamError{"end must be after start"}
	}
	return start, end, nil
}

// intParam reads a non-negative integer parameter; absent means 0.
func intParam(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, &logsParamError{fmt.Sprintf("invalid %s %q: want a non-negative integer", name, s)}
	}
	return n, nil
}

// durationParam reads a duration as the Prometheus API does: a duration such as
// 30s, 5m, 1h or 1d, or a number of seconds.
func durationParam(r *http.Request, name string) (time.Duration, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e10 {
		return time.Duration(f * float64(time.Second)), nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if f, err := strconv.ParseFloat(n, 64); err == nil && f >= 0 && f < 1e5 {
			return time.Duration(f * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, &logsParamError{fmt.Sprintf("invalid %s %q: want a duration such as 1m or a number of seconds", name, s)}
	}
	return d, nil
}

func (l *Logs) badRequest(w http.ResponseWriter, err error) bool {
	var bp *logsParamError
	if errors.As(err, &bp) {
		writeJSON(w, http.StatusBadRequest, LogsError{bp.msg})
		return true
	}
	return false
}

func (l *Logs) search(w http.ResponseWriter, r *http.Request) {
	start, end, err := l.timeRange(r)
	if l.badRequest(w, err) {
		return
	}
	limit, err := intParam(r, "limit")
	if l.badRequest(w, err) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), l.opts.Timeout)
	defer cancel()
	q := r.URL.Query()
	res, err := l.src.Search(ctx, logindex.SearchRequest{Query: q.Get("query"), Start: start, End: end, Limit: limit, Cursor: q.Get("cursor")})
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// LogsHistogram is the answer of /api/v1/logs/histogram: the index's histogram
// with the step also in seconds and the range actually counted.
type LogsHistogram struct {
	*logindex.Histogram
	StepSeconds float64   `json:"step_seconds"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
}

func (l *Logs) histogram(w http.ResponseWriter, r *http.Request) {
	start, end, err := l.timeRange(r)
	if l.badRequest(w, err) {
		return
	}
	step, err := durationParam(r, "step")
	if l.badRequest(w, err) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), l.opts.Timeout)
	defer cancel()
	h, err := l.src.Histogram(ctx, logindex.HistogramRequest{Query: r.URL.Query().Get("query"), Start: start, End: end, Step: step})
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, LogsHistogram{Histogram: h, StepSeconds: h.Step.Seconds(), Start: start.UTC(), End: end.UTC()})
}

func (l *Logs) facets(w http.ResponseWriter, r *http.Request) {
	start, end, err := l.timeRange(r)
	if l.badRequest(w, err) {
		return
	}
	size, err := intParam(r, "size")
	if l.badRequest(w, err) {
		return
	}
	keys, err := intParam(r, "keys")
	if l.badRequest(w, err) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), l.opts.Timeout)
	defer cancel()
	f, err := l.src.Facets(ctx, logindex.FacetsRequest{Query: r.URL.Query().Get("query"), Start: start, End: end, Size: size, Keys: keys})
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (l *Logs) record(w http.ResponseWriter, r *http.Request) {
	rec, err := l.src.Get(r.PathValue("id"))
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// tail streams the records matching query as server-sent events: one "message"
// event per record (data: the record as JSON, id: its id), a comment line as a
// heartbeat, and a final "end" event saying why the stream ended when the server
// ends it (shutdown, the reader fell behind, MaxTailDuration).
func (l *Logs) tail(w http.ResponseWriter, r *http.Request) {
	select {
	case <-l.done:
		writeJSON(w, http.StatusServiceUnavailable, LogsError{"the server is shutting down"})
		return
	default:
	}
	t, err := l.src.Tail(r.URL.Query().Get("query"))
	if err != nil {
		l.fail(w, r, err)
		return
	}
	defer t.Close()
	l.tails.Add(1)
	defer l.tails.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), l.opts.MaxTailDuration)
	defer cancel()
	go func() { // end the tail when the server shuts down
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	// Records are read on their own goroutine so that heartbeats go out while
	// none arrive; it ends when ctx is done or the tail ends.
	recs := make(chan logindex.Record)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(recs)
		for t.Next(ctx) {
			select {
			case recs <- t.Record():
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-readerDone }()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The subscription is open: say so at once, so a client knows that records
	// sent from now on will arrive.
	if _, err := fmt.Fprint(w, "retry: 3000\n: subscribed\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(l.opts.Heartbeat)
	defer beat.Stop()
	var buf []byte
	for {
		select {
		case rec, ok := <-recs:
			if !ok {
				reason := "the tail ended"
				if err := t.Err(); err != nil {
					reason = err.Error()
				}
				if r.Context().Err() == nil {
					select {
					case <-l.done:
						reason = "the server is shutting down"
					default:
						if ctx.Err() != nil {
							reason = "the tail reached its longest duration"
						}
					}
					b, _ := json.Marshal(LogsError{reason})
					fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
					rc.Flush()
				}
				return
			}
			b, err := json.Marshal(rec)
			if err != nil {
				l.opts.Logger.Error("cannot encode a log record", "id", rec.ID, "err", err)
				continue
			}
			buf = append(buf[:0], "id: "...)
			buf = append(buf, rec.ID...)
			buf = append(buf, "\ndata: "...)
			buf = append(buf, b...)
			buf = append(buf, "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}
