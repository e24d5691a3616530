package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openT(t *testing.T, dir string, opts *Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	return s
}

func logs(service string, n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if service != "" {
		rl.Resource().Attributes().PutStr("service.name", service)
	}
	sl := rl.ScopeLogs().AppendEmpty()
	for i := 0; i < n; i++ {
		sl.LogRecords().AppendEmpty().Body().SetStr(fmt.Sprintf("line %d", i))
	}
	return ld
}

func spans(service string, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		ss.Spans().AppendEmpty().SetName("op")
	}
	return td
}

func metrics(service string, gaugePoints, histPoints int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", service)
	sm := rm.ScopeMetrics().AppendEmpty()
	g := sm.Metrics().AppendEmpty()
	g.SetName("g")
	gauge := g.SetEmptyGauge()
	for i := 0; i < gaugePoints; i++ {
		gauge.DataPoints().AppendEmpty().SetDoubleValue(float64(i))
	}
	h := sm.Metrics().AppendEmpty()
	h.SetName("h")
	hist := h.SetEmptyHistogram()
	for i := 0; i < histPoints; i++ {
		hist.DataPoints().AppendEmpty().SetCount(3)
	}
	return md
}

func TestCountsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, dir, nil)
	if s.UncleanShutdown() {
		t.Fatal("a new directory reports an unclean shutdown")
	}
	must(t)(s.ConsumeLogs(ctx, logs("checkout", 3)))
	must(t)(s.ConsumeLogs(ctx, logs("", 2)))
	must(t)(s.ConsumeTraces(ctx, spans("checkout", 5)))
	must(t)(s.ConsumeMetrics(ctx, metrics("db", 4, 2)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openT(t, dir, nil)
	defer s.Close()
	if s.UncleanShutdown() {
		t.Error("clean close reported as unclean")
	}
	want := Counts{Points: 6, LogRecords: 5, Spans: 5}
	if got := s.Totals(); got != want {
		t.Errorf("totals after reopen = %+v, want %+v", got, want)
	}
	got := map[string]Counts{}
	for _, svc := range s.Services() {
		got[svc.Name] = svc.Counts
		if svc.LastSeen.IsZero() {
			t.Errorf("service %q has no last-seen time", svc.Name)
		}
	}
	wantSvc := map[string]Counts{
		"checkout":     {LogRecords: 3, Spans: 5},
		UnknownService: {LogRecords: 2},
		"db":           {Points: 6},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantSvc) {
		t.Errorf("services = %v, want %v", got, wantSvc)
	}
}

func must(t *testing.T) func(Result, error) Result {
	return func(r Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestSecondOpenNamesHolder(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, nil)
	defer s.Close()
	_, err := Open(dir, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error does not name the holder: %v", err)
	}
}

func TestFormatVersion(t *testing.T) {
	t.Run("newer is refused", func(t *testing.T) {
		dir := t.TempDir()
		openT(t, dir, nil).Close()
		os.WriteFile(filepath.Join(dir, formatFile), []byte("outpost-data 99\n"), 0o644)
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "99") {
			t.Fatalf("err = %v, want ErrNewerFormat naming version 99", err)
		}
	})
	t.Run("garbage is refused", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, formatFile), []byte("hello"), 0o644)
		if _, err := Open(dir, nil); !errors.Is(err, ErrNotDataDir) {
			t.Fatalf("err = %v, want ErrNotDataDir", err)
		}
	})
	t.Run("foreign directory is refused and untouched", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrNotDataDir) || !strings.Contains(err.Error(), "notes.txt") {
			t.Fatalf("err = %v, want ErrNotDataDir naming notes.txt", err)
		}
		if _, err := os.Stat(filepath.Join(dir, metaFile)); err == nil {
			t.Error("Open wrote into a foreign directory")
		}
	})
	t.Run("leftover temp files are swept", func(t *testing.T) {
		dir := t.TempDir()
		openT(t, dir, nil).Close()
		tmp := filepath.Join(dir, "FORMAT.123.tmp")
		os.WriteFile(tmp, []byte("half"), 0o644)
		openT(t, dir, nil).Close()
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("leftover %s still there", tmp)
		}
	})
}

func TestUncleanShutdownIsReportedAndCounted(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, nil).Close()
	// A crash leaves the marker behind; simulate it.
	os.WriteFile(filepath.Join(dir, uncleanFile), []byte("x"), 0o644)
	s := openT(t, dir, nil)
	if !s.UncleanShutdown() || s.UncleanShutdowns() != 1 {
		t.Fatalf("unclean = %v, count = %d; want true, 1", s.UncleanShutdown(), s.UncleanShutdowns())
	}
	if _, err := os.Stat(filepath.Join(dir, uncleanFile)); err != nil {
		t.Error("no marker while running")
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, uncleanFile)); !os.IsNotExist(err) {
		t.Error("marker left after a clean close")
	}
	s = openT(t, dir, nil)
	defer s.Close()
	if s.UncleanShutdown() || s.UncleanShutdowns() != 1 {
		t.Errorf("after clean close: unclean = %v, count = %d; want false, 1", s.UncleanShutdown(), s.UncleanShutdowns())
	}
}

// fakeBackend records calls; it is a test double for the backends' contract only.
type fakeBackend struct {
	name     string
	order    *[]string
	mu       sync.Mutex
	rejected int64
	err      error
	got      int
}

