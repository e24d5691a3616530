package detect

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

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
