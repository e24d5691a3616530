// Package spanmetrics owns the metrics Outpost derives from spans: RED metrics per
// service, span name, span kind and status code, and the service graph (requests,
// failures and latency of client → server calls), like the OpenTelemetry
// Collector's spanmetrics and servicegraph connectors. It turns ptrace.Traces into
// cumulative pmetric.Metrics; it does not own storage: the owner gives Start a
// function that writes the metrics (the TSDB).
//
// # Basics
//
// An Aggregator is a store tap: the store shows it every stored batch of spans
// (TapTraces), and it adds each span to its series in memory. Every
// Options.FlushInterval, and once more on Close, it hands every series to the
// writer as cumulative sums and histograms, stamped with the flush time:
//
//	traces_span_metrics_calls_total{service_name, span_name, span_kind, status_code}
//	traces_span_metrics_duration_seconds_bucket/_sum/_count{…, le}
//	traces_service_graph_request_total{client, server, connection_type}
//	traces_service_graph_request_failed_total{client, server, connection_type}
//	traces_service_graph_request_server_seconds_bucket/_sum/_count{…, le}
//	traces_service_graph_request_client_seconds_bucket/_sum/_count{…, le}
//
// (the names are the OTLP names below translated by the Prometheus naming rules).
// A span-metrics series also carries its service as the resource's service.name,
// so it has job="<service>".
//
// A service-graph edge is a CLIENT (or PRODUCER) span and a SERVER (or CONSUMER)
// span whose parent is that client span, in different services. The two halves
// usually arrive in different batches, in either order: the first half waits in a
// bounded store of unpaired edges, keyed by trace id and client span id, until the
// other half arrives or Options.EdgeWait passes.
//
// # Caveats
//
// Memory is bounded by Options.MaxSeries and Options.MaxPendingEdges; spans that
// would create a series beyond the cap, and halves of edges that do not fit or
// expire unpaired, are dropped and counted in Stats. Series are never forgotten
// while the process runs; the counters start again from zero after a restart,
// which PromQL's rate() reads as a counter reset. A request stored twice (a
// client retry) is counted twice.
package spanmetrics

