package tsdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"outpost/internal/otlpwire"
)

// BenchmarkAppend measures samples appended per second through the whole write
// path (WAL record, fsync shared by the batch, head), 1000 series × 10 samples per
// batch.
func BenchmarkAppend(b *testing.B) {
	db, _ := openTest(b, &Options{HeadMaxSamples: -1})
	const nSeries, perSeries = 1000, 10
	batch := make([]seriesSamples, nSeries)
	for i := range batch {
		batch[i] = seriesSamples{
			lset:    labels.FromStrings("__name__", "node_cpu_seconds_total", "instance", fmt.Sprintf("host-%d:9100", i/20), "cpu", strconv.Itoa(i%20), "mode", "user"),
			samples: make([]sample, perSeries),
		}
	}
	var t int64
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range batch {
			for k := range batch[i].samples {
				batch[i].samples[k] = sample{t: t + int64(k)*1000, v: float64(n*perSeries + k)}
			}
		}
		t += perSeries * 1000
		if _, _, err := db.appendBatch(batch); err != nil {
			b.Fatal(err)
		}
		if db.Stats().HeadSamples > 2_000_000 {
			b.StopTimer()
			db.Flush()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*nSeries*perSeries)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkNABBytesPerSample stores every NAB series (real and artificial
// time series, timestamp,value CSVs) and reports the partition bytes per sample.
func BenchmarkNABBytesPerSample(b *testing.B) {
	files, _ := filepath.Glob("../../shared/datasets/nab/data/*/*.csv")
	if len(files) == 0 {
		if os.Getenv("OUTPOST_E2E") == "1" {
			b.Fatal("NAB dataset missing under ../../shared/datasets/nab")
		}
		b.Skip("NAB dataset missing under ../../shared/datasets/nab; set it up to measure bytes/sample")
	}
	var batch []seriesSamples
	total := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		rows, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		var ss []sample
		for _, r := range rows[1:] {
			tm, err := time.Parse("2006-01-02 15:04:05", r[0])
			if err != nil {
				b.Fatal(err)
			}
			v, err := strconv.ParseFloat(r[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			if len(ss) > 0 && ss[len(ss)-1].t >= tm.UnixMilli() {
				continue
			}
			ss = append(ss, sample{t: tm.UnixMilli(), v: v})
		}
		total += len(ss)
		batch = append(batch, seriesSamples{lset: labels.FromStrings("__name__", "nab", "file", filepath.Base(f)), samples: ss})
	}
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		db, _ := openTest(b, &Options{OutOfOrderWindow: -1, HeadMaxSamples: -1})
		for i := range batch {
			batch[i].ref = 0 // refs of the previous DB
		}
		b.StartTimer()
		if _, _, err := db.appendBatch(batch); err != nil {
			b.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		// Daily partitions, as they are kept after merging.
		db.mu.RLock()
		groups := map[int64][]*partition{}
		for _, p := range db.parts {
			d := floorDiv(p.mint, day.Milliseconds())
			groups[d] = append(groups[d], p)
		}
		db.mu.RUnlock()
		for _, g := range groups {
			if len(g) > 1 {
				if err := db.mergeParts(g); err != nil {
					b.Fatal(err)
				}
			}
		}
		st := db.Stats()
		b.ReportMetric(float64(st.PartitionBytes)/float64(total), "bytes/sample")
		b.ReportMetric(float64(total), "samples")
		db.Close()
	}
}

// nodeT0 is the first scrape of the node workload (a UTC day boundary).
const nodeT0 = int64(1_700_006_400_000)

// nodeWriters sets b's parallelism so that the scrape benchmarks write with
// about five goroutines, which share WAL fsyncs as concurrent requests do, and
// returns how many RunParallel starts (a multiple of GOMAXPROCS: 6 on two
// cores). Each writes its own group of 10 hosts: two writing one group's
// series would send the same timestamps twice, and the second would be refused.
func nodeWriters(b *testing.B) int {
	procs := runtime.GOMAXPROCS(0)
	p := (5 + procs - 1) / procs
	b.SetParallelism(p)
	return p * procs
}

// BenchmarkAppendScrape measures samples appended per second the way scrapes
// arrive: each batch holds one sample of each series of 10 node hosts (3,030
// series); nodeWriters goroutines (one per host group) write their group's
// next step.
func BenchmarkAppendScrape(b *testing.B) {
	db, _ := openTest(b, &Options{HeadMaxSamples: -1, OutOfOrderWindow: -1})
	const perBatch = 10
	type group struct {
		batch  []seriesSamples
		values []func(int64) float64
		offs   []int64
	}
	writers := nodeWriters(b)
	groups := make([]group, writers)
	for g := range groups {
		gr := &groups[g]
		for h := g * perBatch; h < (g+1)*perBatch; h++ {
			host := newNodeHost(h)
			lsets, values := host.promSeries()
			for i := range lsets {
				gr.batch = append(gr.batch, seriesSamples{lset: lsets[i], samples: make([]sample, 1)})
				gr.values = append(gr.values, values[i])
				gr.offs = append(gr.offs, host.offsetMs)
			}
		}
	}
	var next atomic.Int32
	before, cpu0 := db.Stats().SamplesAppended, cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		gr := &groups[int(next.Add(1)-1)%writers]
		for step := int64(0); pb.Next(); step++ {
			for i := range gr.batch {
				gr.batch[i].samples[0] = sample{t: nodeT0 + step*nodeStepMs + gr.offs[i], v: gr.values[i](step)}
			}
			if _, _, err := db.appendBatch(gr.batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, db.Stats().SamplesAppended-before, cpu0)
}

// BenchmarkWriteMetrics measures the OTLP path: mapping OTLP batches of 10 node
// hosts × 1 scrape onto series and appending them, with nodeWriters goroutines
// as in BenchmarkAppendScrape.
// writerRequests returns the node hosts of writer g (perBatch of them) and one
// OTLP request of all of them for each of steps scrapes.
func writerRequests(g, perBatch, steps int) ([]*nodeHost, []pmetric.Metrics) {
	var nodes []*nodeHost
	for h := g * perBatch; h < (g+1)*perBatch; h++ {
		nodes = append(nodes, newNodeHost(h))
	}
	mds := make([]pmetric.Metrics, steps)
	for step := range mds {
		mds[step] = pmetric.NewMetrics()
		for _, h := range nodes {
			h.appendOTLP(mds[step], int64(step), nodeT0)
		}
	}
	return nodes, mds
}

func BenchmarkWriteMetrics(b *testing.B) {
	db, _ := openTest(b, &Options{HeadMaxSamples: -1, OutOfOrderWindow: -1})
	const perBatch, steps = 10, 2
	// Each writer cycles through its own prebuilt requests; a cycle later the
	// timestamps are rewritten forward.
	writers := nodeWriters(b)
	reqs := make([][]pmetric.Metrics, writers)
	for g := range reqs {
		_, reqs[g] = writerRequests(g, perBatch, steps)
	}
	ctx := context.Background()
	var next atomic.Int32
	before, cpu0 := db.Stats().SamplesAppended, cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := reqs[int(next.Add(1)-1)%writers]
		for n := 0; pb.Next(); n++ {
			md := mine[n%steps]
			if n >= steps && n%steps == 0 {
				for _, m := range mine {
					shiftOTLP(m, steps*nodeStepMs)
				}
			}
			if rej, reason, err := db.WriteMetrics(ctx, md); err != nil || rej != 0 {
				b.Errorf("rejected %d (%s): %v", rej, reason, err)
				return
			}
		}
	})
	reportRate(b, db.Stats().SamplesAppended-before, cpu0)
}

// BenchmarkWriteMetricsWire is BenchmarkWriteMetrics on the wire, as the
// receiver hands protobuf requests over: each request is checked with
// otlpwire.Scan and written with WriteMetricsWire.
func BenchmarkWriteMetricsWire(b *testing.B) {
	db, _ := openTest(b, &Options{HeadMaxSamples: -1, OutOfOrderWindow: -1})
	const perBatch, steps = 10, 2
	// Each writer cycles through its own prebuilt requests; a cycle later the
	// points' times are rewritten forward in place.
	type request struct {
		body  []byte
		times []int // offsets of the points' time_unix_nano values
	}
	writers := nodeWriters(b)
	reqs := make([][]request, writers)
	for g := range reqs {
		nodes, mds := writerRequests(g, perBatch, steps)
		for step, md := range mds {
			var r request
			body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
			if err != nil {
				b.Fatal(err)
			}
			r.body = body
			for _, h := range nodes {
				// time_unix_nano: field 3, fixed64.
				at := binary.LittleEndian.AppendUint64([]byte{3<<3 | 1}, uint64((nodeT0+int64(step)*nodeStepMs+h.offsetMs)*1e6))
				for i := 0; ; {
					j := bytes.Index(body[i:], at)
					if j < 0 {
						break
					}
					r.times = append(r.times, i+j+1)
					i += j + len(at)
				}
			}
			if len(r.times) != md.DataPointCount() {
				b.Fatalf("found %d point times in a request of %d points", len(r.times), md.DataPointCount())
			}
			reqs[g] = append(reqs[g], r)
		}
	}
	ctx := context.Background()
	var next atomic.Int32
	before, cpu0 := db.Stats().SamplesAppended, cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := reqs[int(next.Add(1)-1)%writers]
		for n := 0; pb.Next(); n++ {
			r := mine[n%steps]
			if n >= steps && n%steps == 0 {
				for _, r := range mine {
					for _, at := range r.times {
						t := binary.LittleEndian.Uint64(r.body[at:])
						binary.LittleEndian.PutUint64(r.body[at:], t+steps*nodeStepMs*1e6)
					}
				}
			}
			m, ok := otlpwire.Scan(r.body, 128)
			if !ok {
				b.Error("Scan refused a request")
				return
			}
			rej, reason, err := db.WriteMetricsWire(ctx, m)
			m.Release()
			if err != nil || rej != 0 {
				b.Errorf("rejected %d (%s): %v", rej, reason, err)
				return
			}
		}
	})
	reportRate(b, db.Stats().SamplesAppended-before, cpu0)
}

