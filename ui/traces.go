package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/traceindex"
)

// TraceSource is what the trace pages read: *traceindex.Index.
type TraceSource interface {
	Services(ctx context.Context, from, to time.Time) ([]string, error)
	Operations(ctx context.Context, service string, kinds ...ptrace.SpanKind) ([]traceindex.Operation, error)
	Search(ctx context.Context, q traceindex.Query) ([]traceindex.TraceSummary, error)
	Trace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error)
	Dependencies(ctx context.Context, from, to time.Time) (traceindex.Dependencies, error)
}

// TracePages serves the Traces search page, the trace view and the service map.
type TracePages struct {
	h       *Handler
	src     TraceSource
	metrics storage.Queryable // span metrics for the service map; may be nil
}

// NewTracePages returns the trace pages drawn inside h's layout. metrics is the
// TSDB holding the service-graph series (traces_service_graph_*); nil means the
// service map shows only the call counts of the span store.
func NewTracePages(h *Handler, src TraceSource, metrics storage.Queryable) *TracePages {
	return &TracePages{h: h, src: src, metrics: metrics}
}

// Register mounts GET /traces, GET /traces/{id} and GET /service-map.
func (p *TracePages) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /traces", http.HandlerFunc(p.search))
	handle("GET /traces/{id}", http.HandlerFunc(p.trace))
	handle("GET /service-map", http.HandlerFunc(p.serviceMap))
}

// TraceRanges are the time ranges the search form offers.
var TraceRanges = []string{"15m", "1h", "3h", "6h", "12h", "24h", "2d", "7d"}

// TraceSearchData is what the Traces page renders.
type TraceSearchData struct {
	Service, Operation, Tags, MinDuration, MaxDuration, Range string
	ErrorsOnly                                                bool
	Limit                                                     int
	Services                                                  []string
	Operations                                                []traceindex.Operation
	Searched                                                  bool
	Results                                                   []TraceRow
	Scatter                                                   string // JSON for the chart: [[start ms…], [duration ms…], [id…], [error…]]
	Err                                                       string
}

// TraceRow is one search result.
type TraceRow struct {
	ID, RootService, RootOperation, Start, Duration string
	Spans, Errors                                   int
}

func (p *TracePages) search(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	d := TraceSearchData{
		Service: v.Get("service"), Operation: v.Get("operation"), Tags: v.Get("tags"),
		MinDuration: v.Get("minDuration"), MaxDuration: v.Get("maxDuration"), Range: v.Get("range"),
		ErrorsOnly: v.Get("errors") != "", Limit: 50,
	}
	if !slices.Contains(TraceRanges, d.Range) {
		d.Range = "1h"
	}
	if n, err := strconv.Atoi(v.Get("limit")); err == nil && n > 0 {
		d.Limit = min(n, 1000)
	}
	ctx := r.Context()
	now := p.h.opts.Now()
	var err error
	if d.Services, err = p.src.Services(ctx, time.Time{}, time.Time{}); err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The service list could not be read.", Err: err})
		return
	}
	if d.Service != "" {
		if d.Operations, err = p.src.Operations(ctx, d.Service); err != nil {
			p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The operations could not be read.", Err: err})
			return
		}
	}
	if len(v) > 0 {
		d.Searched = true
		q, qerr := d.query(now)
		if qerr != nil {
			d.Err = qerr.Error()
		} else {
			res, serr := p.src.Search(ctx, q)
			if serr != nil {
				p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The search failed.", Err: serr})
				return
			}
			d.fill(res)
		}
	}
	p.h.Page(w, r, "Traces", "traces", TracesBody(d))
}

var rangeDur = map[string]time.Duration{"15m": 15 * time.Minute, "1h": time.Hour, "3h": 3 * time.Hour, "6h": 6 * time.Hour, "12h": 12 * time.Hour, "24h": 24 * time.Hour, "2d": 48 * time.Hour, "7d": 7 * 24 * time.Hour}

