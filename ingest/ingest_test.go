package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"outpost/internal/otlpwire"
	"outpost/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newStore opens a real store in a temporary directory.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir(), &store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newHTTP(t testing.TB, c Consumer, o *Options) (*Receiver, *httptest.Server) {
	r := NewReceiver(c, o)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	return r, srv
}

func testLogs(n, attrs int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for i := 0; i < n; i++ {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("payment %d declined", i))
		for a := 0; a < attrs; a++ {
			lr.Attributes().PutInt(fmt.Sprintf("a%d", a), int64(a))
		}
	}
	return ld
}

func testTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("GET /")
		sp.SetTraceID([16]byte{1, byte(i)})
		sp.SetSpanID([8]byte{2, byte(i)})
	}
	return td
}

func testMetrics(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "db")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue_depth")
	g := m.SetEmptyGauge()
	for i := 0; i < n; i++ {
		p := g.DataPoints().AppendEmpty()
		p.SetIntValue(int64(i))
		p.Attributes().PutInt("shard", int64(i))
	}
	return md
}

func post(t testing.TB, url, ctype string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestHTTPAcceptsAllSignalsAndEncodings(t *testing.T) {
	st := newStore(t)
	_, srv := newHTTP(t, st, nil)
	lb, _ := plogotlp.NewExportRequestFromLogs(testLogs(3, 1)).MarshalProto()
	lj, _ := plogotlp.NewExportRequestFromLogs(testLogs(2, 1)).MarshalJSON()
	tb, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(4)).MarshalProto()
	tj, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(1)).MarshalJSON()
	mb, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(5)).MarshalProto()
	mj, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(6)).MarshalJSON()
	cases := []struct {
		path, ctype string
		body        []byte
		gzip        bool
	}{
		{"/v1/logs", contentProto, lb, false},
		{"/v1/logs", contentJSON, lj, true},
		{"/v1/traces", contentProto, tb, true},
		{"/v1/traces", contentJSON + "; charset=utf-8", tj, false},
		{"/v1/metrics", contentProto, mb, false},
		{"/v1/metrics", contentJSON, mj, true},
	}
	for _, c := range cases {
		body, hdr := c.body, map[string]string{}
		if c.gzip {
			body, hdr["Content-Encoding"] = gz(t, body), "gzip"
		}
		resp := post(t, srv.URL+c.path, c.ctype, body, hdr)
		rb, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Errorf("%s %s gzip=%v: status %d: %s", c.path, c.ctype, c.gzip, resp.StatusCode, rb)
			continue
		}
		wantCT := contentProto
		if strings.HasPrefix(c.ctype, contentJSON) {
			wantCT = contentJSON
		}
		if got := resp.Header.Get("Content-Type"); got != wantCT {
			t.Errorf("%s: response Content-Type %q, want %q", c.path, got, wantCT)
		}
	}
	if got, want := st.Totals(), (store.Counts{Points: 11, LogRecords: 5, Spans: 5}); got != want {
		t.Errorf("stored %+v, want %+v", got, want)
	}
}

// rpcStatus decodes an OTLP/HTTP error body.
func rpcStatus(t testing.TB, resp *http.Response) *spb.Status {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	st := &spb.Status{}
	var err error
	if strings.HasPrefix(resp.Header.Get("Content-Type"), contentJSON) {
		err = protojson.Unmarshal(b, st)
	} else {
		err = proto.Unmarshal(b, st)
	}
	if err != nil {
		t.Fatalf("error body %q is not a google.rpc.Status: %v", b, err)
	}
	return st
}

