package spanmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type span struct {
	service, name string
	kind          ptrace.SpanKind
	id, parent    byte
	dur           time.Duration
	err           bool
}

// batch builds a request with the spans of one trace, one resource per span.
func batch(trace byte, spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{15: trace, 0: 1})
		sp.SetSpanID(pcommon.SpanID{7: s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{7: s.parent})
		}
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.dur)))
		if s.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

// points flattens metrics into "name{attrs}" → value (counts for histograms,
// with the bucket counts appended).
func points(md pmetric.Metrics) map[string]string {
	out := map[string]string{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		job := ""
		if v, ok := rms.At(i).Resource().Attributes().Get("service.name"); ok {
			job = v.AsString()
		}
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			key := func(attrs pcommon.Map) string {
				return fmt.Sprintf("%s[%s]%v", m.Name(), job, attrs.AsRaw())
			}
			switch m.Type() {
			case pmetric.MetricTypeSum:
				if !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
					out["bad sum "+m.Name()] = ""
				}
				for k := 0; k < m.Sum().DataPoints().Len(); k++ {
					dp := m.Sum().DataPoints().At(k)
					out[key(dp.Attributes())] = fmt.Sprint(dp.IntValue())
				}
			case pmetric.MetricTypeHistogram:
				for k := 0; k < m.Histogram().DataPoints().Len(); k++ {
					dp := m.Histogram().DataPoints().At(k)
					out[key(dp.Attributes())] = fmt.Sprintf("n=%d sum=%g %v", dp.Count(), dp.Sum(), dp.BucketCounts().AsRaw())
				}
			}
		}
	}
	return out
}

func TestSpanMetricsAndServiceGraph(t *testing.T) {
	c := &clock{t: t0}
	a := New(&Options{Now: c.now, Buckets: []float64{0.01, 0.1, 1}})
	// frontend → cart: the client span and the server span in one batch.
	a.TapTraces(batch(1,
		span{service: "frontend", name: "GET /", kind: ptrace.SpanKindServer, id: 1, dur: 300 * time.Millisecond},
		span{service: "frontend", name: "cart.get", kind: ptrace.SpanKindClient, id: 2, parent: 1, dur: 50 * time.Millisecond},
		span{service: "cart", name: "Get", kind: ptrace.SpanKindServer, id: 3, parent: 2, dur: 40 * time.Millisecond, err: true},
	))
	// A second call frontend → cart, and one frontend → frontend (not an edge).
	a.TapTraces(batch(2,
		span{service: "frontend", name: "cart.get", kind: ptrace.SpanKindClient, id: 2, dur: 5 * time.Millisecond},
		span{service: "cart", name: "Get", kind: ptrace.SpanKindServer, id: 3, parent: 2, dur: 2 * time.Millisecond},
		span{service: "frontend", name: "self", kind: ptrace.SpanKindClient, id: 4, dur: time.Millisecond},
		span{service: "frontend", name: "self-srv", kind: ptrace.SpanKindServer, id: 5, parent: 4, dur: time.Millisecond},
	))
	got := points(a.Metrics())
	want := map[string]string{
		"traces.span.metrics.calls[frontend]map[service.name:frontend span.kind:SPAN_KIND_CLIENT span.name:cart.get status.code:STATUS_CODE_UNSET]":    "2",
		"traces.span.metrics.duration[frontend]map[service.name:frontend span.kind:SPAN_KIND_CLIENT span.name:cart.get status.code:STATUS_CODE_UNSET]": "n=2 sum=0.055 [1 1 0 0]",
		"traces.span.metrics.calls[frontend]map[service.name:frontend span.kind:SPAN_KIND_SERVER span.name:GET / status.code:STATUS_CODE_UNSET]":       "1",
		"traces.span.metrics.duration[frontend]map[service.name:frontend span.kind:SPAN_KIND_SERVER span.name:GET / status.code:STATUS_CODE_UNSET]":    "n=1 sum=0.3 [0 0 1 0]",
		"traces.span.metrics.calls[cart]map[service.name:cart span.kind:SPAN_KIND_SERVER span.name:Get status.code:STATUS_CODE_ERROR]":                 "1",
		"traces.span.metrics.duration[cart]map[service.name:cart span.kind:SPAN_KIND_SERVER span.name:Get status.code:STATUS_CODE_ERROR]":              "n=1 sum=0.04 [0 1 0 0]",
		"traces.span.metrics.calls[cart]map[service.name:cart span.kind:SPAN_KIND_SERVER span.name:Get status.code:STATUS_CODE_UNSET]":                 "1",
		"traces.span.metrics.duration[cart]map[service.name:cart span.kind:SPAN_KIND_SERVER span.name:Get status.code:STATUS_CODE_UNSET]":              "n=1 sum=0.002 [1 0 0 0]",
		"traces.span.metrics.calls[frontend]map[service.name:frontend span.kind:SPAN_KIND_CLIENT span.name:self status.code:STATUS_CODE_UNSET]":        "1",
		"traces.span.metrics.duration[frontend]map[service.name:frontend span.kind:SPAN_KIND_CLIENT span.name:self status.code:STATUS_CODE_UNSET]":     "n=1 sum=0.001 [1 0 0 0]",
		"traces.span.metrics.calls[frontend]map[service.name:frontend span.kind:SPAN_KIND_SERVER span.name:self-srv status.code:STATUS_CODE_UNSET]":    "1",
		"traces.span.metrics.duration[frontend]map[service.name:frontend span.kind:SPAN_KIND_SERVER span.name:self-srv status.code:STATUS_CODE_UNSET]": "n=1 sum=0.001 [1 0 0 0]",
		"traces_service_graph_request[]map[client:frontend server:cart]":                                                                               "2",
		"traces_service_graph_request_failed[]map[client:frontend server:cart]":                                                                        "1",
		"traces_service_graph_request_server[]map[client:frontend server:cart]":                                                                        "n=2 sum=0.042 [1 1 0 0]",
		"traces_service_graph_request_client[]map[client:frontend server:cart]":                                                                        "n=2 sum=0.055 [1 1 0 0]",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %q", k, v)
		}
	}
	if s := a.Stats(); s.PendingEdges != 0 || s.Series != 7 {
		t.Errorf("stats = %+v", s)
	}
}

