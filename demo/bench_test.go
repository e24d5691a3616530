package demo

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discard is a sink for the SDK's batch processors: the benchmark measures the
// cost of making telemetry, not of sending it.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Export(context.Context, []sdklog.Record) error              { return nil }
func (discard) ForceFlush(context.Context) error                           { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkTrace plans and emits one trace with its logs and measurements through
// the real SDK (batch processors, metric aggregation), as the demo does.
func BenchmarkTrace(b *testing.B) {
	ctx := context.Background()
	var svcs []*service
	var shutdown []func(context.Context) error
	for _, spec := range shopSpecs {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(discard{})))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		shutdown = append(shutdown, tp.Shutdown, lp.Shutdown, mp.Shutdown)
		s, err := newService(spec, tp, lp, mp)
		if err != nil {
			b.Fatal(err)
		}
		svcs = append(svcs, s)
	}
	p := newPlanner(rand.New(rand.NewPCG(1, streamPlans)), svcs)
	now := time.Now()
	spans := 0
	b.ReportAllocs()
	for b.Loop() {
		plan := p.planTrace()
		walk(plan, nil, func(*spanPlan, *spanPlan) { spans++ })
		emit(ctx, now.Add(-plan.end), plan)
	}
	b.ReportMetric(float64(spans)/float64(b.N), "spans/trace")
	for _, f := range shutdown {
		f(ctx)
	}
}
