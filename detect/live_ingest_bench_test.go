package detect

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"outpost/ingest"
	"outpost/store"
	"outpost/tsdb"
)

// BenchmarkOTLPIngestWithDetection measures the CPU of OTLP metrics ingest
// through the server's own path (the OTLP/HTTP receiver's handler, protobuf
// decoding, limits, the store's counters, tsdb.WriteMetrics) of 100,000 gauge
// series, one point each per operation, sent as 10 requests of 10,000 points
// (100 hosts of 1,000 file systems, as an OpenTelemetry Collector batches them),
// without the live detector and with it watching every series at its defaults
// (one-minute resolution, score and band written at least every WriteInterval).
// Each operation waits for the detector (Sync), so its scoring and writes
// count; cpu-ns/point is the process' user+system CPU per point, so compare
// the variants with each other. Building the requests is not measured.
//
// The head is flushed as the server's maintenance does it, when it holds 8
// million samples (tsdb.Options.HeadMaxSamples' default) besides the
// detector's writes (tsdb.DB.AppendDerived), or twice that in all; the flush's
// CPU, per head sample flushed, times the head samples each point brings (its
// own and the detector's writes), is flush-cpu-ns/point (reported when a flush
// fell in the measured operations: use -benchtime 80x or more).
//
// The first 60 operations (the detector's warm-up) are not measured; use a
// -benchtime that is a multiple of 20 so that every run covers the same phases
// of the detector's writes.
func BenchmarkOTLPIngestWithDetection(b *testing.B) {
	const nSeries, warmUp = 100_000, 60
	for _, c := range []struct {
		name   string
		engine bool
		scrape time.Duration // the interval between measured points
	}{
		{"none", false, time.Minute},
		{"detect", true, time.Minute},
		{"none/scrape=15s", false, 15 * time.Second},
		{"detect/scrape=15s", true, 15 * time.Second},
	} {
		// The fixture outlives one run of the sub-benchmark: the testing
		// package runs it with b.N = 1 before the real run, and the warm-up
		// need not be paid twice.
		var fx *ingestFixture
		dir := b.TempDir()
		b.Run(c.name, func(b *testing.B) {
			if fx == nil {
				var err error
				if fx, err = newIngestFixture(dir, c.engine, nSeries); err != nil {
					b.Fatal(err)
				}
				for range warmUp {
					fx.step(b, time.Minute, false)
				}
			}
			fx.cpu, fx.flushCPU, fx.flushed, fx.added = 0, 0, 0, 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				fx.step(b, c.scrape, true)
			}
			b.StopTimer()
			b.ReportMetric(float64(fx.cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(fx.cpu.Nanoseconds())/float64(b.N)/nSeries, "cpu-ns/point")
			if fx.flushed > 0 {
				perSample := float64(fx.flushCPU.Nanoseconds()) / float64(fx.flushed)
				b.ReportMetric(perSample*float64(fx.added)/float64(b.N)/nSeries, "flush-cpu-ns/point")
			}
			if fx.live != nil {
				st := fx.live.Stats()
				if st.Dropped > 0 || st.Tracked != nSeries || st.WriteErrors > 0 {
					b.Fatalf("detector: %+v", st)
				}
				b.ReportMetric(float64(st.Written)/float64(st.Processed), "written/point")
			}
		})
		if fx != nil {
			fx.close(b)
		}
	}
}

// ingestFixture is a store with a TSDB, the OTLP receiver in front of it and,
// optionally, a Live engine watching it, plus the requests of one operation.
type ingestFixture struct {
	st      *store.Store
	db      *tsdb.DB
	live    *Live
	handler http.Handler
	reqs    []pmetric.Metrics // one per request, its points in order
	bodies  [][]byte
	rng     *rand.Rand
	at      time.Time

	// Measured so far: CPU of the operations and of the flushes, head samples
	// flushed, head samples added.
	cpu, flushCPU  time.Duration
	flushed, added int
}