func TestHTTPBadInput(t *testing.T) {
	st := newStore(t)
	_, srv := newHTTP(t, st, &Options{MaxRequestBytes: 1 << 20, MaxDecompressedBytes: 4 << 20})
	good, _ := plogotlp.NewExportRequestFromLogs(testLogs(1, 0)).MarshalProto()
	big := bytes.Repeat([]byte{'x'}, 2<<20)
	bomb := gz(t, make([]byte, 256<<20))
	cases := []struct {
		name   string
		method string
		ctype  string
		body   []byte
		hdr    map[string]string
		code   int
		msg    string
	}{
		{"malformed protobuf", "POST", contentProto, []byte{0xff, 0xff, 0xff, 0x01, 0x02}, nil, 400, "cannot decode protobuf logs"},
		{"malformed JSON", "POST", contentJSON, []byte(`{"resourceLogs": [`), nil, 400, "cannot decode JSON logs"},
		{"wrong content type", "POST", "text/plain", good, nil, 415, "unsupported Content-Type"},
		{"no content type", "POST", "", good, nil, 415, "unsupported Content-Type"},
		{"unknown encoding", "POST", contentProto, good, map[string]string{"Content-Encoding": "br"}, 415, "unsupported Content-Encoding"},
		{"bad gzip", "POST", contentProto, []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"oversized body", "POST", contentProto, big, nil, 413, "exceeds the limit of 1048576 bytes"},
		{"256 MiB gzip bomb", "POST", contentProto, bomb, map[string]string{"Content-Encoding": "gzip"}, 413, "decompressed request body exceeds the limit of 4194304 bytes"},
		{"GET", "GET", contentProto, nil, nil, 405, "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+"/v1/logs", bytes.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			for k, v := range c.hdr {
				req.Header.Set(k, v)
			}
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.code {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, c.code)
			}
			if s := rpcStatus(t, resp); !strings.Contains(s.Message, c.msg) {
				t.Errorf("message %q does not contain %q", s.Message, c.msg)
			}
			t.Logf("answered in %v", time.Since(t0))
		})
	}
	if got := st.Totals(); got != (store.Counts{}) {
		t.Errorf("bad input stored something: %+v", got)
	}
	// Still healthy: a good request goes through.
	if resp := post(t, srv.URL+"/v1/logs", contentProto, good, nil); resp.StatusCode != 200 {
		t.Errorf("good request after bad ones: status %d", resp.StatusCode)
	}
}

