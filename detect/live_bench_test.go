package detect

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"outpost/tsdb"
)

// BenchmarkIngestWithDetection measures the CPU of OTLP metrics ingest
// (tsdb.WriteMetrics) of 100,000 gauge series, one point each per operation at a
// 60 s interval, without the live detector and with it tracking every series
// (its scoring and its writes back included: each operation waits for the
// detector with Sync), writing each series' score and band once a minute, once
// every five minutes, or (nearly) never. The scrape=15s variants measure points
// 15 s apart (after the same warm-up at 60 s), which the detector scores once a
// minute (LiveOptions.Resolution). cpu-ns/op is user+system CPU of the whole
// process, so it counts the detector's goroutine too; compare it between the
// sub-benchmarks. The first 60 operations of each run (detector warm-up, 50
// samples) are not measured.
func BenchmarkIngestWithDetection(b *testing.B) {
	const nSeries = 100_000
	for _, c := range []struct {
		name   string
		engine bool
		write  time.Duration
		scrape time.Duration // the interval between measured points
	}{
		{"none", false, 0, time.Minute},
		{"detect/write=1m", true, time.Minute, time.Minute},
		{"detect/write=5m", true, 5 * time.Minute, time.Minute},                  // the default
		{"detect/write=anomalies-only", true, 365 * 24 * time.Hour, time.Minute}, // the scoring alone, nearly
		{"none/scrape=15s", false, 0, 15 * time.Second},
		{"detect/write=5m/scrape=15s", true, 5 * time.Minute, 15 * time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			db, err := tsdb.Open(b.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: -1, HeadMaxSamples: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var live *Live
			if c.engine {
				live, err = NewLive(LiveOptions{Storage: db, MaxSeries: nSeries, WriteInterval: c.write, QueueSamples: 4 * nSeries})
				if err != nil {
					b.Fatal(err)
				}
				defer live.Close()
				db.SetObserver(live.Observe)
			}
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "bench")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("node.filesystem.usage")
			m.SetUnit("By")
			dps := m.SetEmptyGauge().DataPoints()
			for i := 0; i < nSeries; i++ {
				dp := dps.AppendEmpty()
				dp.Attributes().PutStr("host", fmt.Sprintf("host-%d", i/100))
				dp.Attributes().PutStr("mountpoint", fmt.Sprintf("/mnt/%d", i%100))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			step := 0
			at := start
			var cpu time.Duration
			write := func(measure bool) {
				ts := pcommon.NewTimestampFromTime(at)
				if measure {
					at = at.Add(c.scrape)
				} else {
					at = at.Add(time.Minute)
				}
				for i := 0; i < nSeries; i++ {
					dp := dps.At(i)
					dp.SetTimestamp(ts)
					dp.SetDoubleValue(1e9 + float64(i) + rng.NormFloat64()*1e6)
				}
				step++
				c0 := cpuTime()
				if _, _, err := db.WriteMetrics(context.Background(), md); err != nil {
					b.Fatal(err)
				}
				if live != nil {
					if err := live.Sync(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				if measure {
					cpu += cpuTime() - c0
				}
				if step%10 == 0 { // keep the head small; not measured
					if err := db.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			for step < 60 {
				write(false)
			}
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				write(true)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/nSeries, "cpu-ns/point")
			if live != nil {
				st := live.Stats()
				if st.Dropped > 0 || st.Tracked != nSeries {
					b.Fatalf("detector dropped %d samples, tracks %d series", st.Dropped, st.Tracked)
				}
				b.ReportMetric(float64(st.Written)/float64(st.Processed), "written/point")
			}
		})
	}
}

// cpuTime is the process' user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLiveEngine measures the live engine alone on 100,000 gauge series
// sampled once a minute (or every 15 s, scored once a minute at the default
// Resolution): each operation hands it one sample of every series, in
// batches of 10,000 as the TSDB's observer would (the batches are built outside
// the measurement), and waits for it (Sync). Its writes go to a real TSDB whose
// observer is the engine (through AppendDerived, which the observer does not
// see). cpu-ns/point
// is the process' user+system CPU per sample: the detector, the plumbing
// around it and the write-back. The first hour of samples (the detector's
// warm-up: 60 operations, or 240 at 15 s) is not measured; use a -benchtime
// that is a multiple of 20 (of 80 at 15 s).
func BenchmarkLiveEngine(b *testing.B) {
	const nSeries, perBatch = 100_000, 10_000
	for _, c := range []struct {
		name   string
		write  time.Duration
		scrape time.Duration // between a series' samples
	}{
		{"write=default", 0, time.Minute},
		{"write=anomalies-only", 365 * 24 * time.Hour, time.Minute},
		{"write=default/scrape=15s", 0, 15 * time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			db, err := tsdb.Open(b.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: -1, HeadMaxSamples: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			live, err := NewLive(LiveOptions{Storage: db, MaxSeries: nSeries, WriteInterval: c.write, QueueSamples: 4 * nSeries})
			if err != nil {
				b.Fatal(err)
			}
			defer live.Close()
			db.SetObserver(live.Observe)
			series := make([]labels.Labels, nSeries)
			for i := range series {
				series[i] = labels.FromStrings(labels.MetricName, "node_filesystem_usage_bytes", "instance", fmt.Sprintf("host-%d", i/1000), "job", "node", "mountpoint", fmt.Sprintf("/mnt/%d", i%1000))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			at := liveStart
			batches := make([][]tsdb.ObservedSample, nSeries/perBatch)
			var cpu time.Duration
			step := func(measure bool) {
				at = at.Add(c.scrape)
				for i := range batches {
					batches[i] = make([]tsdb.ObservedSample, perBatch)
					for j := range batches[i] {
						s := i*perBatch + j
						// Refs far above the TSDB's own, which name the engine's output.
						batches[i][j] = tsdb.ObservedSample{Labels: series[s], Ref: 1<<40 + uint64(s), T: at.UnixMilli(), V: 1e9 + float64(s) + rng.NormFloat64()*1e6}
					}
				}
				c0 := cpuTime()
				for _, batch := range batches {
					live.Observe(batch)
				}
				if err := live.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				if measure {
					cpu += cpuTime() - c0
				}
			}
			for range int(time.Hour / c.scrape) {
				step(false)
			}
			if err := db.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				step(true)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/nSeries, "cpu-ns/point")
			st := live.Stats()
			if st.Dropped > 0 || st.Tracked != nSeries {
				b.Fatalf("detector dropped %d samples, tracks %d series", st.Dropped, st.Tracked)
			}
			b.ReportMetric(float64(st.Written)/float64(st.Processed), "written/point")
		})
	}
}