// query turns the form into a span-store query. Tags are key=value pairs
// separated by spaces; values may be quoted.
func (d *TraceSearchData) query(now time.Time) (traceindex.Query, error) {
	q := traceindex.Query{Service: d.Service, Operation: d.Operation, ErrorsOnly: d.ErrorsOnly, Limit: d.Limit,
		Start: now.Add(-rangeDur[d.Range]), End: now}
	var err error
	for _, f := range []struct {
		s   string
		dst *time.Duration
		n   string
	}{{d.MinDuration, &q.MinDuration, "minimum duration"}, {d.MaxDuration, &q.MaxDuration, "maximum duration"}} {
		if f.s == "" {
			continue
		}
		if *f.dst, err = time.ParseDuration(f.s); err != nil || *f.dst < 0 {
			return q, fmt.Errorf("cannot parse the %s %q: use a duration such as 250ms or 1.5s", f.n, f.s)
		}
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return q, errors.New("the maximum duration is below the minimum")
	}
	tags, err := parseTags(d.Tags)
	if err != nil {
		return q, err
	}
	if len(tags) > 0 {
		q.Tags = tags
	}
	return q, nil
}

// parseTags reads `key=value key2="a value"` (logfmt, as Grafana's search form).
func parseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	s = strings.TrimSpace(s)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("cannot parse tags %q: write key=value pairs separated by spaces", s)
		}
		key := strings.TrimSpace(s[:eq])
		rest := s[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("cannot parse tags: unterminated quote after %s=", key)
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			val, rest = rest[:sp], rest[sp:]
		} else {
			val, rest = rest, ""
		}
		out[key] = val
		s = strings.TrimSpace(rest)
	}
	return out, nil
}

func (d *TraceSearchData) fill(res []traceindex.TraceSummary) {
	type pt struct {
		t, dur float64
		id     string
		err    bool
	}
	pts := make([]pt, 0, len(res))
	for _, s := range res {
		id := s.TraceID.String()
		d.Results = append(d.Results, TraceRow{
			ID: id, RootService: s.RootService, RootOperation: s.RootOperation,
			Start: s.Start.UTC().Format("2006-01-02 15:04:05.000"), Duration: formatSpanDuration(s.Duration),
			Spans: s.SpanCount, Errors: s.ErrorCount,
		})
		pts = append(pts, pt{float64(s.Start.UnixMilli()) / 1000, float64(s.Duration.Microseconds()) / 1000, id, s.ErrorCount > 0})
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].t < pts[j].t })
	cols := [4][]any{{}, {}, {}, {}}
	for _, p := range pts {
		cols[0] = append(cols[0], p.t)
		cols[1] = append(cols[1], p.dur)
		cols[2] = append(cols[2], p.id)
		cols[3] = append(cols[3], p.err)
	}
	b, _ := json.Marshal(cols)
	d.Scatter = string(b)
}

func formatSpanDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// TraceView is what the trace page renders.
type TraceView struct {
	ID            string
	RootService   string
	RootOperation string
	Start         string
	Duration      string
	Services      []ServiceColour
	Spans         []SpanView
	SpanCount     int
	ErrorCount    int
}

// ServiceColour is a service and its colour in the waterfall.
type ServiceColour struct{ Name, Colour string }

// SpanView is one row of the waterfall with its details.
type SpanView struct {
	ID, ParentID, Name, Service, Colour, Kind string
	Depth                                     int
	HasChildren                               bool
	Left, Width                               float64 // percent of the trace
	Offset, Duration                          string
	Critical                                  bool
	Error                                     bool
	StatusCode, StatusMessage                 string
	Attributes, Resource                      []KV
	Events                                    []EventView
	Links                                     []LinkView
	Scope                                     string
}

// KV is an attribute as text.
type KV struct{ Key, Value string }

// EventView is a span event.
type EventView struct {
	Offset, Name string
	Attributes   []KV
}

// LinkView is a span link.
type LinkView struct {
	TraceID, SpanID string
	Attributes      []KV
}