// shiftOTLP moves every point of md forward by ms milliseconds.
func shiftOTLP(md pmetric.Metrics, ms int64) {
	d := pcommon.Timestamp(ms * 1e6)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				dp := m.Gauge().DataPoints().At(0)
				dp.SetTimestamp(dp.Timestamp() + d)
			case pmetric.MetricTypeSum:
				dp := m.Sum().DataPoints().At(0)
				dp.SetTimestamp(dp.Timestamp() + d)
			case pmetric.MetricTypeHistogram:
				dp := m.Histogram().DataPoints().At(0)
				dp.SetTimestamp(dp.Timestamp() + d)
			}
		}
	}
}

// BenchmarkNodeBytesPerSample stores 6 hours of 50 node hosts (about 4.4 million
// samples) and reports the bytes per sample of the partitions, and of the head
// just before the flush.
func BenchmarkNodeBytesPerSample(b *testing.B) {
	const hosts, steps = 50, 6 * 240
	var lsets []labels.Labels
	var values []func(int64) float64
	var offs []int64
	for h := 0; h < hosts; h++ {
		host := newNodeHost(h)
		ls, vs := host.promSeries()
		lsets = append(lsets, ls...)
		values = append(values, vs...)
		for range ls {
			offs = append(offs, host.offsetMs)
		}
	}
	batch := make([]seriesSamples, len(lsets))
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		db, _ := openTest(b, &Options{OutOfOrderWindow: -1, HeadMaxSamples: -1, Now: func() time.Time { return time.UnixMilli(nodeT0).Add(48 * time.Hour) }})
		b.StartTimer()
		total := 0
		for i := range batch {
			ss := make([]sample, steps)
			for k := range ss {
				ss[k] = sample{t: nodeT0 + int64(k)*nodeStepMs + offs[i], v: values[i](int64(k))}
			}
			batch[i] = seriesSamples{lset: lsets[i], samples: ss}
			total += steps
		}
		if _, _, err := db.appendBatch(batch); err != nil {
			b.Fatal(err)
		}
		for i := range batch {
			batch[i].samples = nil
		}
		b.ReportMetric(float64(db.headBytes())/float64(total), "head-bytes/sample")
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		st := db.Stats()
		b.ReportMetric(float64(st.PartitionBytes)/float64(total), "bytes/sample")
		db.Close()
	}
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports n samples as samples per second of wall time and as CPU
// nanoseconds per sample (all goroutines, the WAL's fsyncs excluded as waits).
func reportRate(b *testing.B, n int64, cpu0 time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/sample")
	}
}