func TestAttributeLimitIsPartialSuccess(t *testing.T) {
	st := newStore(t)
	_, srv := newHTTP(t, st, &Options{MaxAttributes: 5})
	ld := testLogs(3, 2)
	extra := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	for i := 0; i < 1000; i++ {
		extra.Attributes().PutStr(fmt.Sprintf("k%d", i), "v")
	}
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	resp := post(t, srv.URL+"/v1/logs", contentProto, body, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	er := plogotlp.NewExportResponse()
	if err := er.UnmarshalProto(b); err != nil {
		t.Fatal(err)
	}
	ps := er.PartialSuccess()
	if ps.RejectedLogRecords() != 1 || !strings.Contains(ps.ErrorMessage(), "more than 5 attributes") {
		t.Errorf("partial success = %d %q, want 1 rejected for attributes", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
	if got := st.Totals().LogRecords; got != 3 {
		t.Errorf("stored %d log records, want 3", got)
	}

	// Spans and data points too, over JSON.
	td := testTraces(2)
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1)
	for i := 0; i < 6; i++ {
		sp.Attributes().PutInt(fmt.Sprint(i), 1)
	}
	tj, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	resp = post(t, srv.URL+"/v1/traces", contentJSON, tj, nil)
	b, _ = io.ReadAll(resp.Body)
	tr := ptraceotlp.NewExportResponse()
	if err := tr.UnmarshalJSON(b); err != nil || tr.PartialSuccess().RejectedSpans() != 1 {
		t.Errorf("traces response %s (err %v), want 1 rejected span", b, err)
	}
	md := testMetrics(2)
	md.ResourceMetrics().At(0).Resource().Attributes().PutStr("a", "1")
	for i := 0; i < 6; i++ {
		md.ResourceMetrics().At(0).Resource().Attributes().PutInt(fmt.Sprint(i), 1)
	}
	mb, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	resp = post(t, srv.URL+"/v1/metrics", contentProto, mb, nil)
	b, _ = io.ReadAll(resp.Body)
	mr := pmetricotlp.NewExportResponse()
	if err := mr.UnmarshalProto(b); err != nil || mr.PartialSuccess().RejectedDataPoints() != 2 {
		t.Errorf("metrics response rejected %d (err %v), want 2", mr.PartialSuccess().RejectedDataPoints(), err)
	}
}

func TestInvalidUTF8IsPartialSuccess(t *testing.T) {
	st := newStore(t)
	_, srv := newHTTP(t, st, nil)
	ld := testLogs(4, 1)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	recs.At(0).Body().SetStr("bad \xff body")
	recs.At(1).Attributes().PutStr("user", "caf\xe9")
	recs.At(2).Attributes().PutEmptyMap("nested").PutEmptySlice("list").AppendEmpty().SetStr("\xc3")
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	resp := post(t, srv.URL+"/v1/logs", contentProto, body, nil)
	b, _ := io.ReadAll(resp.Body)
	er := plogotlp.NewExportResponse()
	if err := er.UnmarshalProto(b); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if ps := er.PartialSuccess(); ps.RejectedLogRecords() != 3 || !strings.Contains(ps.ErrorMessage(), "3 log records rejected: text that is not valid UTF-8") {
		t.Errorf("partial success = %d %q", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
	if got := st.Totals().LogRecords; got != 1 {
		t.Errorf("stored %d, want the 1 valid record", got)
	}
	// A bad resource takes all its records with it; a bad span name only its span.
	td := testTraces(3)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("GET /\xfe")
	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "\xff")
	rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	tb, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	resp = post(t, srv.URL+"/v1/traces", contentProto, tb, nil)
	b, _ = io.ReadAll(resp.Body)
	tr := ptraceotlp.NewExportResponse()
	if err := tr.UnmarshalProto(b); err != nil || tr.PartialSuccess().RejectedSpans() != 2 {
		t.Errorf("traces: rejected %d (%v), want 2", tr.PartialSuccess().RejectedSpans(), err)
	}
	if got := st.Totals().Spans; got != 2 {
		t.Errorf("stored %d spans, want 2", got)
	}
}

// blockingConsumer holds every write until released; it tests the limiter only.
type blockingConsumer struct {
	started chan struct{}
	release chan struct{}
	err     error
}

func (b *blockingConsumer) wait() (store.Result, error) {
	b.started <- struct{}{}
	<-b.release
	return store.Result{Accepted: 1}, b.err
}
func (b *blockingConsumer) ConsumeMetrics(context.Context, pmetric.Metrics) (store.Result, error) {
	return b.wait()
}
func (b *blockingConsumer) ConsumeLogs(context.Context, plog.Logs) (store.Result, error) {
	return b.wait()
}
func (b *blockingConsumer) ConsumeTraces(context.Context, ptrace.Traces) (store.Result, error) {
	return b.wait()
}

func TestConcurrencyLimitAnswersRetryable(t *testing.T) {
	bc := &blockingConsumer{started: make(chan struct{}, 2), release: make(chan struct{})}
	r, srv := newHTTP(t, bc, &Options{MaxConcurrentRequests: 2, RetryAfter: 7 * time.Second})
	body, _ := plogotlp.NewExportRequestFromLogs(testLogs(1, 0)).MarshalProto()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", srv.URL+"/v1/logs", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentProto)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-bc.started
	<-bc.started
	resp := post(t, srv.URL+"/v1/logs", contentProto, body, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("third request: status %d Retry-After %q, want 429 and 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The same limit covers gRPC.
	conn := dialGRPC(t, r, nil)
	_, err := plogotlp.NewGRPCClient(conn).Export(context.Background(), plogotlp.NewExportRequestFromLogs(testLogs(1, 0)))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !hasRetryInfo(st, 7*time.Second) {
		t.Errorf("gRPC over the limit: %v, want ResourceExhausted with RetryInfo 7s", err)
	}
	close(bc.release)
	wg.Wait()
}

func hasRetryInfo(st *status.Status, d time.Duration) bool {
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.RetryDelay.AsDuration() == d {
			return true
		}
	}
	return false
}

type backpressureErr struct{}

func (backpressureErr) Error() string             { return "tsdb: head is full" }
func (backpressureErr) RetryAfter() time.Duration { return 5 * time.Second }

func TestStoreErrorsAreRetryable(t *testing.T) {
	for _, c := range []struct {
		err        error
		code       int
		retryAfter string
		grpcCode   codes.Code
	}{
		{backpressureErr{}, 429, "5", codes.ResourceExhausted},
		{fmt.Errorf("cannot write: %w", io.ErrShortWrite), 503, "1", codes.Unavailable},
		{store.ErrClosed, 503, "1", codes.Unavailable},
	} {
		bc := &blockingConsumer{started: make(chan struct{}, 10), release: make(chan struct{}), err: c.err}
		close(bc.release)
		r, srv := newHTTP(t, bc, nil)
		body, _ := plogotlp.NewExportRequestFromLogs(testLogs(1, 0)).MarshalProto()
		resp := post(t, srv.URL+"/v1/logs", contentProto, body, nil)
		if resp.StatusCode != c.code || resp.Header.Get("Retry-After") != c.retryAfter {
			t.Errorf("%v: status %d Retry-After %q, want %d %q", c.err, resp.StatusCode, resp.Header.Get("Retry-After"), c.code, c.retryAfter)
		}
		_, err := plogotlp.NewGRPCClient(dialGRPC(t, r, nil)).Export(context.Background(), plogotlp.NewExportRequestFromLogs(testLogs(1, 0)))
		if st := status.Convert(err); st.Code() != c.grpcCode || !hasRetryInfo(st, mustAtoiSeconds(c.retryAfter)) {
			t.Errorf("%v: gRPC %v, want %v with RetryInfo", c.err, err, c.grpcCode)
		}
	}
}

func mustAtoiSeconds(s string) time.Duration {
	var n int
	fmt.Sscan(s, &n)
	return time.Duration(n) * time.Second
}

func TestToken(t *testing.T) {
	st := newStore(t)
	r, srv := newHTTP(t, st, &Options{Token: "s3cret"})
	body, _ := plogotlp.NewExportRequestFromLogs(testLogs(1, 0)).MarshalProto()
	if resp := post(t, srv.URL+"/v1/logs", contentProto, body, nil); resp.StatusCode != 401 {
		t.Errorf("no token: status %d, want 401", resp.StatusCode)
	}
	if resp := post(t, srv.URL+"/v1/logs", contentProto, body, map[string]string{"Authorization": "Bearer wrong"}); resp.StatusCode != 401 {
		t.Errorf("wrong token: status %d, want 401", resp.StatusCode)
	}
	if resp := post(t, srv.URL+"/v1/logs", contentProto, body, map[string]string{"Authorization": "Bearer s3cret"}); resp.StatusCode != 200 {
		t.Errorf("right token: status %d, want 200", resp.StatusCode)
	}
	client := plogotlp.NewGRPCClient(dialGRPC(t, r, nil))
	if _, err := client.Export(context.Background(), plogotlp.NewExportRequestFromLogs(testLogs(1, 0))); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer s3cret")
	if _, err := client.Export(ctx, plogotlp.NewExportRequestFromLogs(testLogs(1, 0))); err != nil {
		t.Errorf("gRPC with token: %v", err)
	}
}

func dialGRPC(t testing.TB, r *Receiver, opts []grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := r.NewGRPCServer()
	go srv.Serve(ln)
	conn, err := grpc.NewClient(ln.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return conn
}

func TestGRPC(t *testing.T) {
	st := newStore(t)
	r := NewReceiver(st, &Options{MaxDecompressedBytes: 1 << 20, MaxAttributes: 3})
	conn := dialGRPC(t, r, nil)
	ctx := context.Background()
	gzipped := grpc.UseCompressor("gzip")
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(testTraces(7)), gzipped); err != nil {
		t.Fatalf("traces with gzip: %v", err)
	}
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(testMetrics(3))); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	resp, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(testLogs(2, 4)))
	if err != nil || resp.PartialSuccess().RejectedLogRecords() != 2 {
		t.Errorf("logs over the attribute limit: %v, rejected %d, want 2", err, resp.PartialSuccess().RejectedLogRecords())
	}
	// A message over the decompressed limit, sent gzipped so it is small on the wire.
	_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(hugeLogs(2<<20)), gzipped)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized message: %v, want ResourceExhausted", err)
	}
	if got, want := st.Totals(), (store.Counts{Points: 3, Spans: 7}); got != want {
		t.Errorf("stored %+v, want %+v", got, want)
	}
}