// The server span comes first; its parent (the client span of another service)
// arrives in a later request, within EdgeWait: the edge is counted. A half whose
// other half never comes expires and is counted as expired.
func TestParentArrivesLater(t *testing.T) {
	c := &clock{t: t0}
	a := New(&Options{Now: c.now, EdgeWait: 10 * time.Second})
	a.TapTraces(batch(7, span{service: "payment", name: "Charge", kind: ptrace.SpanKindServer, id: 9, parent: 8, dur: time.Millisecond}))
	a.TapTraces(batch(8, span{service: "payment", name: "Refund", kind: ptrace.SpanKindServer, id: 9, parent: 8, dur: time.Millisecond}))
	if s := a.Stats(); s.PendingEdges != 2 {
		t.Fatalf("pending = %d, want 2", s.PendingEdges)
	}
	if p := points(a.Metrics()); p["traces_service_graph_request[]map[client:checkout server:payment]"] != "" {
		t.Fatalf("edge counted before its client half: %v", p)
	}
	c.add(5 * time.Second)
	a.TapTraces(batch(7, span{service: "checkout", name: "pay", kind: ptrace.SpanKindClient, id: 8, dur: 3 * time.Millisecond, err: true}))
	p := points(a.Metrics())
	if got := p["traces_service_graph_request[]map[client:checkout server:payment]"]; got != "1" {
		t.Errorf("request_total = %q, want 1", got)
	}
	if got := p["traces_service_graph_request_failed[]map[client:checkout server:payment]"]; got != "1" {
		t.Errorf("request_failed_total = %q, want 1", got)
	}
	c.add(6 * time.Second) // trace 8's half is now 11 s old
	a.Metrics()
	if s := a.Stats(); s.PendingEdges != 0 || s.ExpiredEdges != 1 {
		t.Errorf("stats = %+v, want no pending and one expired", s)
	}
	// The client half of trace 8 arriving now finds nothing and waits in turn.
	a.TapTraces(batch(8, span{service: "checkout", name: "refund", kind: ptrace.SpanKindClient, id: 8, dur: time.Millisecond}))
	if got := points(a.Metrics())["traces_service_graph_request[]map[client:checkout server:payment]"]; got != "1" {
		t.Errorf("request_total after expiry = %q, want still 1", got)
	}
}