var serviceColours = []string{"#2f6fde", "#e8590c", "#12805c", "#7048e8", "#0c8599", "#d6336c", "#5c940d", "#f59f00", "#495057", "#c0262d"}

func (p *TracePages) trace(w http.ResponseWriter, r *http.Request) {
	id, err := traceindex.ParseTraceID(r.PathValue("id"))
	if err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusBadRequest, UserMessage: "That is not a trace id: write up to 32 hexadecimal digits.", Err: err})
		return
	}
	td, err := p.src.Trace(r.Context(), id)
	if errors.Is(err, traceindex.ErrNotFound) {
		p.h.Fail(w, r, &Error{Code: http.StatusNotFound, UserMessage: "No span of this trace is stored (it may have expired).", Err: err})
		return
	}
	if err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The trace could not be read.", Err: err})
		return
	}
	p.h.Page(w, r, "Trace "+id.String(), "traces", TraceBody(BuildTraceView(td)))
}

type flatSpan struct {
	span  ptrace.Span
	res   pcommon.Resource
	scope pcommon.InstrumentationScope
}

// BuildTraceView lays a trace out as a waterfall: spans in depth-first order
// under their parents (children by start time; spans whose parent is missing
// are roots), bars relative to the whole trace, one colour per service, and the
// critical path marked.
func BuildTraceView(td ptrace.Traces) TraceView {
	var spans []flatSpan
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				spans = append(spans, flatSpan{ss.At(k), rss.At(i).Resource(), sss.At(j).Scope()})
			}
		}
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].span.StartTimestamp() < spans[j].span.StartTimestamp() })
	v := TraceView{SpanCount: len(spans)}
	if len(spans) == 0 {
		return v
	}
	v.ID = spans[0].span.TraceID().String()
	start, end := spans[0].span.StartTimestamp(), spans[0].span.EndTimestamp()
	byID := map[pcommon.SpanID]int{}
	for i, s := range spans {
		byID[s.span.SpanID()] = i
		end = max(end, s.span.EndTimestamp())
	}
	total := float64(end - start)
	if total <= 0 {
		total = 1
	}
	children := map[int][]int{}
	var roots []int
	for i, s := range spans {
		if pi, ok := byID[s.span.ParentSpanID()]; ok && !s.span.ParentSpanID().IsEmpty() && pi != i {
			children[pi] = append(children[pi], i)
		} else {
			roots = append(roots, i)
		}
	}
	critical := map[int]bool{}
	var markCritical func(i int)
	markCritical = func(i int) {
		critical[i] = true
		// Walk back from the span's end: the child finishing last before the
		// current point is on the path; continue from its start.
		kids := slices.Clone(children[i])
		sort.Slice(kids, func(a, b int) bool { return spans[kids[a]].span.EndTimestamp() > spans[kids[b]].span.EndTimestamp() })
		cursor := spans[i].span.EndTimestamp()
		for _, k := range kids {
			if spans[k].span.EndTimestamp() <= cursor {
				markCritical(k)
				cursor = spans[k].span.StartTimestamp()
			}
		}
	}
	colour := map[string]string{}
	svc := func(res pcommon.Resource) string {
		if s, ok := res.Attributes().Get("service.name"); ok && s.AsString() != "" {
			return s.AsString()
		}
		return "unknown_service"
	}
	// The critical path starts at the root that ends last.
	last := roots[0]
	for _, r := range roots {
		if spans[r].span.EndTimestamp() > spans[last].span.EndTimestamp() {
			last = r
		}
	}
	markCritical(last)
	root := spans[roots[0]]
	v.RootService, v.RootOperation = svc(root.res), root.span.Name()
	v.Start = start.AsTime().UTC().Format("2006-01-02 15:04:05.000")
	v.Duration = formatSpanDuration(time.Duration(end - start))
	var visit func(i, depth int)
	visit = func(i, depth int) {
		s := spans[i]
		name := svc(s.res)
		c, ok := colour[name]
		if !ok {
			c = serviceColours[len(colour)%len(serviceColours)]
			colour[name] = c
			v.Services = append(v.Services, ServiceColour{name, c})
		}
		sp := s.span
		dur := time.Duration(0)
		if sp.EndTimestamp() > sp.StartTimestamp() {
			dur = time.Duration(sp.EndTimestamp() - sp.StartTimestamp())
		}
		row := SpanView{
			ID: sp.SpanID().String(), Name: sp.Name(), Service: name, Colour: c, Kind: kindLabel(sp.Kind()),
			Depth: depth, HasChildren: len(children[i]) > 0,
			Left:     math.Round(float64(sp.StartTimestamp()-start)/total*10000) / 100,
			Width:    math.Max(0.2, math.Round(float64(dur)/total*10000)/100),
			Offset:   formatSpanDuration(time.Duration(sp.StartTimestamp() - start)),
			Duration: formatSpanDuration(dur), Critical: critical[i],
			Error: sp.Status().Code() == ptrace.StatusCodeError, StatusCode: statusLabel(sp.Status().Code()), StatusMessage: sp.Status().Message(),
			Attributes: kvs(sp.Attributes()), Resource: kvs(s.res.Attributes()),
			Scope: strings.TrimSpace(s.scope.Name() + " " + s.scope.Version()),
		}
		if !sp.ParentSpanID().IsEmpty() {
			row.ParentID = sp.ParentSpanID().String()
		}
		if row.Error {
			v.ErrorCount++
		}
		for e := 0; e < sp.Events().Len(); e++ {
			ev := sp.Events().At(e)
			row.Events = append(row.Events, EventView{Offset: formatSpanDuration(time.Duration(ev.Timestamp() - start)), Name: ev.Name(), Attributes: kvs(ev.Attributes())})
		}
		for l := 0; l < sp.Links().Len(); l++ {
			lk := sp.Links().At(l)
			row.Links = append(row.Links, LinkView{TraceID: lk.TraceID().String(), SpanID: lk.SpanID().String(), Attributes: kvs(lk.Attributes())})
		}
		v.Spans = append(v.Spans, row)
		for _, k := range children[i] {
			visit(k, depth+1)
		}
	}
	for _, r := range roots {
		visit(r, 0)
	}
	return v
}

