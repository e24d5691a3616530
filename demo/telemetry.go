package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scopeName is the instrumentation scope of everything the demo emits.
const scopeName = "outpost/demo"

// pipeline owns the three OTLP exporters (traces over gRPC, logs and metrics over
// HTTP) and one tracer, logger and meter provider per shop service, so each service
// has its own resource. The providers share the exporters through wrappers whose
// Shutdown does nothing: the pipeline shuts each exporter down once, last.
type pipeline struct {
	log *slog.Logger

	spanExp   sdktrace.SpanExporter
	logExp    *otlploghttp.Exporter
	metricExp *otlpmetrichttp.Exporter

	traces  *exportStats
	logs    *exportStats
	metrics *exportStats

	// abort is cancelled when the final flush runs out of time: every export in
	// flight or to come then fails at once, so the SDK's goroutines end.
	abort      context.Context
	abortFlush context.CancelFunc

	tps []*sdktrace.TracerProvider
	lps []*sdklog.LoggerProvider
	mps []*sdkmetric.MeterProvider
}

func newPipeline(ctx context.Context, o *Options) (*pipeline, error) {
	abort, abortFlush := context.WithCancel(context.Background())
	p := &pipeline{
		log:        o.Logger,
		abort:      abort,
		abortFlush: abortFlush,
		traces:     &exportStats{signal: "traces", log: o.Logger, abort: abort},
		logs:       &exportStats{signal: "logs", log: o.Logger, abort: abort},
		metrics:    &exportStats{signal: "metrics", log: o.Logger, abort: abort},
	}
	var err error
	p.spanExp, err = otlptracegrpc.New(ctx,
		otlptracegrpc.WithEndpoint(o.GRPCEndpoint),
		otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithCompressor("gzip"),
	)
	if err != nil {
		abortFlush()
		return nil, fmt.Errorf("cannot create OTLP/gRPC trace exporter for %s: %w", o.GRPCEndpoint, err)
	}
	p.logExp, err = otlploghttp.New(ctx,
		otlploghttp.WithEndpoint(o.HTTPEndpoint),
		otlploghttp.WithInsecure(),
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
	)
	if err != nil {
		p.shutdownExporters(ctx)
		abortFlush()
		return nil, fmt.Errorf("cannot create OTLP/HTTP log exporter for %s: %w", o.HTTPEndpoint, err)
	}
	p.metricExp, err = otlpmetrichttp.New(ctx,
		otlpmetrichttp.WithEndpoint(o.HTTPEndpoint),
		otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
	)
	if err != nil {
		p.shutdownExporters(ctx)
		abortFlush()
		return nil, fmt.Errorf("cannot create OTLP/HTTP metric exporter for %s: %w", o.HTTPEndpoint, err)
	}
	return p, nil
}

// addService creates the providers of one service and returns them.
func (p *pipeline) addService(ctx context.Context, o *Options, ids sdktrace.IDGenerator, attrs []attribute.KeyValue) (*sdktrace.TracerProvider, *sdklog.LoggerProvider, *sdkmetric.MeterProvider, error) {
	// Not resource.Default(): it reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// from the environment, which would rename every service of the shop.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot build resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(ids),
		sdktrace.WithBatcher(spanExporter{p.spanExp, p.traces}, sdktrace.WithBatchTimeout(o.batchInterval())),
	)
	lp := sdklog.NewLoggerProvider(
		sdklog.WithResource(res),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(logExporter{p.logExp, p.logs}, sdklog.WithExportInterval(o.batchInterval()))),
	)
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExporter{p.metricExp, p.metrics}, sdkmetric.WithInterval(o.MetricInterval))),
	)
	p.tps = append(p.tps, tp)
	p.lps = append(p.lps, lp)
	p.mps = append(p.mps, mp)
	return tp, lp, mp, nil
}

// shutdown flushes every provider (a final batch of spans and logs, a final
// collection of metrics), then closes the exporters. It waits until the SDK's
// goroutines are done: when ctx ends first, the exports still in flight are
// aborted and what they carried is lost.
func (p *pipeline) shutdown(ctx context.Context) error {
	stop := context.AfterFunc(ctx, p.abortFlush)
	defer stop()
	// The providers get a context that is never cancelled, so that their
	// Shutdown waits for their goroutines; p.abort bounds that wait.
	wait := context.WithoutCancel(ctx)
	var errs []error
	for _, tp := range p.tps {
		errs = append(errs, tp.Shutdown(wait))
	}
	for _, lp := range p.lps {
		errs = append(errs, lp.Shutdown(wait))
	}
	for _, mp := range p.mps {
		errs = append(errs, mp.Shutdown(wait))
	}
	errs = append(errs, p.shutdownExporters(wait))
	timedOut := p.abort.Err() != nil
	p.abortFlush()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot flush demo telemetry: %w", err)
	}
	if timedOut {
		return errors.New("cannot flush demo telemetry: the receivers did not take it in time; the rest was dropped")
	}
	return nil
}