func hugeLogs(size int) plog.Logs {
	ld := testLogs(1, 0)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().SetStr(strings.Repeat("a", size))
	return ld
}

// routeRecorder is a Consumer that notes how each metrics request reached it.
type routeRecorder struct{ routes []string }

func (r *routeRecorder) ConsumeMetrics(_ context.Context, md pmetric.Metrics) (store.Result, error) {
	r.routes = append(r.routes, fmt.Sprintf("decoded %d", md.DataPointCount()))
	return store.Result{Accepted: int64(md.DataPointCount())}, nil
}
func (r *routeRecorder) ConsumeMetricsWire(_ context.Context, m *otlpwire.Metrics) (store.Result, error) {
	r.routes = append(r.routes, fmt.Sprintf("wire %d", m.Points))
	return store.Result{Accepted: int64(m.Points)}, nil
}
func (r *routeRecorder) ConsumeLogs(context.Context, plog.Logs) (store.Result, error) {
	return store.Result{}, nil
}
func (r *routeRecorder) ConsumeTraces(context.Context, ptrace.Traces) (store.Result, error) {
	return store.Result{}, nil
}

// TestMetricsOnTheWire: a protobuf request within the limits goes to the
// consumer undecoded, with histograms too; JSON and requests the limits cut
// are decoded, and answered as before.
func TestMetricsOnTheWire(t *testing.T) {
	rec := &routeRecorder{}
	_, srv := newHTTP(t, rec, &Options{MaxAttributes: 3})
	send := func(ctype string, md pmetric.Metrics) int64 {
		t.Helper()
		req := pmetricotlp.NewExportRequestFromMetrics(md)
		var body []byte
		if ctype == contentJSON {
			body, _ = req.MarshalJSON()
		} else {
			body, _ = req.MarshalProto()
		}
		resp := post(t, srv.URL+"/v1/metrics", ctype, body, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		er := pmetricotlp.NewExportResponse()
		if ctype == contentJSON {
			er.UnmarshalJSON(b)
		} else {
			er.UnmarshalProto(b)
		}
		return er.PartialSuccess().RejectedDataPoints()
	}
	send(contentProto, testMetrics(4))
	send(contentJSON, testMetrics(3))
	hist := testMetrics(2)
	h := hist.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	h.SetName("latency")
	h.SetEmptyHistogram().DataPoints().AppendEmpty().SetCount(1)
	send(contentProto, hist)
	wide := testMetrics(2)
	for i := range 3 {
		wide.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(1).Attributes().PutInt(fmt.Sprint(i), 1)
	}
	if n := send(contentProto, wide); n != 1 {
		t.Errorf("a point over the attribute limit: %d rejected, want 1", n)
	}
	if got, want := strings.Join(rec.routes, ", "), "wire 4, decoded 3, wire 3, decoded 1"; got != want {
		t.Errorf("routes %s, want %s", got, want)
	}
	resp := post(t, srv.URL+"/v1/metrics", contentProto, []byte{0x0a, 0x05, 0x12}, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed body: status %d, want 400", resp.StatusCode)
	}
}

// TestGRPCMetricsOnTheWire: over gRPC too, a request within the limits goes
// to the consumer undecoded, one the limits cut is decoded and answered with
// partial success; a malformed request of any signal gets InvalidArgument.
func TestGRPCMetricsOnTheWire(t *testing.T) {
	rec := &routeRecorder{}
	conn := dialGRPC(t, NewReceiver(rec, &Options{MaxAttributes: 3}), nil)
	ctx := context.Background()
	client := pmetricotlp.NewGRPCClient(conn)
	if _, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(testMetrics(4)), grpc.UseCompressor("gzip")); err != nil {
		t.Fatal(err)
	}
	wide := testMetrics(2)
	for i := range 3 {
		wide.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(1).Attributes().PutInt(fmt.Sprint(i), 1)
	}
	resp, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(wide))
	if err != nil || resp.PartialSuccess().RejectedDataPoints() != 1 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), "more than 3 attributes") {
		t.Errorf("a point over the attribute limit: %v, rejected %d (%q), want 1", err, resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage())
	}
	if got, want := strings.Join(rec.routes, ", "), "wire 4, decoded 1"; got != want {
		t.Errorf("routes %s, want %s", got, want)
	}
	for _, service := range []string{"metrics.v1.MetricsService", "logs.v1.LogsService", "trace.v1.TraceService"} {
		err = conn.Invoke(ctx, "/opentelemetry.proto.collector."+service+"/Export", &wireMessage{b: []byte{0x0a, 0x05, 0x12}}, &wireMessage{})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: malformed request: %v, want InvalidArgument", service, err)
		}
	}
}
