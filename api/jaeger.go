package api

// The Jaeger query API (the v1 HTTP JSON API of jaeger-query, which Grafana's
// Jaeger data source and the Jaeger UI read) over Outpost's span store, and the
// OTLP JSON form of one trace. Spans are converted from OTLP to Jaeger's model the
// way the OpenTelemetry Collector's Jaeger translator does: span kind, status and
// instrumentation scope become tags, events become logs, the parent and links
// become CHILD_OF and FOLLOWS_FROM references, resources become processes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/traceindex"
)

// TraceReader is what the Jaeger API reads: *traceindex.Index.
type TraceReader interface {
	Services(ctx context.Context, from, to time.Time) ([]string, error)
	Operations(ctx context.Context, service string, kinds ...ptrace.SpanKind) ([]traceindex.Operation, error)
	SearchTraces(ctx context.Context, q traceindex.Query) ([]ptrace.Traces, error)
	Trace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error)
	Dependencies(ctx context.Context, from, to time.Time) (traceindex.Dependencies, error)
}

// JaegerOptions configure the Jaeger API. Every zero field means the default
// stated on it.
type JaegerOptions struct {
	// Logger receives failed reads. Zero: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// DefaultLimit is the most traces a search returns without a limit parameter.
	// Zero: 100 (Jaeger's default).
	DefaultLimit int
	// DefaultLookback is the search window without a start parameter. Zero: 1 h
	// (Jaeger's default).
	DefaultLookback time.Duration
}

// Jaeger serves the Jaeger query API. Mount it with Register.
type Jaeger struct {
	src  TraceReader
	opts JaegerOptions
}

// NewJaeger returns the Jaeger API over src.
func NewJaeger(src TraceReader, opts JaegerOptions) *Jaeger {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultLimit <= 0 {
		opts.DefaultLimit = 100
	}
	if opts.DefaultLookback <= 0 {
		opts.DefaultLookback = time.Hour
	}
	return &Jaeger{src: src, opts: opts}
}

// Register mounts the endpoints with handle (API.Handle).
func (j *Jaeger) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /api/services", j.wrap(j.services))
	handle("GET /api/services/{service}/operations", j.wrap(j.serviceOperations))
	handle("GET /api/operations", j.wrap(j.operations))
	handle("GET /api/traces", j.wrap(j.search))
	handle("GET /api/traces/{traceID}", j.wrap(j.trace))
	handle("GET /api/dependencies", j.wrap(j.dependencies))
	handle("GET /api/v1/traces/{traceID}", http.HandlerFunc(j.otlpTrace))
}

// JaegerResponse is Jaeger's JSON envelope, for answers and errors alike.
type JaegerResponse struct {
	Data   any           `json:"data"`
	Total  int           `json:"total"`
	Limit  int           `json:"limit"`
	Offset int           `json:"offset"`
	Errors []JaegerError `json:"errors"`
}