func kvs(m pcommon.Map) []KV {
	out := make([]KV, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out = append(out, KV{k, v.AsString()})
		return true
	})
	return out
}

func kindLabel(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	case ptrace.SpanKindInternal:
		return "internal"
	}
	return "unspecified"
}

func statusLabel(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "OK"
	case ptrace.StatusCodeError:
		return "ERROR"
	}
	return "UNSET"
}

// ServiceMapData is what the service map renders: nodes placed in columns by
// call depth, and edges with their rates.
type ServiceMapData struct {
	Range         string
	Width, Height int
	Nodes         []MapNode
	Edges         []MapEdge
	FromMetrics   bool // error counts come from the span metrics
	Truncated     bool
}

// MapNode is a service on the map.
type MapNode struct {
	Name   string
	X, Y   int
	Colour string
}

// MapEdge is a client → server edge.
type MapEdge struct {
	Client, Server string
	X1, Y1, X2, Y2 int
	LabelX, LabelY int
	Calls          uint64
	Errors         float64 // -1 when unknown
	Label          string
	Failing        bool
}

func (p *TracePages) serviceMap(w http.ResponseWriter, r *http.Request) {
	rng := r.URL.Query().Get("range")
	if !slices.Contains(TraceRanges, rng) {
		rng = "1h"
	}
	now := p.h.opts.Now()
	window := rangeDur[rng]
	deps, err := p.src.Dependencies(r.Context(), now.Add(-window), now)
	if err != nil {
		p.h.Fail(w, r, &Error{Code: http.StatusInternalServerError, UserMessage: "The service dependencies could not be read.", Err: err})
		return
	}
	var errs map[[2]string]float64
	if p.metrics != nil {
		errs, err = graphIncrease(r.Context(), p.metrics, "traces_service_graph_request_failed_total", now.Add(-window), now)
		if err != nil {
			p.h.opts.Logger.Warn("cannot read service-graph metrics", "err", err)
			errs = nil
		}
	}
	d := layoutMap(deps, errs, window)
	d.Range = rng
	p.h.Page(w, r, "Service map", "traces", ServiceMapBody(d))
}