import (
	"container/list"
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// DefaultBuckets are the histogram bounds, in seconds, when Options.Buckets is nil:
// the spanmetrics connector's defaults.
var DefaultBuckets = []float64{0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15}

// Metric names, as OTLP names (the TSDB adds _total, _seconds and the histogram
// suffixes).
const (
	CallsMetric          = "traces.span.metrics.calls"
	DurationMetric       = "traces.span.metrics.duration"
	RequestMetric        = "traces_service_graph_request"
	RequestFailedMetric  = "traces_service_graph_request_failed"
	RequestServerMetric  = "traces_service_graph_request_server"
	RequestClientMetric  = "traces_service_graph_request_client"
	ScopeName            = "outpost/spanmetrics"
	messagingSystemConnT = "messaging_system"
)

// Options configure an Aggregator. A nil *Options means all defaults; every zero
// field means the default stated beside it.
type Options struct {
	// Buckets are the explicit upper bounds of the duration histograms, in seconds,
	// ascending. Nil means DefaultBuckets.
	Buckets []float64

	// MaxSeries caps the span-metrics series plus the service-graph edges kept in
	// memory; spans and edges that would add one more are dropped and counted.
	// Zero means 10,000.
	MaxSeries int

	// MaxPendingEdges caps the halves of service-graph edges waiting for their
	// other half. Zero means 10,000.
	MaxPendingEdges int

	// EdgeWait is how long half an edge waits for the other half (a parent that
	// arrives later). Zero means 30 s.
	EdgeWait time.Duration

	// FlushInterval is how often Start's loop writes the metrics. Zero means 15 s.
	FlushInterval time.Duration

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Logger receives flush failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Stats are the Aggregator's counters since it was created.
type Stats struct {
	Series          int    // span-metrics series and service-graph edges in memory
	PendingEdges    int    // halves of edges waiting for the other half
	DroppedSpans    uint64 // spans not counted because MaxSeries was reached
	DroppedEdges    uint64 // edges not counted because MaxSeries or MaxPendingEdges was reached
	ExpiredEdges    uint64 // halves of edges whose other half did not come within EdgeWait
	Flushes         uint64 // successful writes
	FlushErrors     uint64 // failed writes
	LastFlushPoints int    // data points in the last write
}

// Aggregator accumulates span metrics and service-graph edges. All methods are
// safe for concurrent use.
type Aggregator struct {
	opts    Options
	started pcommon.Timestamp

	mu      sync.Mutex
	spans   map[spanKey]*histSeries
	edges   map[edgeKey]*edgeSeries
	pending map[pendingKey]*list.Element // of *pendingEdge
	queue   *list.List                   // pending edges, oldest first
	stats   Stats

	loopMu sync.Mutex
	stop   chan struct{}
	done   chan struct{}
	write  func(context.Context, pmetric.Metrics) error
}

type spanKey struct {
	service, name string
	kind          ptrace.SpanKind
	status        ptrace.StatusCode
}

type edgeKey struct{ client, server, connType string }

type pendingKey struct {
	trace pcommon.TraceID
	span  pcommon.SpanID // the client span
}

type pendingEdge struct {
	key     pendingKey
	expires time.Time
	// One side is set; the other waits.
	hasClient, hasServer bool
	client, server       string
	clientSecs           float64
	serverSecs           float64
	failed               bool
	connType             string
}

type histSeries struct {
	counts []uint64 // len(buckets)+1; the last is +Inf
	sum    float64
	count  uint64
}

func (h *histSeries) clone() *histSeries {
	return &histSeries{counts: slices.Clone(h.counts), sum: h.sum, count: h.count}
}

func (h *histSeries) observe(bounds []float64, v float64) {
	i := sort.SearchFloat64s(bounds, v) // first bound >= v: le is inclusive
	h.counts[i]++
	h.sum += v
	h.count++
}

type edgeSeries struct {
	total, failed  uint64
	server, client histSeries
}

// New returns an Aggregator. Call Start to have it write its metrics.
func New(opts *Options) *Aggregator {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Buckets == nil {
		o.Buckets = DefaultBuckets
	}
	o.Buckets = append([]float64(nil), o.Buckets...)
	sort.Float64s(o.Buckets)
	if o.MaxSeries <= 0 {
		o.MaxSeries = 10_000
	}
	if o.MaxPendingEdges <= 0 {
		o.MaxPendingEdges = 10_000
	}
	if o.EdgeWait <= 0 {
		o.EdgeWait = 30 * time.Second
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Aggregator{
		opts:    o,
		started: pcommon.NewTimestampFromTime(o.Now()),
		spans:   map[spanKey]*histSeries{},
		edges:   map[edgeKey]*edgeSeries{},
		pending: map[pendingKey]*list.Element{},
		queue:   list.New(),
	}
}

// TapMetrics ignores metrics: the Aggregator reads only spans.
func (a *Aggregator) TapMetrics(pmetric.Metrics) {}

// IgnoresMetrics tells the store so (store.MetricsBlindTap).
func (a *Aggregator) IgnoresMetrics() {}

// TapLogs ignores logs.
func (a *Aggregator) TapLogs(plog.Logs) {}

// TapTraces adds every span of td to the metrics and pairs client and server
// spans into service-graph edges. It keeps no reference to td.
func (a *Aggregator) TapTraces(td ptrace.Traces) {
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expire(now)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := "unknown_service"
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok && v.AsString() != "" {
			service = v.AsString()
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				a.addSpan(service, spans.At(k), now)
			}
		}
	}
}

func (a *Aggregator) addSpan(service string, sp ptrace.Span, now time.Time) {
	secs := 0.0
	if e, s := sp.EndTimestamp(), sp.StartTimestamp(); e > s {
		secs = float64(e-s) / 1e9
	}
	k := spanKey{service: service, name: sp.Name(), kind: sp.Kind(), status: sp.Status().Code()}
	h := a.spans[k]
	if h == nil {
		if len(a.spans)+len(a.edges) >= a.opts.MaxSeries {
			a.stats.DroppedSpans++
		} else {
			h = &histSeries{counts: make([]uint64, len(a.opts.Buckets)+1)}
			a.spans[k] = h
		}
	}
	if h != nil {
		h.observe(a.opts.Buckets, secs)
	}

	failed := sp.Status().Code() == ptrace.StatusCodeError
	switch sp.Kind() {
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		a.half(pendingKey{sp.TraceID(), sp.SpanID()}, now, func(p *pendingEdge) {
			p.hasClient, p.client, p.clientSecs = true, service, secs
			p.failed = p.failed || failed
			if sp.Kind() == ptrace.SpanKindProducer {
				p.connType = messagingSystemConnT
			}
		})
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		if sp.ParentSpanID().IsEmpty() {
			return
		}
		a.half(pendingKey{sp.TraceID(), sp.ParentSpanID()}, now, func(p *pendingEdge) {
			p.hasServer, p.server, p.serverSecs = true, service, secs
			p.failed = p.failed || failed
			if sp.Kind() == ptrace.SpanKindConsumer {
				p.connType = messagingSystemConnT
			}
		})
	}
}

// half records one side of an edge; when both sides are known the edge is
// counted and forgotten.
func (a *Aggregator) half(k pendingKey, now time.Time, set func(*pendingEdge)) {
	el := a.pending[k]
	if el == nil {
		if len(a.pending) >= a.opts.MaxPendingEdges {
			a.stats.DroppedEdges++
			return
		}
		p := &pendingEdge{key: k, expires: now.Add(a.opts.EdgeWait)}
		set(p)
		a.pending[k] = a.queue.PushBack(p)
		return
	}
	p := el.Value.(*pendingEdge)
	set(p)
	if !p.hasClient || !p.hasServer {
		return // the same side twice (a retried request)
	}
	a.queue.Remove(el)
	delete(a.pending, k)
	if p.client == p.server {
		return // a call inside one service is not an edge of the graph
	}
	ek := edgeKey{client: p.client, server: p.server, connType: p.connType}
	e := a.edges[ek]
	if e == nil {
		if len(a.spans)+len(a.edges) >= a.opts.MaxSeries {
			a.stats.DroppedEdges++
			return
		}
		n := len(a.opts.Buckets) + 1
		e = &edgeSeries{server: histSeries{counts: make([]uint64, n)}, client: histSeries{counts: make([]uint64, n)}}
		a.edges[ek] = e
	}
	e.total++
	if p.failed {
		e.failed++
	}
	e.client.observe(a.opts.Buckets, p.clientSecs)
	e.server.observe(a.opts.Buckets, p.serverSecs)
}

// expire forgets halves of edges that waited longer than EdgeWait.
func (a *Aggregator) expire(now time.Time) {
	for el := a.queue.Front(); el != nil; el = a.queue.Front() {
		p := el.Value.(*pendingEdge)
		if now.Before(p.expires) {
			return
		}
		a.queue.Remove(el)
		delete(a.pending, p.key)
		a.stats.ExpiredEdges++
	}
}

// Stats returns the counters.
func (a *Aggregator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Series = len(a.spans) + len(a.edges)
	s.PendingEdges = len(a.pending)
	return s
}

// Metrics returns every series as cumulative OTLP metrics stamped with the
// current time, after expiring unpaired edges. The result is the caller's. The
// lock that spans wait for is held only while the counts are copied, not while
// the metrics are built.
func (a *Aggregator) Metrics() pmetric.Metrics {
	now := a.opts.Now()
	ts := pcommon.NewTimestampFromTime(now)
	md := pmetric.NewMetrics()
	a.mu.Lock()
	a.expire(now)
	spans := make(map[spanKey]*histSeries, len(a.spans))
	keys := make([]spanKey, 0, len(a.spans))
	for k, h := range a.spans {
		spans[k] = h.clone()
		keys = append(keys, k)
	}
	edges := make(map[edgeKey]*edgeSeries, len(a.edges))
	for k, e := range a.edges {
		edges[k] = &edgeSeries{total: e.total, failed: e.failed, server: *e.server.clone(), client: *e.client.clone()}
	}
	a.mu.Unlock()

	// Span metrics: one resource per service, so the series carry job="<service>".
	sort.Slice(keys, func(i, j int) bool {
		x, y := keys[i], keys[j]
		if x.service != y.service {
			return x.service < y.service
		}
		if x.name != y.name {
			return x.name < y.name
		}
		if x.kind != y.kind {
			return x.kind < y.kind
		}
		return x.status < y.status
	})
	var calls pmetric.NumberDataPointSlice
	var durs pmetric.HistogramDataPointSlice
	for i, k := range keys {
		if i == 0 || k.service != keys[i-1].service {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", k.service)
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(ScopeName)
			c := sm.Metrics().AppendEmpty()
			c.SetName(CallsMetric)
			c.SetDescription("Spans ended, per service, span name, span kind and status code.")
			sum := c.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			calls = sum.DataPoints()
			d := sm.Metrics().AppendEmpty()
			d.SetName(DurationMetric)
			d.SetUnit("s")
			d.SetDescription("Span durations, per service, span name, span kind and status code.")
			hist := d.SetEmptyHistogram()
			hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			durs = hist.DataPoints()
		}
		h := spans[k]
		attrs := func(m pcommon.Map) {
			m.PutStr("service.name", k.service)
			m.PutStr("span.name", k.name)
			m.PutStr("span.kind", "SPAN_KIND_"+kindName(k.kind))
			m.PutStr("status.code", "STATUS_CODE_"+statusName(k.status))
		}
		dp := calls.AppendEmpty()
		dp.SetStartTimestamp(a.started)
		dp.SetTimestamp(ts)
		dp.SetIntValue(int64(h.count))
		attrs(dp.Attributes())
		hp := durs.AppendEmpty()
		attrs(hp.Attributes())
		a.fillHist(hp, h, ts)
	}

	if len(edges) > 0 {
		eks := make([]edgeKey, 0, len(edges))
		for k := range edges {
			eks = append(eks, k)
		}
		sort.Slice(eks, func(i, j int) bool {
			x, y := eks[i], eks[j]
			if x.client != y.client {
				return x.client < y.client
			}
			if x.server != y.server {
				return x.server < y.server
			}
			return x.connType < y.connType
		})
		sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(ScopeName)
		counter := func(name, desc string) pmetric.NumberDataPointSlice {
			m := sm.Metrics().AppendEmpty()
			m.SetName(name)
			m.SetDescription(desc)
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			return s.DataPoints()
		}
		histogram := func(name, desc string) pmetric.HistogramDataPointSlice {
			m := sm.Metrics().AppendEmpty()
			m.SetName(name)
			m.SetUnit("s")
			m.SetDescription(desc)
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			return h.DataPoints()
		}
		total := counter(RequestMetric, "Requests from client to server service.")
		failed := counter(RequestFailedMetric, "Failed requests from client to server service.")
		server := histogram(RequestServerMetric, "Duration of the server span of requests between two services.")
		client := histogram(RequestClientMetric, "Duration of the client span of requests between two services.")
		for _, k := range eks {
			e := edges[k]
			attrs := func(m pcommon.Map) {
				m.PutStr("client", k.client)
				m.PutStr("server", k.server)
				if k.connType != "" {
					m.PutStr("connection_type", k.connType)
				}
			}
			for _, c := range []struct {
				s pmetric.NumberDataPointSlice
				v uint64
			}{{total, e.total}, {failed, e.failed}} {
				dp := c.s.AppendEmpty()
				dp.SetStartTimestamp(a.started)
				dp.SetTimestamp(ts)
				dp.SetIntValue(int64(c.v))
				attrs(dp.Attributes())
			}
			sp := server.AppendEmpty()
			attrs(sp.Attributes())
			a.fillHist(sp, &e.server, ts)
			cp := client.AppendEmpty()
			attrs(cp.Attributes())
			a.fillHist(cp, &e.client, ts)
		}
	}
	return md
}

func (a *Aggregator) fillHist(hp pmetric.HistogramDataPoint, h *histSeries, ts pcommon.Timestamp) {
	hp.SetStartTimestamp(a.started)
	hp.SetTimestamp(ts)
	hp.SetCount(h.count)
	hp.SetSum(h.sum)
	hp.ExplicitBounds().FromRaw(a.opts.Buckets)
	hp.BucketCounts().FromRaw(h.counts)
}

// Start runs the flush loop: every FlushInterval it writes Metrics() with write.
// Close stops it. Start may be called once.
func (a *Aggregator) Start(write func(context.Context, pmetric.Metrics) error) {
	a.loopMu.Lock()
	defer a.loopMu.Unlock()
	if a.stop != nil {
		return
	}
	a.write = write
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.loop(a.stop, a.done)
}

func (a *Aggregator) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(a.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			a.Flush(context.Background())
		}
	}
}