// BenchmarkSelect reads one metric of 50 node hosts (node_cpu_seconds_total,
// 1,600 series) over one hour, as a range query's Select does: from a flushed
// two-hour partition, from a six-hour one (as after merges into days), and from
// the head. The hour ends 30 minutes before the newest sample.
func BenchmarkSelect(b *testing.B) {
	const hosts = 50
	for _, c := range []struct {
		name  string
		steps int
		flush bool
	}{{"partition", 480, true}, {"partition-6h", 1440, true}, {"head", 480, false}} {
		b.Run(c.name, func(b *testing.B) {
			db, _ := openTest(b, &Options{OutOfOrderWindow: -1, HeadMaxSamples: -1})
			var batch []seriesSamples
			for h := 0; h < hosts; h++ {
				host := newNodeHost(h)
				lsets, values := host.promSeries()
				for i := range lsets {
					ss := make([]sample, c.steps)
					for k := range ss {
						ss[k] = sample{t: nodeT0 + int64(k)*nodeStepMs + host.offsetMs, v: values[i](int64(k))}
					}
					batch = append(batch, seriesSamples{lset: lsets[i], samples: ss})
				}
			}
			if _, _, err := db.appendBatch(batch); err != nil {
				b.Fatal(err)
			}
			if c.flush {
				if err := db.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_cpu_seconds_total")
			mint := nodeT0 + int64(c.steps)*nodeStepMs - 90*60*1000
			runtime.GC()
			cpu0 := cpuTime()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				out, err := db.selectSeries(b.Context(), mint, mint+3600*1000, []*labels.Matcher{m})
				if err != nil || len(out) != hosts*32 {
					b.Fatalf("%d series, err %v", len(out), err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// BenchmarkFlush writes a head of 100,000 series of 24 samples each (two hours
// at five minutes: the shape of the anomaly detector's scores and bands) into
// a partition; only the flush is timed.
func BenchmarkFlush(b *testing.B) {
	const nSeries, perSeries = 100_000, 24
	batch := make([]seriesSamples, nSeries)
	for i := range batch {
		batch[i] = seriesSamples{
			lset: labels.FromStrings("__name__", "outpost_expected_upper", "anomaly_metric", "node_cpu_seconds_total",
				"instance", fmt.Sprintf("host-%03d:9100", i/300), "job", "node", "cpu", strconv.Itoa(i/10%30), "mode", strconv.Itoa(i%10)),
			samples: make([]sample, perSeries),
		}
	}
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		db, _ := openTest(b, &Options{HeadMaxSamples: -1, OutOfOrderWindow: -1, Now: func() time.Time { return time.UnixMilli(nodeT0).Add(3 * time.Hour) }})
		for i := range batch {
			batch[i].ref = 0 // a ref of the previous round's DB
			for k := range batch[i].samples {
				batch[i].samples[k] = sample{t: nodeT0 + int64(k)*300_000, v: float64(i%1000) + float64(k)/100}
			}
		}
		if _, _, err := db.appendBatch(batch); err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		b.StartTimer()
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-cpu0)/nSeries, "cpu-ns/series")
		db.Close()
		b.StartTimer()
	}
}

// BenchmarkSeriesChunk encodes two hours (480 samples) of each of one node
// host's series into series chunks, as a flush does.
func BenchmarkSeriesChunk(b *testing.B) {
	host := newNodeHost(3)
	_, values := host.promSeries()
	series := make([][]sample, len(values))
	for i := range series {
		for step := range int64(480) {
			series[i] = append(series[i], sample{t: nodeT0 + step*nodeStepMs + host.offsetMs, v: values[i](step)})
		}
	}
	var e blockEncoder
	var buf []byte
	b.ResetTimer()
	for range b.N {
		for _, ss := range series {
			buf = e.appendSeriesChunk(buf[:0], ss)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(series)*480), "ns/sample")
}
