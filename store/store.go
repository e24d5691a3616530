package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/internal/atomicfile"
	"outpost/internal/otlpwire"
)

// Options configure Open. A nil *Options means all defaults.
type Options struct {
	// Logger receives the store's structured logs. Nil means slog.Default().
	Logger *slog.Logger

	// OpenMetrics opens the metrics backend in its directory (<data>/tsdb, created
	// before the call). Nil means metrics are counted but not stored.
	OpenMetrics func(dir string) (MetricsBackend, error)
	// OpenLogs opens the logs backend in <data>/logs. Nil: counted, not stored.
	OpenLogs func(dir string) (LogsBackend, error)
	// OpenTraces opens the traces backend in <data>/traces. Nil: counted, not stored.
	OpenTraces func(dir string) (TracesBackend, error)

	// Taps see every stored batch (the detectors). Nil means none.
	Taps []Tap

	// MaxServices caps how many services are counted separately; the counts of
	// services beyond it go to OtherServices. Zero means 10,000.
	MaxServices int

	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// Result is the outcome of a write that was (at least partly) accepted.
type Result struct {
	Accepted int64  // items stored and counted
	Rejected int64  // items a backend refused (OTLP partial success)
	Reason   string // why, when Rejected > 0
}

// ErrClosed is returned by writes after Close has begun.
var ErrClosed = errors.New("store is closed")

// Store is an open data directory. Its methods are safe for concurrent use.
type Store struct {
	dir     string
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	unclean bool

	lock     *dirLock
	counters *counters
	metrics  MetricsBackend
	logs     LogsBackend
	traces   TracesBackend
	taps     []Tap

	// mu is held for reading by writes in flight and for writing by Close.
	mu     sync.RWMutex
	closed bool

	rates *rateTracker
	du    diskUsageCache

	stop chan struct{}
	wg   sync.WaitGroup

	snapMu sync.Mutex
	snaps  []namedSnapshotter // owners of subdirectories, for Backup
}

// Open creates or opens the data directory dir.
func Open(dir string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Store{dir: dir, log: opts.Logger, now: opts.Now, taps: opts.Taps, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	maxServices := opts.MaxServices
	if maxServices <= 0 {
		maxServices = 10_000
	}
	s.started = s.now()

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data directory %q: %w", dir, err)
	}
	var err error
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	// From here on, undo what was opened if a later step fails.
	ok := false
	defer func() {
		if !ok {
			s.closeBackends()
			if s.counters != nil {
				s.counters.close()
				// The unclean shutdown found at open, if any, is already counted.
				os.Remove(filepath.Join(dir, uncleanFile))
			}
			s.lock.release()
		}
	}()
	if err := checkFormat(dir); err != nil {
		return nil, err
	}
	if n, err := sweepTemp(dir); err != nil {
		return nil, err
	} else if n > 0 {
		s.log.Info("removed leftovers of interrupted writes", "count", n)
	}
	for _, sub := range []string{metricsSubdir, logsSubdir, tracesSubdir, detectSubdir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create %q: %w", filepath.Join(dir, sub), err)
		}
	}
	if s.counters, err = openCounters(filepath.Join(dir, metaFile), maxServices); err != nil {
		return nil, err
	}
	if err := s.markRunning(); err != nil {
		return nil, err
	}

	t0 := time.Now()
	if opts.OpenMetrics != nil {
		if s.metrics, err = opts.OpenMetrics(filepath.Join(dir, metricsSubdir)); err != nil {
			return nil, fmt.Errorf("cannot open metrics store: %w", err)
		}
	}
	if opts.OpenLogs != nil {
		if s.logs, err = opts.OpenLogs(filepath.Join(dir, logsSubdir)); err != nil {
			return nil, fmt.Errorf("cannot open logs store: %w", err)
		}
	}
	if opts.OpenTraces != nil {
		if s.traces, err = opts.OpenTraces(filepath.Join(dir, tracesSubdir)); err != nil {
			return nil, fmt.Errorf("cannot open traces store: %w", err)
		}
	}
	s.log.Info("data directory open", "dir", dir, "format", FormatVersion, "backends_open_ms", time.Since(t0).Milliseconds())

	s.rates = newRateTracker(60)
	s.wg.Add(1)
	go s.sampleRates()
	ok = true
	return s, nil
}

