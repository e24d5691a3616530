package traceindex

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchNow is the clock of the benchmarks; the workload starts an hour earlier.
var benchNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

type benchData struct {
	reqs     []ptrace.Traces
	ids      []pcommon.TraceID
	spans    int
	rawBytes int
}

var (
	benchOnce sync.Once
	bench200k benchData
)

// benchWorkload is 200,000 spans of whole ~15-span traces in 500-span requests,
// spread over an hour.
func benchWorkload() *benchData {
	benchOnce.Do(func() {
		w := newWorkload(1)
		start := benchNow.Add(-time.Hour).UnixNano()
		var m ptrace.ProtoMarshaler
		for bench200k.spans < 200_000 {
			td, ids := w.request(500, start+int64(bench200k.spans)*int64(18*time.Millisecond))
			bench200k.reqs = append(bench200k.reqs, td)
			bench200k.ids = append(bench200k.ids, ids...)
			bench200k.spans += td.SpanCount()
			bench200k.rawBytes += m.TracesSize(td)
		}
	})
	return &bench200k
}

func benchOpen(b *testing.B, noSync bool) *Index {
	ix, err := Open(b.TempDir(), &Options{Now: func() time.Time { return benchNow }, NoSync: noSync, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return ix
}

func ingest(b *testing.B, ix *Index, d *benchData) {
	ctx := context.Background()
	for _, td := range d.reqs {
		if rej, reason, err := ix.WriteTraces(ctx, td); err != nil || rej != 0 {
			b.Fatalf("rejected %d (%s), err %v", rej, reason, err)
		}
	}
}

func storedBytes(b *testing.B, ix *Index) (used, file int64) {
	parts, err := ix.Partitions()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range parts {
		used += p.Bytes
		file += p.FileBytes
	}
	return used, file
}

// BenchmarkIngest200k writes the 200k-span workload into a fresh index with
// fsync on, one request after another, and reports the rate and the size.
func BenchmarkIngest200k(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "fsync"
		if !sync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) { benchIngest(b, !sync) })
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchIngest(b *testing.B, noSync bool) {
	d := benchWorkload()
	cpu0 := cpuTime()
	defer func() {
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(d.spans*b.N), "cpu-µs/span")
	}()
	for b.Loop() {
		b.StopTimer()
		ix := benchOpen(b, noSync)
		b.StartTimer()
		ingest(b, ix, d)
		b.StopTimer()
		used, file := storedBytes(b, ix)
		b.ReportMetric(float64(used)/float64(d.spans), "stored-B/span")
		b.ReportMetric(float64(file)/float64(d.spans), "file-B/span")
		ix.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(d.spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(d.rawBytes)/float64(d.spans), "otlp-B/span")
}

// BenchmarkIngestParallel is the same with four writers at once.
func BenchmarkIngestParallel(b *testing.B) {
	d := benchWorkload()
	for b.Loop() {
		b.StopTimer()
		ix := benchOpen(b, false)
		b.StartTimer()
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Go(func() {
				for i := w; i < len(d.reqs); i += 4 {
					if _, _, err := ix.WriteTraces(context.Background(), d.reqs[i]); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		ix.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(d.spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}

var (
	readOnce sync.Once
	readIx   *Index
	readDir  string
	readIDs  []pcommon.TraceID
)

// readIndex stores, once per process, TRACEINDEX_BENCH_SPANS spans (default
// 200,000) of the workload spread over the 24 hours before benchNow, for the
// read benchmarks. It stays open until the process ends.
func readIndex(b *testing.B) (*Index, []pcommon.TraceID) {
	readOnce.Do(func() {
		total := 200_000
		if v, err := strconv.Atoi(os.Getenv("TRACEINDEX_BENCH_SPANS")); err == nil && v > 0 {
			total = v
		}
		dir, err := os.MkdirTemp("", "traceindex-bench-")
		if err != nil {
			b.Fatal(err)
		}
		readDir = dir
		ix, err := Open(dir, &Options{Now: func() time.Time { return benchNow }, NoSync: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		w := newWorkload(2)
		start := benchNow.Add(-24 * time.Hour).UnixNano()
		step := int64(24*time.Hour) / int64(total)
		ctx := context.Background()
		for n := 0; n < total; {
			td, ids := w.request(500, start+int64(n)*step)
			if _, _, err := ix.WriteTraces(ctx, td); err != nil {
				b.Fatal(err)
			}
			n += td.SpanCount()
			readIDs = append(readIDs, ids[0])
		}
		readIx = ix
		used, _ := storedBytes(b, ix)
		b.Logf("read benchmarks: %d spans stored in %s, %.1f B/span", total, dir, float64(used)/float64(total))
	})
	return readIx, readIDs
}

func BenchmarkTraceByID(b *testing.B) {
	ix, ids := readIndex(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	var lat []time.Duration
	for b.Loop() {
		t := time.Now()
		td, err := ix.Trace(ctx, ids[r.IntN(len(ids))])
		if err != nil || td.SpanCount() == 0 {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	reportQuantiles(b, lat)
}

func BenchmarkSearch(b *testing.B) {
	ix, _ := readIndex(b)
	ctx := context.Background()
	qs := []Query{
		{Service: "checkout", Operation: "POST /checkout", MinDuration: 5 * time.Millisecond, Start: benchNow.Add(-24 * time.Hour), End: benchNow, Limit: 20},
		{Service: "frontend", Operation: "GET /", MinDuration: 10 * time.Millisecond, Start: benchNow.Add(-24 * time.Hour), End: benchNow, Limit: 20},
		{Service: "api-gateway", Tags: map[string]string{"http.response.status_code": "500"}, Limit: 20},
		{Service: "payment", ErrorsOnly: true, Limit: 20},
	}
	for i, q := range qs {
		b.Run(fmt.Sprint(i), func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t := time.Now()
				res, err := ix.Search(ctx, q)
				if err != nil || len(res) == 0 {
					b.Fatalf("query %+v: %d results, err %v", q, len(res), err)
				}
				lat = append(lat, time.Since(t))
			}
			reportQuantiles(b, lat)
		})
	}
}

func reportQuantiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestStoredSize stores 50,000 spans of the workload and checks the bytes per
// span against the target (120), logging where they go per bucket (-v).
func TestStoredSize(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	d := benchWorkload()
	ix := openTest(t, &Options{Now: func() time.Time { return benchNow }, NoSync: true})
	ctx := context.Background()
	spans := 0
	for _, td := range d.reqs[:100] {
		if _, _, err := ix.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		spans += td.SpanCount()
	}
	ix.mu.RLock()
	for _, p := range ix.parts {
		p.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
				s := bk.Stats()
				t.Logf("%-8s keys %7d  in use %6.1f B/span  allocated %6.1f B/span", name, s.KeyN,
					float64(s.LeafInuse+s.BranchInuse)/float64(spans), float64(s.LeafAlloc+s.BranchAlloc)/float64(spans))
				return nil
			})
		})
	}
	ix.mu.RUnlock()
	parts, err := ix.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	for _, p := range parts {
		used += p.Bytes
	}
	perSpan := float64(used) / float64(spans)
	t.Logf("%.1f B/span stored; OTLP protobuf is %.1f B/span", perSpan, float64(d.rawBytes)/float64(d.spans))
	if perSpan > 120 {
		t.Errorf("%.1f bytes per stored span, target is at most 120", perSpan)
	}
}
