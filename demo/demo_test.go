package demo_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the server must accept gzip itself

	"outpost/demo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// receiver is an OTLP receiver for the test: gRPC for traces, HTTP for logs and
// metrics, keeping copies of everything it decoded.
type receiver struct {
	ptraceotlp.UnimplementedGRPCServer

	mu       sync.Mutex
	traces   ptrace.Traces
	logs     plog.Logs
	metrics  pmetric.Metrics
	gzipped  int // HTTP requests that came gzip-compressed
	requests int
}

func newReceiver() *receiver {
	return &receiver{traces: ptrace.NewTraces(), logs: plog.NewLogs(), metrics: pmetric.NewMetrics()}
}

func (rc *receiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	req.Traces().ResourceSpans().MoveAndAppendTo(rc.traces.ResourceSpans())
	return ptraceotlp.NewExportResponse(), nil
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = r.Body
	gzipped := r.Header.Get("Content-Encoding") == "gzip"
	if gzipped {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp []byte
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if gzipped {
		rc.gzipped++
	}
	switch r.URL.Path {
	case "/v1/logs":
		req := plogotlp.NewExportRequest()
		if err = req.UnmarshalProto(data); err == nil {
			req.Logs().ResourceLogs().MoveAndAppendTo(rc.logs.ResourceLogs())
			resp, err = plogotlp.NewExportResponse().MarshalProto()
		}
	case "/v1/metrics":
		req := pmetricotlp.NewExportRequest()
		if err = req.UnmarshalProto(data); err == nil {
			req.Metrics().ResourceMetrics().MoveAndAppendTo(rc.metrics.ResourceMetrics())
			resp, err = pmetricotlp.NewExportResponse().MarshalProto()
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

// start serves rc on loopback ports and returns the gRPC and HTTP endpoints.
func (rc *receiver) start(t *testing.T) (grpcAddr, httpAddr string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(gs, rc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		gs.Serve(lis)
	}()
	hs := httptest.NewServer(rc)
	t.Cleanup(func() {
		hs.Close()
		gs.Stop()
		<-done
	})
	return lis.Addr().String(), strings.TrimPrefix(hs.URL, "http://")
}

var shopServices = []string{"frontend", "catalog", "cart", "checkout", "payment", "assistant"}

func serviceName(res pcommon.Resource) string {
	v, _ := res.Attributes().Get("service.name")
	return v.Str()
}

// syncBuffer collects the demo's own slog output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunFeedsOTLPReceivers runs the demo against in-test OTLP receivers for a
// few seconds and checks what arrived, as a store would see it.
func TestRunFeedsOTLPReceivers(t *testing.T) {
	rc := newReceiver()
	grpcAddr, httpAddr := rc.start(t)
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err := demo.Run(ctx, demo.Options{
		GRPCEndpoint:    grpcAddr,
		HTTPEndpoint:    httpAddr,
		Logger:          slog.New(slog.NewTextHandler(&out, nil)),
		Seed:            42,
		TracesPerSecond: 40,
		MetricInterval:  500 * time.Millisecond,
		FaultEvery:      300 * time.Millisecond,
		FaultLength:     500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("demo log:\n%s", out.String())

	rc.mu.Lock()
	defer rc.mu.Unlock()

	// Traces: every service, complete trees, hops across services, errors.
	type spanRef struct {
		service string
		span    ptrace.Span
	}
	spans := map[pcommon.SpanID]spanRef{}
	traceIDs := map[pcommon.TraceID]bool{}
	spansPerService := map[string]int{}
	rss := rc.traces.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := serviceName(rss.At(i).Resource())
		for _, attr := range []string{"service.version", "service.instance.id", "host.name", "deployment.environment"} {
			if _, ok := rss.At(i).Resource().Attributes().Get(attr); !ok {
				t.Errorf("resource of %s has no %s", svc, attr)
			}
		}
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				sp := ss.At(k)
				spans[sp.SpanID()] = spanRef{svc, sp}
				traceIDs[sp.TraceID()] = true
				spansPerService[svc]++
			}
		}
	}
	t.Logf("received %d spans in %d traces: %v", len(spans), len(traceIDs), spansPerService)
	if len(spansPerService) < 4 {
		t.Errorf("spans from %d services %v, want at least 4", len(spansPerService), spansPerService)
	}
	var crossService, errored, roots, serverSpans int
	genAI := 0
	for _, ref := range spans {
		sp := ref.span
		if sp.Status().Code() == ptrace.StatusCodeError {
			errored++
		}
		if sp.EndTimestamp() < sp.StartTimestamp() {
			t.Errorf("span %s of %s ends before it starts", sp.Name(), ref.service)
		}
		if sp.Kind() == ptrace.SpanKindServer {
			serverSpans++
			for _, attr := range []string{"http.request.method", "http.route", "http.response.status_code"} {
				if _, ok := sp.Attributes().Get(attr); !ok {
					t.Errorf("server span %s of %s has no %s", sp.Name(), ref.service, attr)
				}
			}
		}
		if sp.ParentSpanID().IsEmpty() {
			roots++
			continue
		}
		parent, ok := spans[sp.ParentSpanID()]
		if !ok {
			t.Errorf("span %s of %s: parent %s never arrived", sp.Name(), ref.service, sp.ParentSpanID())
			continue
		}
		if parent.span.TraceID() != sp.TraceID() {
			t.Errorf("span %s and its parent are in different traces", sp.Name())
		}
		if parent.service != ref.service {
			crossService++
			if parent.span.Kind() != ptrace.SpanKindClient || sp.Kind() != ptrace.SpanKindServer {
				t.Errorf("hop %s -> %s is %v -> %v, want client -> server", parent.service, ref.service, parent.span.Kind(), sp.Kind())
			}
		}
		if ref.service == "assistant" {
			model, hasModel := sp.Attributes().Get("gen_ai.request.model")
			in, hasIn := sp.Attributes().Get("gen_ai.usage.input_tokens")
			if hasModel && hasIn && model.Str() != "" && in.Int() > 0 {
				if _, ok := sp.Attributes().Get("gen_ai.system"); !ok {
					t.Errorf("LLM span %s has no gen_ai.system", sp.Name())
				}
				genAI++
			}
		}
	}
	t.Logf("roots %d, server spans %d, cross-service hops %d, error spans %d, LLM spans %d", roots, serverSpans, crossService, errored, genAI)
	if roots < 20 {
		t.Errorf("%d traces, want at least 20 in 2.5 s at 40 per second", roots)
	}
	if crossService == 0 {
		t.Error("no parent/child link across services")
	}
	if errored == 0 {
		t.Error("no span with error status")
	}
	if genAI == 0 {
		t.Error("no assistant span with gen_ai.request.model and gen_ai.usage.input_tokens")
	}

	// Logs: tied to the traces, with several severities and body shapes.
	var withTrace, joined, mapBodies, jsonBodies int
	severities := map[plog.SeverityNumber]bool{}
	logServices := map[string]bool{}
	rls := rc.logs.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		svc := serviceName(rls.At(i).Resource())
		logServices[svc] = true
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				severities[lr.SeverityNumber()] = true
				if lr.Timestamp() == 0 {
					t.Errorf("log record of %s without timestamp", svc)
				}
				if !lr.TraceID().IsEmpty() {
					withTrace++
					if traceIDs[lr.TraceID()] {
						if sp, ok := spans[lr.SpanID()]; ok && sp.service == svc {
							joined++
						}
					}
				}
				switch lr.Body().Type() {
				case pcommon.ValueTypeMap:
					mapBodies++
				case pcommon.ValueTypeStr:
					if strings.HasPrefix(lr.Body().Str(), "{") {
						jsonBodies++
					}
				}
			}
		}
	}
	t.Logf("logs: %d with trace ids, %d joined to a span of their own service, %d map bodies, %d JSON bodies, severities %v",
		withTrace, joined, mapBodies, jsonBodies, severities)
	if joined == 0 {
		t.Error("no log record carries the trace and span id of a received span of its service")
	}
	if mapBodies == 0 || jsonBodies == 0 {
		t.Error("want both structured (map) and JSON text log bodies")
	}
	if len(severities) < 3 {
		t.Errorf("log severities %v, want at least 3 kinds", severities)
	}
	if len(logServices) < 6 {
		t.Errorf("logs from %v, want all six services", logServices)
	}

	// Metrics: every service reports host-like gauges and request metrics.
	metricsBy := map[string]map[string]bool{}
	rms := rc.metrics.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		svc := serviceName(rms.At(i).Resource())
		if metricsBy[svc] == nil {
			metricsBy[svc] = map[string]bool{}
		}
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				metricsBy[svc][ms.At(k).Name()] = true
			}
		}
	}
	for _, svc := range shopServices {
		for _, name := range []string{"process.cpu.utilization", "process.memory.usage", "http.server.request.duration", "app.http.server.requests"} {
			if !metricsBy[svc][name] {
				t.Errorf("service %s sent no metric %s", svc, name)
			}
		}
	}
	for _, name := range []string{"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "app.gen_ai.cost", "app.queue.depth"} {
		if !metricsBy["assistant"][name] {
			t.Errorf("assistant sent no metric %s", name)
		}
	}
	if rc.gzipped != rc.requests {
		t.Errorf("%d of %d HTTP requests gzip-compressed, want all", rc.gzipped, rc.requests)
	}

	// Faults: announced when they start and when they end.
	log := out.String()
	if !strings.Contains(log, "demo fault started") || !strings.Contains(log, "demo fault ended") {
		t.Error("no fault start and end in the demo's log")
	}
	if strings.Contains(log, "cannot export") {
		t.Error("the demo reported export failures")
	}
}

// TestRunStopsWithoutReceiver checks that Run returns when nothing listens: the
// final flush gives up after FlushTimeout instead of hanging, and no goroutine of
// the SDK is left behind (goleak checks that after all tests).
func TestRunStopsWithoutReceiver(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there any more
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out syncBuffer
	start := time.Now()
	err = demo.Run(ctx, demo.Options{
		GRPCEndpoint: addr, HTTPEndpoint: addr,
		Logger: slog.New(slog.NewTextHandler(&out, nil)),
		Seed:   7, TracesPerSecond: 20, MetricInterval: 100 * time.Millisecond,
		FlushTimeout: 500 * time.Millisecond,
	})
	t.Logf("Run returned after %v with %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Error("Run = nil, want an error saying the flush did not complete")
	}
	t.Logf("demo log:\n%s", out.String())
	if !strings.Contains(out.String(), "cannot export") {
		t.Errorf("export failures were not logged:\n%s", out.String())
	}
}

func TestOptionsRejectNonsense(t *testing.T) {
	for _, o := range []demo.Options{
		{TracesPerSecond: -1},
		{MetricInterval: -time.Second},
		{FaultLength: -time.Second},
	} {
		if err := demo.Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", o)
		}
	}
}