// markRunning writes the unclean-shutdown marker, first noting whether the last run
// left one behind.
func (s *Store) markRunning() error {
	path := filepath.Join(s.dir, uncleanFile)
	if _, err := os.Stat(path); err == nil {
		s.unclean = true
		n, err := s.counters.addUnclean()
		if err != nil {
			return err
		}
		s.log.Warn("the last run did not shut down cleanly; stores recover what was acknowledged", "dir", s.dir, "unclean_shutdowns", n)
	}
	return atomicfile.WriteFile(path, []byte(s.started.UTC().Format(time.RFC3339Nano)+"\n"), 0o644)
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// UncleanShutdown reports whether Open found that the previous run did not close cleanly.
func (s *Store) UncleanShutdown() bool { return s.unclean }

// Started is when Open was called.
func (s *Store) Started() time.Time { return s.started }

// MetricsBackend, LogsBackend and TracesBackend give the read side (APIs, UI) the
// open backends; nil when not configured.
func (s *Store) MetricsBackend() MetricsBackend { return s.metrics }
func (s *Store) LogsBackend() LogsBackend       { return s.logs }
func (s *Store) TracesBackend() TracesBackend   { return s.traces }

// ConsumeMetrics stores a batch of metrics, counts it and shows it to the taps.
func (s *Store) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (Result, error) {
	per := make(map[string]uint64)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		n := 0
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				n += PointCount(ms.At(k))
			}
		}
		per[serviceName(rm.Resource())] += uint64(n)
	}
	return s.write(ctx, Metrics, per, func() (int64, string, error) {
		if s.metrics == nil {
			return 0, "", nil
		}
		return s.metrics.WriteMetrics(ctx, md)
	}, func(t Tap) { t.TapMetrics(md) })
}

// ConsumeMetricsWire stores a metrics request read on the wire (see
// otlpwire), counts it and shows it to the taps that read metrics. A backend
// that cannot read it on the wire (WireMetricsBackend), and such taps, get it
// decoded.
func (s *Store) ConsumeMetricsWire(ctx context.Context, m *otlpwire.Metrics) (Result, error) {
	per := make(map[string]uint64, len(m.PerService))
	for svc, n := range m.PerService {
		per[orUnknown(svc)] += n
	}
	var md pmetric.Metrics
	decoded := false
	decode := func() (pmetric.Metrics, error) {
		if !decoded {
			var err error
			if md, err = m.Decode(); err != nil {
				return md, err
			}
			decoded = true
		}
		return md, nil
	}
	return s.write(ctx, Metrics, per, func() (int64, string, error) {
		switch b := s.metrics.(type) {
		case nil:
			return 0, "", nil
		case WireMetricsBackend:
			return b.WriteMetricsWire(ctx, m)
		}
		md, err := decode()
		if err != nil {
			return 0, "", err
		}
		return s.metrics.WriteMetrics(ctx, md)
	}, func(t Tap) {
		if _, ok := t.(MetricsBlindTap); ok {
			return
		}
		if md, err := decode(); err == nil {
			t.TapMetrics(md)
		}
	})
}

// ConsumeLogs stores a batch of log records, counts it and shows it to the taps.
func (s *Store) ConsumeLogs(ctx context.Context, ld plog.Logs) (Result, error) {
	per := make(map[string]uint64)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		n := 0
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			n += sls.At(j).LogRecords().Len()
		}
		per[serviceName(rl.Resource())] += uint64(n)
	}
	return s.write(ctx, Logs, per, func() (int64, string, error) {
		if s.logs == nil {
			return 0, "", nil
		}
		return s.logs.WriteLogs(ctx, ld)
	}, func(t Tap) { t.TapLogs(ld) })
}