func (p *pipeline) shutdownExporters(ctx context.Context) error {
	var errs []error
	if p.spanExp != nil {
		errs = append(errs, p.spanExp.Shutdown(ctx))
	}
	if p.logExp != nil {
		errs = append(errs, p.logExp.Shutdown(ctx))
	}
	if p.metricExp != nil {
		errs = append(errs, p.metricExp.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// exportStats counts what one signal's exporter sent and logs when exports start
// failing and when they recover, once each, instead of once per batch.
type exportStats struct {
	signal  string
	log     *slog.Logger
	abort   context.Context // see pipeline.abort
	sent    atomic.Int64    // spans, log records or metric data points accepted
	failed  atomic.Int64    // batches refused or lost
	mu      sync.Mutex
	failing bool
}

// exportContext is ctx, also cancelled when the pipeline aborts the flush.
func (s *exportStats) exportContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.abort, cancel)
	return ctx, func() { stop(); cancel() }
}

// done records the outcome of one export. The error is logged here and not
// returned to the SDK, which would print every failure on its own global logger.
func (s *exportStats) done(n int, err error) error {
	switch {
	case err == nil:
		s.sent.Add(int64(n))
	case errors.Is(err, context.Canceled):
		// Not the receiver's fault: the SDK cancels a periodic metric export
		// in flight when it shuts down (and exports again right after), and an
		// aborted flush is reported by Run itself.
		return nil
	default:
		s.failed.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && !s.failing:
		s.failing = true
		s.log.Warn("demo cannot export telemetry; batches are dropped until the receiver answers", "signal", s.signal, "err", err)
	case err == nil && s.failing:
		s.failing = false
		s.log.Info("demo exports telemetry again", "signal", s.signal)
	}
	return nil
}

type spanExporter struct {
	exp   sdktrace.SpanExporter
	stats *exportStats
}

func (e spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	ctx, cancel := e.stats.exportContext(ctx)
	defer cancel()
	return e.stats.done(len(spans), e.exp.ExportSpans(ctx, spans))
}

func (spanExporter) Shutdown(context.Context) error { return nil }

type logExporter struct {
	exp   sdklog.Exporter
	stats *exportStats
}

func (e logExporter) Export(ctx context.Context, records []sdklog.Record) error {
	ctx, cancel := e.stats.exportContext(ctx)
	defer cancel()
	return e.stats.done(len(records), e.exp.Export(ctx, records))
}

func (e logExporter) ForceFlush(ctx context.Context) error {
	ctx, cancel := e.stats.exportContext(ctx)
	defer cancel()
	return e.exp.ForceFlush(ctx)
}

func (logExporter) Shutdown(context.Context) error { return nil }

type metricExporter struct {
	sdkmetric.Exporter
	stats *exportStats
}

func (e metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	ctx, cancel := e.stats.exportContext(ctx)
	defer cancel()
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			n += dataPoints(m.Data)
		}
	}
	return e.stats.done(n, e.Exporter.Export(ctx, rm))
}

func (metricExporter) Shutdown(context.Context) error { return nil }

func dataPoints(a metricdata.Aggregation) int {
	switch d := a.(type) {
	case metricdata.Gauge[int64]:
		return len(d.DataPoints)
	case metricdata.Gauge[float64]:
		return len(d.DataPoints)
	case metricdata.Sum[int64]:
		return len(d.DataPoints)
	case metricdata.Sum[float64]:
		return len(d.DataPoints)
	case metricdata.Histogram[int64]:
		return len(d.DataPoints)
	case metricdata.Histogram[float64]:
		return len(d.DataPoints)
	}
	return 0
}

// seededIDs makes trace and span ids from a seeded source, so a seed reproduces
// the ids too. It is safe for concurrent use, as the SDK requires.
type seededIDs struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func (g *seededIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], g.rng.Uint64())
		binary.BigEndian.PutUint64(tid[8:], g.rng.Uint64())
	}
	return tid, g.spanID()
}

func (g *seededIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.spanID()
}

func (g *seededIDs) spanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], g.rng.Uint64())
	}
	return sid
}