func TestBounds(t *testing.T) {
	c := &clock{t: t0}
	a := New(&Options{Now: c.now, MaxSeries: 3, MaxPendingEdges: 2})
	for i := 0; i < 5; i++ {
		a.TapTraces(batch(byte(i), span{service: "s", name: fmt.Sprint("op", i), kind: ptrace.SpanKindClient, id: 1, dur: time.Millisecond}))
	}
	s := a.Stats()
	if s.Series != 3 || s.DroppedSpans != 2 || s.PendingEdges != 2 || s.DroppedEdges != 3 {
		t.Errorf("stats = %+v, want 3 series, 2 dropped spans, 2 pending, 3 dropped edges", s)
	}
	if n := a.Metrics().DataPointCount(); n != 6 {
		t.Errorf("data points = %d, want 6 (3 series × calls + duration)", n)
	}
}

func TestFlushLoop(t *testing.T) {
	a := New(&Options{FlushInterval: 10 * time.Millisecond})
	var mu sync.Mutex
	var writes []pmetric.Metrics
	fail := true
	a.Start(func(ctx context.Context, md pmetric.Metrics) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return errors.New("disk full")
		}
		writes = append(writes, md)
		return nil
	})
	a.TapTraces(batch(1, span{service: "s", name: "op", kind: ptrace.SpanKindServer, id: 1, dur: time.Millisecond}))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(writes)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.TapTraces(batch(2, span{service: "s", name: "op", kind: ptrace.SpanKindServer, id: 1, dur: time.Millisecond}))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writes) < 2 {
		t.Fatalf("writes = %d, want at least 2", len(writes))
	}
	// Cumulative: the last write (from Close) carries both spans.
	last := points(writes[len(writes)-1])
	if got := last["traces.span.metrics.calls[s]map[service.name:s span.kind:SPAN_KIND_SERVER span.name:op status.code:STATUS_CODE_UNSET]"]; got != "2" {
		t.Errorf("final calls = %q, want 2: %v", got, last)
	}
	if s := a.Stats(); s.FlushErrors != 1 || s.Flushes < 2 {
		t.Errorf("stats = %+v", s)
	}
}

// Close returns while the loop waits for its next tick, and writes once.
func TestCloseBetweenTicks(t *testing.T) {
	a := New(&Options{FlushInterval: time.Hour})
	writes := 0
	a.Start(func(context.Context, pmetric.Metrics) error { writes++; return nil })
	a.TapTraces(batch(1, span{service: "s", name: "op", kind: ptrace.SpanKindServer, id: 1, dur: time.Millisecond}))
	time.Sleep(10 * time.Millisecond) // the loop is in its select
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if writes != 1 {
		t.Errorf("writes = %d, want 1 (the final flush)", writes)
	}
	if err := a.Flush(context.Background()); err != nil || writes != 1 {
		t.Errorf("Flush after Close wrote (%d writes, %v)", writes, err)
	}
}

// BenchmarkTapTraces measures the tap on the write path: batches of 1,000 spans
// of 20 services × 10 operations, half of them client/server pairs.
func BenchmarkTapTraces(b *testing.B) {
	var spans []span
	for i := 0; i < 1000; i += 2 {
		svc := fmt.Sprint("svc-", i%20)
		spans = append(spans,
			span{service: svc, name: fmt.Sprint("call-", i%10), kind: ptrace.SpanKindClient, id: byte(i%250 + 1), dur: time.Duration(i) * time.Microsecond},
			span{service: svc + "-b", name: fmt.Sprint("serve-", i%10), kind: ptrace.SpanKindServer, id: byte(i%250 + 2), parent: byte(i%250 + 1), dur: time.Duration(i) * time.Microsecond})
	}
	td := batch(1, spans...)
	a := New(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.TapTraces(td)
	}
	b.ReportMetric(float64(b.N*td.SpanCount())/b.Elapsed().Seconds(), "spans/s")
}
