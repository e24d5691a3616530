package main

// End-to-end tests: they build the real binary, start it on free loopback ports
// with a temporary data directory, and talk to it with real clients.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

var binary string // the outpost binary built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build outpost with CGO_ENABLED=0: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running outpost process.
type server struct {
	t                    *testing.T
	cmd                  *exec.Cmd
	http, grpc, otlpHTTP string // dialable addresses
	mu                   sync.Mutex
	log                  bytes.Buffer
	exited               chan struct{}
	exitErr              error
	user, password       string // basic auth of get, when logins are on
}

// startServer runs "outpost serve" on free loopback ports; env adds variables.
// Logins are off (OUTPOST_AUTH=none) unless env turns them on: the tests of
// logins do (auth_e2e_test.go), the others talk to the server as a program
// without credentials would.
func startServer(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	return startCommand(t, "serve", dataDir, env...)
}

// startCommand runs "outpost <command>" (serve or demo) like startServer.
func startCommand(t *testing.T, command, dataDir string, env ...string) *server {
	t.Helper()
	s := &server{t: t, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, command, "--data", dataDir, "--log-format", "json",
		"--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0")
	s.cmd.Env = append(append(os.Environ(), "OUTPOST_AUTH=none"), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.log.Write(line)
			s.log.WriteByte('\n')
			s.mu.Unlock()
			var rec struct {
				Msg, HTTP, OTLPGRPC, OTLPHTTP string
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				var m map[string]any
				json.Unmarshal(line, &m)
				s.http, s.grpc, s.otlpHTTP = m["http"].(string), m["otlp_grpc"].(string), m["otlp_http"].(string)
				once.Do(func() { close(ready) })
			}
		}
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-ready:
	case <-s.exited:
		t.Fatalf("outpost exited before listening: %v\n%s", s.exitErr, s.logs())
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("outpost did not start in 20 s\n%s", s.logs())
	}
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop sends SIGTERM and expects a clean exit within 10 s.
func (s *server) stop() {
	s.t.Helper()
	t0 := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("outpost did not exit within 10 s of SIGTERM\n%s", s.logs())
	}
	if s.exitErr != nil {
		s.t.Fatalf("outpost exited with %v after SIGTERM\n%s", s.exitErr, s.logs())
	}
	s.t.Logf("clean shutdown took %v", time.Since(t0))
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

func (s *server) get(path string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest("GET", "http://"+s.http+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type statusDoc struct {
	Version  string `json:"version"`
	Ingested struct {
		Points     uint64 `json:"points"`
		LogRecords uint64 `json:"log_records"`
		Spans      uint64 `json:"spans"`
	} `json:"ingested"`
	Services []struct {
		Name     string `json:"name"`
		LastSeen string `json:"last_seen"`
	} `json:"services"`
	UncleanShutdowns uint64 `json:"unclean_shutdowns"`
}

func (s *server) status() statusDoc {
	s.t.Helper()
	code, b := s.get("/api/v1/status")
	if code != 200 {
		s.t.Fatalf("status: %d %s", code, b)
	}
	var d statusDoc
	if err := json.Unmarshal(b, &d); err != nil {
		s.t.Fatalf("status: %v: %s", err, b)
	}
	return d
}

func res(service string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", service), attribute.String("host.name", "e2e"))
}

// sendSpans exports n spans through the SDK's gRPC and HTTP exporters (n each).
func sendSpans(t *testing.T, s *server, n int) {
	t.Helper()
	ctx := context.Background()
	g, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.grpc), otlptracegrpc.WithInsecure(), otlptracegrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.otlpHTTP), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{{"e2e-grpc", g}, {"e2e-http", h}} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(c.exp), sdktrace.WithResource(res(c.name)))
		tr := tp.Tracer("e2e")
		for i := 0; i < n; i++ {
			_, sp := tr.Start(ctx, fmt.Sprintf("op-%d", i%3))
			sp.End()
		}
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

// sendLogs exports n log records through the SDK's gRPC and HTTP exporters (n each).
func sendLogs(t *testing.T, s *server, n int) {
	t.Helper()
	ctx := context.Background()
	g, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.grpc), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	h, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(s.otlpHTTP), otlploghttp.WithInsecure(), otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		exp  sdklog.Exporter
	}{{"e2e-grpc", g}, {"e2e-http", h}} {
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(c.exp)), sdklog.WithResource(res(c.name)))
		lg := lp.Logger("e2e")
		for i := 0; i < n; i++ {
			var r otellog.Record
			r.SetTimestamp(time.Now())
			r.SetSeverity(otellog.SeverityInfo)
			r.SetBody(attribute.StringValue(fmt.Sprintf("order %d shipped", i)))
			lg.Emit(ctx, r)
		}
		if err := lp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

// namedMetricExporter is an SDK metric exporter and the service name its data carries.
type namedMetricExporter struct {
	name string
	exp  sdkmetric.Exporter
}

// metricExporters returns the SDK's gRPC and HTTP metric exporters aimed at s,
// named e2e-grpc and e2e-http.
func metricExporters(t *testing.T, s *server) []namedMetricExporter {
	t.Helper()
	ctx := context.Background()
	g, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.grpc), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	h, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(s.otlpHTTP), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	return []namedMetricExporter{{"e2e-grpc", g}, {"e2e-http", h}}
}