// ConsumeTraces stores a batch of spans, counts it and shows it to the taps.
func (s *Store) ConsumeTraces(ctx context.Context, td ptrace.Traces) (Result, error) {
	per := make(map[string]uint64)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		n := 0
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			n += sss.At(j).Spans().Len()
		}
		per[serviceName(rs.Resource())] += uint64(n)
	}
	return s.write(ctx, Traces, per, func() (int64, string, error) {
		if s.traces == nil {
			return 0, "", nil
		}
		return s.traces.WriteTraces(ctx, td)
	}, func(t Tap) { t.TapTraces(td) })
}

// write is the one write path: backend, counters, taps.
func (s *Store) write(ctx context.Context, sig Signal, per map[string]uint64, store func() (int64, string, error), tap func(Tap)) (Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Result{}, ErrClosed
	}
	var total int64
	for _, n := range per {
		total += int64(n)
	}
	if total == 0 {
		return Result{}, nil
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	rejected, reason, err := store()
	if err != nil {
		return Result{}, fmt.Errorf("cannot store %s: %w", sig, err)
	}
	rejected = min(max(rejected, 0), total)
	accepted := total - rejected
	if err := s.counters.add(sig, uint64(accepted), per, s.now()); err != nil {
		return Result{}, err
	}
	for _, t := range s.taps {
		tap(t)
	}
	return Result{Accepted: accepted, Rejected: rejected, Reason: reason}, nil
}

// Totals returns the items accepted since the data directory was created.
func (s *Store) Totals() Counts {
	t, _, _ := s.counters.snapshot()
	return t
}

// Services returns the services seen since the data directory was created, by name.
func (s *Store) Services() []Service {
	_, svcs, _ := s.counters.snapshot()
	return svcs
}

// UncleanShutdowns counts the unclean shutdowns found at open over the directory's life.
func (s *Store) UncleanShutdowns() uint64 {
	_, _, n := s.counters.snapshot()
	return n
}

// Close stops accepting writes, waits for writes in flight, then closes the
// backends in reverse order of opening, the counters and the lock, and finally
// removes the unclean-shutdown marker. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()

	err := s.closeBackends()
	if cerr := s.counters.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("cannot close counters: %w", cerr))
	}
	if err == nil {
		if rerr := os.Remove(filepath.Join(s.dir, uncleanFile)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		} else {
			err = atomicfile.SyncDir(s.dir)
		}
	}
	if lerr := s.lock.release(); lerr != nil {
		err = errors.Join(err, fmt.Errorf("cannot release lock: %w", lerr))
	}
	return err
}

// closeBackends closes the backends in reverse order of opening.
func (s *Store) closeBackends() error {
	var errs []error
	step := func(name string, c interface{ Close() error }) {
		t0 := time.Now()
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close %s store: %w", name, err))
		}
		s.log.Info("store closed", "store", name, "took_ms", time.Since(t0).Milliseconds())
	}
	if s.traces != nil {
		step("traces", s.traces)
		s.traces = nil
	}
	if s.logs != nil {
		step("logs", s.logs)
		s.logs = nil
	}
	if s.metrics != nil {
		step("metrics", s.metrics)
		s.metrics = nil
	}
	return errors.Join(errs...)
}

// serviceName is the resource's service.name, or UnknownService.
func serviceName(r pcommon.Resource) string {
	if v, ok := r.Attributes().Get("service.name"); ok {
		return orUnknown(v.Str())
	}
	return UnknownService
}

// orUnknown is a service name, UnknownService for none.
func orUnknown(name string) string {
	if name == "" {
		return UnknownService
	}
	return name
}

// PointCount counts the OTLP data points of one metric (a histogram point is one).
func PointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