// JaegerError is one entry of the envelope's errors.
type JaegerError struct {
	Code    int    `json:"code,omitempty"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}

// jaegerFailure is an error answer: status code and message.
type jaegerFailure struct {
	code int
	msg  string
	err  error // logged for 5xx
}

func badRequest(format string, a ...any) *jaegerFailure {
	return &jaegerFailure{code: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func (j *Jaeger) internal(err error) *jaegerFailure {
	if errors.Is(err, context.Canceled) {
		return &jaegerFailure{code: 499, msg: "request canceled", err: err}
	}
	return &jaegerFailure{code: http.StatusInternalServerError, msg: err.Error(), err: err}
}

func (j *Jaeger) wrap(f func(*http.Request) (JaegerResponse, *jaegerFailure)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, fail := f(r)
		if fail != nil {
			if fail.code >= 500 {
				j.opts.Logger.Error("jaeger query failed", "path", r.URL.Path, "err", fail.err)
			}
			writeJSON(w, fail.code, JaegerResponse{Errors: []JaegerError{{Code: fail.code, Msg: fail.msg}}})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func (j *Jaeger) services(r *http.Request) (JaegerResponse, *jaegerFailure) {
	list, err := j.src.Services(r.Context(), time.Time{}, time.Time{})
	if err != nil {
		return JaegerResponse{}, j.internal(err)
	}
	if list == nil {
		list = []string{}
	}
	return JaegerResponse{Data: list, Total: len(list)}, nil
}

func (j *Jaeger) serviceOperations(r *http.Request) (JaegerResponse, *jaegerFailure) {
	ops, err := j.src.Operations(r.Context(), r.PathValue("service"))
	if err != nil {
		return JaegerResponse{}, j.internal(err)
	}
	names := []string{}
	for _, o := range ops {
		if len(names) == 0 || names[len(names)-1] != o.Name {
			names = append(names, o.Name)
		}
	}
	return JaegerResponse{Data: names, Total: len(names)}, nil
}

// jaegerOperation is an entry of /api/operations.
type jaegerOperation struct {
	Name     string `json:"name"`
	SpanKind string `json:"spanKind"`
}

func (j *Jaeger) operations(r *http.Request) (JaegerResponse, *jaegerFailure) {
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		return JaegerResponse{}, badRequest("parameter 'service' is required")
	}
	var kinds []ptrace.SpanKind
	if k := q.Get("spanKind"); k != "" {
		kind, ok := spanKindOf(k)
		if !ok {
			return JaegerResponse{}, badRequest("unsupported SpanKind: '%s'", k)
		}
		kinds = append(kinds, kind)
	}
	ops, err := j.src.Operations(r.Context(), service, kinds...)
	if err != nil {
		return JaegerResponse{}, j.internal(err)
	}
	out := make([]jaegerOperation, len(ops))
	for i, o := range ops {
		out[i] = jaegerOperation{Name: o.Name, SpanKind: kindTag(o.SpanKind)}
	}
	return JaegerResponse{Data: out, Total: len(out)}, nil
}

func spanKindOf(s string) (ptrace.SpanKind, bool) {
	for _, k := range []ptrace.SpanKind{ptrace.SpanKindInternal, ptrace.SpanKindServer, ptrace.SpanKindClient, ptrace.SpanKindProducer, ptrace.SpanKindConsumer} {
		if kindTag(k) == s {
			return k, true
		}
	}
	if s == "unspecified" {
		return ptrace.SpanKindUnspecified, true
	}
	return 0, false
}

func kindTag(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	}
	return ""
}

// ParseJaegerQuery reads the parameters of GET /api/traces the way jaeger-query
// does: start and end in microseconds since the epoch (default: the last hour),
// minDuration and maxDuration as Go durations ("1.2s", "100ms"), tags as a JSON
// object and/or tag=key:value pairs, limit (default 100). The tags error=true and
// otel.status_code=ERROR select traces with an error span.
func ParseJaegerQuery(v map[string][]string, now time.Time, defLimit int, defLookback time.Duration) (traceindex.Query, error) {
	get := func(k string) string {
		if s := v[k]; len(s) > 0 {
			return s[0]
		}
		return ""
	}
	q := traceindex.Query{Service: get("service"), Operation: get("operation")}
	if q.Service == "" {
		return q, errors.New("parameter 'service' is required")
	}
	micros := func(name string, def time.Time) (time.Time, error) {
		s := get(name)
		if s == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("unable to parse param '%s': %w", name, err)
		}
		return time.UnixMicro(n), nil
	}
	var err error
	if q.End, err = micros("end", now); err != nil {
		return q, err
	}
	if q.Start, err = micros("start", q.End.Add(-defLookback)); err != nil {
		return q, err
	}
	if q.Start.After(q.End) {
		return q, errors.New("'start' should be before 'end'")
	}
	dur := func(name string) (time.Duration, error) {
		s := get(name)
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("unable to parse param '%s': %w", name, err)
		}
		if d < 0 {
			return 0, fmt.Errorf("unable to parse param '%s': negative duration", name)
		}
		return d, nil
	}
	if q.MinDuration, err = dur("minDuration"); err != nil {
		return q, err
	}
	if q.MaxDuration, err = dur("maxDuration"); err != nil {
		return q, err
	}
	if q.MaxDuration != 0 && q.MaxDuration < q.MinDuration {
		return q, errors.New("'maxDuration' should be greater than 'minDuration'")
	}
	q.Limit = defLimit
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("unable to parse param 'limit': %q is not a non-negative integer", s)
		}
		if n > 0 {
			q.Limit = n
		}
	}
	q.Limit = min(q.Limit, traceindex.MaxSearchLimit)
	tags := map[string]string{}
	for _, s := range v["tags"] {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return q, fmt.Errorf("malformed 'tags' parameter, expecting JSON object of strings: %w", err)
		}
		for k, val := range m {
			switch x := val.(type) {
			case string:
				tags[k] = x
			case bool, float64:
				tags[k] = fmt.Sprint(x)
			default:
				return q, fmt.Errorf("malformed 'tags' parameter: the value of %q is not a string", k)
			}
		}
	}
	for _, s := range v["tag"] {
		k, val, ok := strings.Cut(s, ":")
		if !ok || k == "" {
			return q, fmt.Errorf("malformed 'tag' parameter, expecting key:value, received: %s", s)
		}
		tags[k] = val
	}
	if tags["error"] == "true" {
		q.ErrorsOnly = true
		delete(tags, "error")
	}
	if tags["otel.status_code"] == "ERROR" {
		q.ErrorsOnly = true
		delete(tags, "otel.status_code")
	}
	if len(tags) > 0 {
		q.Tags = tags
	}
	return q, nil
}

func (j *Jaeger) search(r *http.Request) (JaegerResponse, *jaegerFailure) {
	v := r.URL.Query()
	if ids := v["traceID"]; len(ids) > 0 {
		var out []JaegerTrace
		var errs []JaegerError
		for _, s := range ids {
			id, err := traceindex.ParseTraceID(s)
			if err != nil {
				return JaegerResponse{}, badRequest("%s", err.Error())
			}
			td, err := j.src.Trace(r.Context(), id)
			if errors.Is(err, traceindex.ErrNotFound) {
				errs = append(errs, JaegerError{Code: http.StatusNotFound, Msg: "trace not found", TraceID: s})
				continue
			}
			if err != nil {
				return JaegerResponse{}, j.internal(err)
			}
			out = append(out, ToJaeger(td))
		}
		if out == nil {
			out = []JaegerTrace{}
		}
		return JaegerResponse{Data: out, Errors: errs}, nil
	}
	q, err := ParseJaegerQuery(v, j.opts.Now(), j.opts.DefaultLimit, j.opts.DefaultLookback)
	if err != nil {
		return JaegerResponse{}, badRequest("%s", err.Error())
	}
	found, err := j.src.SearchTraces(r.Context(), q)
	if err != nil {
		return JaegerResponse{}, j.internal(err)
	}
	out := make([]JaegerTrace, len(found))
	for i, td := range found {
		out[i] = ToJaeger(td)
	}
	return JaegerResponse{Data: out}, nil
}

func (j *Jaeger) trace(r *http.Request) (JaegerResponse, *jaegerFailure) {
	td, fail := j.lookup(r)
	if fail != nil {
		return JaegerResponse{}, fail
	}
	return JaegerResponse{Data: []JaegerTrace{ToJaeger(td)}}, nil
}

func (j *Jaeger) lookup(r *http.Request) (ptrace.Traces, *jaegerFailure) {
	id, err := traceindex.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		return ptrace.Traces{}, badRequest("%s", err.Error())
	}
	td, err := j.src.Trace(r.Context(), id)
	if errors.Is(err, traceindex.ErrNotFound) {
		return ptrace.Traces{}, &jaegerFailure{code: http.StatusNotFound, msg: "trace not found"}
	}
	if err != nil {
		return ptrace.Traces{}, j.internal(err)
	}
	return td, nil
}

// otlpTrace answers GET /api/v1/traces/{traceID} with the trace as OTLP JSON
// (an ExportTraceServiceRequest); errors use Jaeger's envelope.
func (j *Jaeger) otlpTrace(w http.ResponseWriter, r *http.Request) {
	td, fail := j.lookup(r)
	if fail == nil {
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err == nil {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		fail = j.internal(fmt.Errorf("cannot encode trace: %w", err))
	}
	writeJSON(w, fail.code, JaegerResponse{Errors: []JaegerError{{Code: fail.code, Msg: fail.msg}}})
}

// JaegerDependency is an entry of /api/dependencies.
type JaegerDependency struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}

func (j *Jaeger) dependencies(r *http.Request) (JaegerResponse, *jaegerFailure) {
	v := r.URL.Query()
	end := j.opts.Now()
	if s := v.Get("endTs"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return JaegerResponse{}, badRequest("unable to parse param 'endTs': %s", err)
		}
		end = time.UnixMilli(n)
	}
	lookback := 24 * time.Hour
	if s := v.Get("lookback"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return JaegerResponse{}, badRequest("unable to parse param 'lookback': %q is not a non-negative integer", s)
		}
		lookback = time.Duration(n) * time.Millisecond
	}
	deps, err := j.src.Dependencies(r.Context(), end.Add(-lookback), end)
	if err != nil {
		return JaegerResponse{}, j.internal(err)
	}
	out := make([]JaegerDependency, len(deps.Edges))
	for i, d := range deps.Edges {
		out[i] = JaegerDependency{Parent: d.Parent, Child: d.Child, CallCount: d.CallCount}
	}
	return JaegerResponse{Data: out}, nil
}

// Jaeger's JSON model (model/json in the Jaeger repository).

// JaegerTrace is one trace in Jaeger's JSON model.
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
	Warnings  []string                 `json:"warnings"`
}

// JaegerSpan is a span in Jaeger's JSON model; times are microseconds.
type JaegerSpan struct {
	TraceID       string            `json:"traceID"`
	SpanID        string            `json:"spanID"`
	Flags         uint32            `json:"flags,omitempty"`
	OperationName string            `json:"operationName"`
	References    []JaegerReference `json:"references"`
	StartTime     int64             `json:"startTime"`
	Duration      int64             `json:"duration"`
	Tags          []JaegerKeyValue  `json:"tags"`
	Logs          []JaegerLog       `json:"logs"`
	ProcessID     string            `json:"processID"`
	Warnings      []string          `json:"warnings"`
}

// JaegerReference links a span to its parent (CHILD_OF) or a linked span
// (FOLLOWS_FROM).
type JaegerReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// JaegerProcess is a resource: the service name and the other attributes.
type JaegerProcess struct {
	ServiceName string           `json:"serviceName"`
	Tags        []JaegerKeyValue `json:"tags"`
}

// JaegerLog is a span event.
type JaegerLog struct {
	Timestamp int64            `json:"timestamp"`
	Fields    []JaegerKeyValue `json:"fields"`
}

// JaegerKeyValue is a typed tag: type is string, bool, int64, float64 or binary.
type JaegerKeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// JaegerTraceID writes a trace id as Jaeger does: 16 hex digits when the high
// half is zero, else 32.
func JaegerTraceID(id pcommon.TraceID) string {
	s := id.String()
	if strings.HasPrefix(s, "0000000000000000") {
		return s[16:]
	}
	return s
}

// noServiceName is the process name of a resource without service.name, as the
// Collector's translator names it.
const noServiceName = "OTLPResourceNoServiceName"

// ToJaeger converts the spans of one trace to Jaeger's model, spans sorted by
// start time, processes numbered p1, p2, … in that order.
func ToJaeger(td ptrace.Traces) JaegerTrace {
	type item struct {
		span    ptrace.Span
		scope   pcommon.InstrumentationScope
		process string
	}
	out := JaegerTrace{Processes: map[string]JaegerProcess{}}
	var items []item
	procKeys := map[string]string{} // resource fingerprint → process id
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		proc := JaegerProcess{ServiceName: noServiceName, Tags: []JaegerKeyValue{}}
		rs.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			if k == "service.name" {
				proc.ServiceName = v.AsString()
				return true
			}
			proc.Tags = append(proc.Tags, keyValue(k, v))
			return true
		})
		fp, _ := json.Marshal(proc)
		pid, ok := procKeys[string(fp)]
		if !ok {
			pid = "p" + strconv.Itoa(len(procKeys)+1)
			procKeys[string(fp)] = pid
			out.Processes[pid] = proc
		}
		sss := rs.ScopeSpans()
		for k := 0; k < sss.Len(); k++ {
			spans := sss.At(k).Spans()
			for l := 0; l < spans.Len(); l++ {
				items = append(items, item{spans.At(l), sss.At(k).Scope(), pid})
			}
		}
	}
	sort.SliceStable(items, func(a, b int) bool {
		x, y := items[a].span, items[b].span
		if x.StartTimestamp() != y.StartTimestamp() {
			return x.StartTimestamp() < y.StartTimestamp()
		}
		a1, b1 := x.SpanID(), y.SpanID()
		return slices.Compare(a1[:], b1[:]) < 0
	})
	// Renumber processes in span order, so the numbering is stable however the
	// resources were grouped in storage.
	renum := map[string]string{}
	procs := map[string]JaegerProcess{}
	for _, it := range items {
		if _, ok := renum[it.process]; !ok {
			id := "p" + strconv.Itoa(len(renum)+1)
			renum[it.process] = id
			procs[id] = out.Processes[it.process]
		}
	}
	out.Processes = procs
	out.Spans = make([]JaegerSpan, 0, len(items))
	for _, it := range items {
		sp := it.span
		if out.TraceID == "" {
			out.TraceID = JaegerTraceID(sp.TraceID())
		}
		out.Spans = append(out.Spans, jaegerSpan(sp, it.scope, renum[it.process]))
	}
	return out
}

func jaegerSpan(sp ptrace.Span, scope pcommon.InstrumentationScope, pid string) JaegerSpan {
	tid := JaegerTraceID(sp.TraceID())
	js := JaegerSpan{
		TraceID:       tid,
		SpanID:        sp.SpanID().String(),
		OperationName: sp.Name(),
		References:    []JaegerReference{},
		StartTime:     int64(sp.StartTimestamp()) / 1000,
		Tags:          []JaegerKeyValue{},
		Logs:          []JaegerLog{},
		ProcessID:     pid,
	}
	if sp.EndTimestamp() > sp.StartTimestamp() {
		js.Duration = int64(sp.EndTimestamp()-sp.StartTimestamp()) / 1000
	}
	if !sp.ParentSpanID().IsEmpty() {
		js.References = append(js.References, JaegerReference{RefType: "CHILD_OF", TraceID: tid, SpanID: sp.ParentSpanID().String()})
	}
	links := sp.Links()
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		js.References = append(js.References, JaegerReference{RefType: "FOLLOWS_FROM", TraceID: JaegerTraceID(l.TraceID()), SpanID: l.SpanID().String()})
	}
	sp.Attributes().Range(func(k string, v pcommon.Value) bool {
		js.Tags = append(js.Tags, keyValue(k, v))
		return true
	})
	if k := kindTag(sp.Kind()); k != "" {
		js.Tags = append(js.Tags, JaegerKeyValue{"span.kind", "string", k})
	}
	switch sp.Status().Code() {
	case ptrace.StatusCodeError:
		js.Tags = append(js.Tags, JaegerKeyValue{"otel.status_code", "string", "ERROR"}, JaegerKeyValue{"error", "bool", true})
	case ptrace.StatusCodeOk:
		js.Tags = append(js.Tags, JaegerKeyValue{"otel.status_code", "string", "OK"})
	}
	if m := sp.Status().Message(); m != "" {
		js.Tags = append(js.Tags, JaegerKeyValue{"otel.status_description", "string", m})
	}
	if ts := sp.TraceState().AsRaw(); ts != "" {
		js.Tags = append(js.Tags, JaegerKeyValue{"w3c.tracestate", "string", ts})
	}
	if n := scope.Name(); n != "" {
		js.Tags = append(js.Tags, JaegerKeyValue{"otel.scope.name", "string", n})
		if v := scope.Version(); v != "" {
			js.Tags = append(js.Tags, JaegerKeyValue{"otel.scope.version", "string", v})
		}
	}
	events := sp.Events()
	for i := 0; i < events.Len(); i++ {
		ev := events.At(i)
		l := JaegerLog{Timestamp: int64(ev.Timestamp()) / 1000, Fields: []JaegerKeyValue{}}
		if _, has := ev.Attributes().Get("event"); ev.Name() != "" && !has {
			l.Fields = append(l.Fields, JaegerKeyValue{"event", "string", ev.Name()})
		}
		ev.Attributes().Range(func(k string, v pcommon.Value) bool {
			l.Fields = append(l.Fields, keyValue(k, v))
			return true
		})
		js.Logs = append(js.Logs, l)
	}
	return js
}

func keyValue(k string, v pcommon.Value) JaegerKeyValue {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return JaegerKeyValue{k, "string", v.Str()}
	case pcommon.ValueTypeBool:
		return JaegerKeyValue{k, "bool", v.Bool()}
	case pcommon.ValueTypeInt:
		return JaegerKeyValue{k, "int64", v.Int()}
	case pcommon.ValueTypeDouble:
		return JaegerKeyValue{k, "float64", v.Double()}
	case pcommon.ValueTypeBytes:
		return JaegerKeyValue{k, "binary", v.Bytes().AsRaw()}
	}
	return JaegerKeyValue{k, "string", v.AsString()}
}