// graphIncrease returns, per (client, server), how much a service-graph counter
// grew in [from, to]: the sum of its increases, counting a drop as a restart
// from zero, with the last sample before from as the baseline.
func graphIncrease(ctx context.Context, q storage.Queryable, metric string, from, to time.Time) (map[[2]string]float64, error) {
	mint := from.Add(-(to.Sub(from)))
	qr, err := q.Querier(mint.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer qr.Close()
	set := qr.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, metric))
	out := map[[2]string]float64{}
	for set.Next() {
		s := set.At()
		key := [2]string{s.Labels().Get("client"), s.Labels().Get("server")}
		it := s.Iterator(nil)
		var prev float64
		var inc float64
		for it.Next() != 0 {
			t, v := it.At()
			if t < from.UnixMilli() {
				prev = v
				continue
			}
			if v >= prev {
				inc += v - prev
			} else {
				inc += v
			}
			prev = v
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		out[key] += inc
	}
	return out, set.Err()
}

// layoutMap places services in columns by their longest call chain from a
// service nobody calls, and rows in name order.
func layoutMap(deps traceindex.Dependencies, errs map[[2]string]float64, window time.Duration) ServiceMapData {
	d := ServiceMapData{FromMetrics: errs != nil, Truncated: deps.Truncated}
	names := map[string]bool{}
	for _, e := range deps.Edges {
		names[e.Parent], names[e.Child] = true, true
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	level := map[string]int{}
	// Longest path by relaxation, bounded by the number of services (cycles stop).
	for range list {
		changed := false
		for _, e := range deps.Edges {
			if e.Parent != e.Child && level[e.Child] < level[e.Parent]+1 && level[e.Parent]+1 < len(list) {
				level[e.Child] = level[e.Parent] + 1
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	cols := map[int][]string{}
	maxCol, maxRows := 0, 0
	for _, n := range list {
		l := level[n]
		cols[l] = append(cols[l], n)
		maxCol = max(maxCol, l)
		maxRows = max(maxRows, len(cols[l]))
	}
	const colW, rowH, padX, padY = 360, 110, 90, 50
	d.Width = padX*2 + maxCol*colW + 40
	d.Height = padY*2 + max(0, maxRows-1)*rowH + 20
	pos := map[string][2]int{}
	for c := 0; c <= maxCol; c++ {
		for r, n := range cols[c] {
			x, y := padX+c*colW, padY+r*rowH+(maxRows-len(cols[c]))*rowH/2
			pos[n] = [2]int{x, y}
			d.Nodes = append(d.Nodes, MapNode{Name: n, X: x, Y: y, Colour: serviceColours[len(d.Nodes)%len(serviceColours)]})
		}
	}
	mins := window.Minutes()
	for _, e := range deps.Edges {
		a, b := pos[e.Parent], pos[e.Child]
		me := MapEdge{Client: e.Parent, Server: e.Child, X1: a[0], Y1: a[1], X2: b[0], Y2: b[1], Calls: e.CallCount, Errors: -1}
		// Labels sit above the middle of the line between the boxes, drawn
		// after the boxes.
		x1, x2 := a[0]+70, b[0]-72
		me.LabelX = (x1 + x2) / 2
		me.LabelY = a[1] + (b[1]-a[1])*(me.LabelX-a[0])/max(1, b[0]-a[0]) - 6
		label := strconv.FormatFloat(float64(e.CallCount)/mins, 'g', 3, 64) + " req/min"
		if errs != nil {
			me.Errors = errs[[2]string{e.Parent, e.Child}]
			label += " · " + strconv.FormatFloat(me.Errors/mins, 'g', 3, 64) + " err/min"
			me.Failing = me.Errors > 0
		}
		me.Label = label
		d.Edges = append(d.Edges, me)
	}
	return d
}