// sendMetrics records a counter with 3 attribute sets and a histogram with 1 and
// exports once through each of the SDK's gRPC and HTTP exporters: 4 points each.
func sendMetrics(t *testing.T, s *server) {
	t.Helper()
	ctx := context.Background()
	for _, c := range metricExporters(t, s) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res(c.name)))
		m := mp.Meter("e2e")
		cnt, _ := m.Int64Counter("orders")
		hist, _ := m.Float64Histogram("latency", metric.WithUnit("s"))
		for i := 0; i < 30; i++ {
			cnt.Add(ctx, 1, metric.WithAttributes(attribute.Int("shard", i%3)))
			hist.Record(ctx, float64(i)/10)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if err := c.exp.Export(ctx, &rm); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		c.exp.Shutdown(ctx)
		mp.Shutdown(ctx)
	}
}

func TestEndToEndWithSDKExporters(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	if code, _ := s.get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := s.get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	sendSpans(t, s, 25)
	sendLogs(t, s, 40)
	sendMetrics(t, s)

	check := func(s *server, when string) {
		t.Helper()
		d := s.status()
		if d.Ingested.Spans != 50 || d.Ingested.LogRecords != 80 || d.Ingested.Points != 8 {
			t.Errorf("%s: ingested %+v, want 50 spans, 80 log records, 8 points", when, d.Ingested)
		}
		names := map[string]bool{}
		for _, svc := range d.Services {
			names[svc.Name] = true
		}
		if !names["e2e-grpc"] || !names["e2e-http"] {
			t.Errorf("%s: services %+v, want e2e-grpc and e2e-http", when, d.Services)
		}
	}
	check(s, "before restart")
	code, body := s.get("/metrics")
	for _, want := range []string{
		`outpost_ingest_requests_total{code="200",signal="logs",transport="http"}`,
		`outpost_ingest_requests_total{code="OK",signal="traces",transport="grpc"}`,
		"outpost_stored_spans_total 50",
		"outpost_http_request_duration_seconds_bucket",
		"outpost_logs_pending_records",
		"outpost_logs_persist_wait_seconds_total",
		"outpost_tsdb_samples_appended_total",
		"outpost_tsdb_head_samples",
		"go_goroutines",
	} {
		if code != 200 || !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	s.stop()

	s = startServer(t, dir)
	check(s, "after restart")
	if d := s.status(); d.UncleanShutdowns != 0 {
		t.Errorf("a clean stop counted as unclean: %d", d.UncleanShutdowns)
	}
	s.stop()
}

func TestKillNineKeepsAcknowledgedCounts(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	sendLogs(t, s, 100) // each record acknowledged before the next (simple processor)
	s.kill()
	s = startServer(t, dir)
	d := s.status()
	if d.Ingested.LogRecords != 200 {
		t.Errorf("after kill -9: %d log records, want the 200 acknowledged", d.Ingested.LogRecords)
	}
	if d.UncleanShutdowns != 1 || !strings.Contains(s.logs(), "unclean shutdown") {
		t.Errorf("unclean shutdown not reported: count %d", d.UncleanShutdowns)
	}
	s.stop()
}

func TestSecondServerOnSameDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	cmd := exec.Command(binary, "serve", "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "OUTPOST_DATA="+dir) // also checks the environment is read
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second server on the same directory started:\n%s", out)
	}
	if want := fmt.Sprintf("held by pid %d", s.cmd.Process.Pid); !bytes.Contains(out, []byte(want)) {
		t.Errorf("error does not name the holder (%q):\n%s", want, out)
	}
	s.stop()
}

func TestBadInputKeepsServerHealthy(t *testing.T) {
	s := startServer(t, t.TempDir())
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 256<<20))
	zw.Close()
	for _, c := range []struct {
		ctype, enc string
		body       []byte
		code       int
	}{
		{"application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, 400},
		{"application/json", "", []byte("{nope"), 400},
		{"text/plain", "", []byte("hello"), 415},
		{"application/x-protobuf", "gzip", bomb.Bytes(), 413},
		{"application/x-protobuf", "", make([]byte, 9<<20), 413},
	} {
		req, _ := http.NewRequest("POST", "http://"+s.otlpHTTP+"/v1/traces", bytes.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		if c.enc != "" {
			req.Header.Set("Content-Encoding", c.enc)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s (%d bytes): %d, want %d", c.ctype, c.enc, len(c.body), resp.StatusCode, c.code)
		}
	}
	if code, _ := s.get("/healthz"); code != 200 {
		t.Errorf("/healthz after bad input: %d", code)
	}
	sendSpans(t, s, 1)
	if d := s.status(); d.Ingested.Spans != 2 {
		t.Errorf("spans after bad input: %d, want 2", d.Ingested.Spans)
	}
	s.stop()
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "outpost ") {
		t.Errorf("outpost version: %v %q", err, out)
	}
	out, err = exec.Command(binary, "frobnicate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v %q", err, out)
	}
}
