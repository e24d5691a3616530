package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEval200Rules10kSeries evaluates one group of 200 rules (100 alerting,
// 100 recording, each selecting 500 of the 10,000 series) once per op, the work
// of one group interval, and reports the CPU time it takes.
func BenchmarkEval200Rules10kSeries(b *testing.B) {
	db := openDB(b, b.TempDir())
	defer db.Close()
	const series, jobs, points = 10_000, 20, 21 // 5 minutes at 15 s
	end := time.Now().Truncate(15 * time.Second)
	start := end.Add(-(points - 1) * 15 * time.Second)
	app := db.Appender(context.Background())
	for i := range series {
		ls := labels.FromStrings("__name__", "bench_requests", "job", fmt.Sprintf("j%d", i%jobs), "instance", fmt.Sprintf("i%d", i))
		for p := range points {
			v := float64((i*7+p*13)%1000) / 1000
			if _, err := app.Append(0, ls, start.Add(time.Duration(p)*15*time.Second).UnixMilli(), v); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("groups:\n- name: bench\n  rules:\n")
	for k := range 200 {
		if k%2 == 0 {
			fmt.Fprintf(&sb, "  - alert: Hot%d\n    expr: bench_requests{job=\"j%d\"} > 0.99\n    for: 1m\n    annotations:\n      summary: \"{{ $labels.instance }} at {{ $value }}\"\n", k, k%jobs)
		} else {
			fmt.Fprintf(&sb, "  - record: job:bench_requests:sum%d\n    expr: sum by (job) (bench_requests{job=\"j%d\"})\n", k, k%jobs)
		}
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yml"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	m := newManager(b, db, dir)
	defer m.Close()
	if n := len(m.Groups()[0].Rules()); n != 200 {
		b.Fatalf("%d rules", n)
	}
	ctx := context.Background()
	m.EvalAt(ctx, end) // warm up, and past the restore, so ALERTS are written
	m.EvalAt(ctx, end)
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		m.EvalAt(ctx, end)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/eval")
	for _, r := range m.AlertingRules() {
		if r.Health() != "ok" {
			b.Fatalf("%s: %v", r.Name(), r.LastError())
		}
	}
}
