package logindex

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// BenchmarkWriteLogs measures records/s into the Index alone (acknowledged and
// indexed) with 1,000-record batches of Loghub lines, and the bytes on disk per
// record against the raw text.
func BenchmarkWriteLogs(b *testing.B) {
	systems := loadLoghub(b)
	var lines []string
	var services []string
	var rawBytes int64
	for _, s := range systems {
		for _, l := range s.lines {
			lines = append(lines, l)
			services = append(services, s.name)
			rawBytes += int64(len(l)) + 1
		}
	}
	const batch = 1000
	base := time.Now().Add(-time.Hour)
	batches := make([]plog.Logs, 0, 64)
	for k := 0; k < 64; k++ {
		recs := make([]genRecord, batch)
		for i := range recs {
			j := (k*batch + i) % len(lines)
			recs[i] = genRecord{t: base.Add(time.Duration(k*batch+i) * time.Millisecond), service: services[j], sev: plog.SeverityNumberInfo, body: lines[j]}
		}
		batches = append(batches, makeLogs(recs))
	}
	avgLine := float64(rawBytes) / float64(len(lines))
	dir := b.TempDir()
	ix, err := Open(dir, benchOpts())
	if err != nil {
		b.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			ix.Close()
		}
	}()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		for {
			_, _, err := ix.WriteLogs(ctx, batches[i%len(batches)])
			if err == nil {
				break
			}
			if _, ok := err.(*BackpressureError); !ok {
				b.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := ix.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(n/el.Seconds(), "records/s")
	// CPU time per record is steadier than the rate on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/record")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
	}
	st, err := ix.Stats()
	if err != nil {
		b.Fatal(err)
	}
	// Sizes once Bleve has persisted everything (Close waits for it).
	closed = true
	if err := ix.Close(); err != nil {
		b.Fatal(err)
	}
	disk := dirSize(b, dir)
	b.ReportMetric(float64(disk)/n, "disk-B/record")
	b.ReportMetric(float64(st.RecordLogBytes)/n, "log-B/record")
	b.ReportMetric(float64(disk)/(n*avgLine), "disk/raw")
}

func benchOpts() *Options {
	o := &Options{}
	if v := os.Getenv("LOGINDEX_BENCH_SHARDS"); v != "" {
		o.Shards, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("LOGINDEX_BENCH_BATCH"); v != "" {
		o.BatchRecords, _ = strconv.Atoi(v)
	}
	return o
}

// cpuTime is the user+system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