func (f *fakeBackend) write() (int64, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got++
	if f.err != nil {
		return 0, "", f.err
	}
	if f.rejected > 0 {
		return f.rejected, "bad records", nil
	}
	return 0, "", nil
}
func (f *fakeBackend) WriteMetrics(context.Context, pmetric.Metrics) (int64, string, error) {
	return f.write()
}
func (f *fakeBackend) WriteLogs(context.Context, plog.Logs) (int64, string, error) { return f.write() }
func (f *fakeBackend) WriteTraces(context.Context, ptrace.Traces) (int64, string, error) {
	return f.write()
}
func (f *fakeBackend) Close() error { *f.order = append(*f.order, f.name); return nil }

type backpressure struct{}

func (backpressure) Error() string             { return "queue full" }
func (backpressure) RetryAfter() time.Duration { return 3 * time.Second }

func TestWritePathUsesBackends(t *testing.T) {
	var order []string
	m := &fakeBackend{name: "metrics", order: &order}
	l := &fakeBackend{name: "logs", order: &order, rejected: 2}
	tr := &fakeBackend{name: "traces", order: &order, err: backpressure{}}
	var dirs []string
	s := openT(t, t.TempDir(), &Options{
		OpenMetrics: func(dir string) (MetricsBackend, error) { dirs = append(dirs, filepath.Base(dir)); return m, nil },
		OpenLogs:    func(dir string) (LogsBackend, error) { dirs = append(dirs, filepath.Base(dir)); return l, nil },
		OpenTraces:  func(dir string) (TracesBackend, error) { dirs = append(dirs, filepath.Base(dir)); return tr, nil },
	})
	if fmt.Sprint(dirs) != "[tsdb logs traces]" {
		t.Errorf("backends opened in %v", dirs)
	}
	ctx := context.Background()
	r := must(t)(s.ConsumeLogs(ctx, logs("a", 5)))
	if r.Accepted != 3 || r.Rejected != 2 || r.Reason != "bad records" {
		t.Errorf("logs result = %+v, want 3 accepted, 2 rejected", r)
	}
	_, err := s.ConsumeTraces(ctx, spans("a", 5))
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 3*time.Second {
		t.Errorf("traces err = %v, want the backend's back-pressure error", err)
	}
	must(t)(s.ConsumeMetrics(ctx, metrics("a", 1, 0)))
	if got := s.Totals(); got != (Counts{Points: 1, LogRecords: 3}) {
		t.Errorf("totals = %+v", got)
	}
	s.Close()
	if fmt.Sprint(order) != "[traces logs metrics]" {
		t.Errorf("close order = %v, want reverse of opening", order)
	}
	if _, err := s.ConsumeLogs(ctx, logs("a", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: err = %v, want ErrClosed", err)
	}
}

func TestFailedBackendOpenReleasesDirectory(t *testing.T) {
	dir := t.TempDir()
	var order []string
	m := &fakeBackend{name: "metrics", order: &order}
	_, err := Open(dir, &Options{
		OpenMetrics: func(string) (MetricsBackend, error) { return m, nil },
		OpenLogs:    func(string) (LogsBackend, error) { return nil, errors.New("disk on fire") },
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
	if fmt.Sprint(order) != "[metrics]" {
		t.Errorf("opened backends not closed: %v", order)
	}
	s := openT(t, dir, nil) // lock released
	defer s.Close()
	if s.UncleanShutdown() {
		t.Error("a failed open is reported as an unclean shutdown")
	}
}

func TestConcurrentWritesAreAllCounted(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, nil)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := s.ConsumeLogs(context.Background(), logs(fmt.Sprintf("svc-%d", w%3), 2)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	s.Close()
	s = openT(t, dir, nil)
	defer s.Close()
	if got := s.Totals().LogRecords; got != 800 {
		t.Errorf("log records = %d, want 800", got)
	}
	var sum uint64
	for _, svc := range s.Services() {
		sum += svc.Counts.LogRecords
	}
	if sum != 800 {
		t.Errorf("sum over services = %d, want 800", sum)
	}
}

func TestMaxServices(t *testing.T) {
	s := openT(t, t.TempDir(), &Options{MaxServices: 2})
	defer s.Close()
	for _, name := range []string{"a", "b", "c", "d", "a"} {
		must(t)(s.ConsumeSpans(name))
	}
	got := map[string]uint64{}
	for _, svc := range s.Services() {
		got[svc.Name] = svc.Counts.Spans
	}
	want := map[string]uint64{"a": 2, "b": 1, OtherServices: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

// ConsumeSpans is a test shorthand: one span of the given service.
func (s *Store) ConsumeSpans(service string) (Result, error) {
	return s.ConsumeTraces(context.Background(), spans(service, 1))
}

func TestRates(t *testing.T) {
	r := newRateTracker(5)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 8; i++ {
		r.record(t0.Add(time.Duration(i)*time.Second), Counts{Points: uint64(i * 100), Spans: uint64(i)})
	}
	got := r.rates(10 * time.Second)
	// The ring keeps 5 samples: t=3..7 s, so 400 points over 4 s.
	if got.Points != 100 || got.Spans != 1 || got.Window != 4*time.Second {
		t.Errorf("rates = %+v, want 100 points/s, 1 span/s over 4s", got)
	}
}