// Flush writes the metrics now with the writer given to Start. It returns the
// writer's error, also counted in Stats.
func (a *Aggregator) Flush(ctx context.Context) error {
	a.loopMu.Lock()
	write := a.write
	a.loopMu.Unlock()
	if write == nil {
		return nil
	}
	md := a.Metrics()
	n := md.DataPointCount()
	if n == 0 {
		return nil
	}
	err := write(ctx, md)
	a.mu.Lock()
	if err != nil {
		a.stats.FlushErrors++
	} else {
		a.stats.Flushes++
		a.stats.LastFlushPoints = n
	}
	a.mu.Unlock()
	if err != nil {
		a.opts.Logger.Warn("cannot write span metrics", "points", n, "err", err)
	}
	return err
}

// Close stops the flush loop, waits for it, and writes the metrics one last
// time. Call it before closing the metrics store. It is idempotent.
func (a *Aggregator) Close() error {
	a.loopMu.Lock()
	stop, done := a.stop, a.done
	a.stop = nil
	a.loopMu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	<-done
	err := a.Flush(context.Background())
	a.loopMu.Lock()
	a.write = nil
	a.loopMu.Unlock()
	return err
}

func kindName(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "INTERNAL"
	case ptrace.SpanKindServer:
		return "SERVER"
	case ptrace.SpanKindClient:
		return "CLIENT"
	case ptrace.SpanKindProducer:
		return "PRODUCER"
	case ptrace.SpanKindConsumer:
		return "CONSUMER"
	}
	return "UNSPECIFIED"
}

func statusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "OK"
	case ptrace.StatusCodeError:
		return "ERROR"
	}
	return "UNSET"
}