// headFlushSamples is tsdb.Options.HeadMaxSamples' default: the head size at
// which the server's maintenance flushes it.
const headFlushSamples = 8 << 20

func newIngestFixture(dir string, engine bool, nSeries int) (*ingestFixture, error) {
	const perHost, perReq = 1000, 10 // series per host, hosts per request
	quiet := slog.New(slog.DiscardHandler)
	fx := &ingestFixture{rng: rand.New(rand.NewPCG(1, 2)), at: liveStart}
	var err error
	fx.st, err = store.Open(dir, &store.Options{
		Logger: quiet,
		OpenMetrics: func(dir string) (store.MetricsBackend, error) {
			return tsdb.Open(dir, &tsdb.Options{Logger: quiet, MaintenanceInterval: -1, Retention: -1, HeadMaxSamples: -1, HeadMaxAge: -1})
		},
	})
	if err != nil {
		return nil, err
	}
	fx.db = fx.st.MetricsBackend().(*tsdb.DB)
	if engine {
		db := fx.db
		fx.live, err = NewLive(LiveOptions{
			Storage: db, MaxSeries: nSeries, QueueSamples: 4 * nSeries, Logger: quiet,
			MetricTypes: func() map[string]string { // as the server does
				m := map[string]string{}
				for name, md := range db.Metadata() {
					m[name] = md.Type
				}
				return m
			},
		})
		if err != nil {
			fx.st.Close()
			return nil, err
		}
		db.SetObserver(fx.live.Observe)
	}
	fx.handler = ingest.NewReceiver(fx.st, &ingest.Options{Logger: quiet}).Handler()
	for h0 := 0; h0 < nSeries/perHost; h0 += perReq {
		md := pmetric.NewMetrics()
		for h := h0; h < h0+perReq; h++ {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "node")
			rm.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", h))
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("node.filesystem.usage")
			m.SetUnit("By")
			dps := m.SetEmptyGauge().DataPoints()
			for i := range perHost {
				dps.AppendEmpty().Attributes().PutStr("mountpoint", fmt.Sprintf("/mnt/%d", i))
			}
		}
		fx.reqs = append(fx.reqs, md)
	}
	fx.bodies = make([][]byte, len(fx.reqs))
	return fx, nil
}

// step sends one point of every series, dt after the previous one, and waits
// for the detector; measure adds the CPU taken to fx.cpu.
func (fx *ingestFixture) step(b *testing.B, dt time.Duration, measure bool) {
	b.StopTimer()
	fx.at = fx.at.Add(dt)
	ts := pcommon.NewTimestampFromTime(fx.at)
	series := 0
	for r, md := range fx.reqs {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			dps := rms.At(i).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
			for j := range dps.Len() {
				dp := dps.At(j)
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(1e9 + float64(series) + fx.rng.NormFloat64()*1e6)
				series++
			}
		}
		body, err := (pmetricotlp.NewExportRequestFromMetrics(md)).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		fx.bodies[r] = body
	}
	h0 := fx.db.Stats().HeadSamples
	b.StartTimer()
	c0 := cpuTime()
	for _, body := range fx.bodies {
		req := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		fx.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if fx.live != nil {
		if err := fx.live.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	defer b.StartTimer()
	st := fx.db.Stats()
	h1 := st.HeadSamples
	if measure {
		fx.cpu += cpuTime() - c0
		fx.added += h1 - h0
	}
	if h1-st.HeadDerivedSamples >= headFlushSamples || h1 >= 2*headFlushSamples { // as tsdb's headFull
		c0 := cpuTime()
		if err := fx.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if measure {
			fx.flushCPU += cpuTime() - c0
			fx.flushed += h1
		}
	}
}

func (fx *ingestFixture) close(b *testing.B) {
	if fx.live != nil {
		if err := fx.live.Close(); err != nil {
			b.Error(err)
		}
	}
	if err := fx.st.Close(); err != nil {
		b.Error(err)
	}
}
