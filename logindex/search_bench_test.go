package logindex

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// BenchmarkSearch measures query latency over Loghub lines replayed across 7
// daily partitions, reporting p50 and p99 per query kind. It builds
// LOGINDEX_BENCH_RECORDS records (default 5,000,000; replays past the first change
// the numbers in each line) in LOGINDEX_BENCH_DIR, or in a temporary directory
// when that is unset; a directory already built for the same count is reused, so
// -count and repeated runs measure without rebuilding. A server's data directory
// (its logs/ fed by loadgen, say) is measured in place when it holds a file
// bench-<records> with the RFC 3339 time the queries end at (the last record's),
// and no newline. It does not run under -short.
func BenchmarkSearch(b *testing.B) {
	if testing.Short() {
		b.Skip("builds millions of records")
	}
	systems := loadLoghub(b)
	total := 5_000_000
	if v := os.Getenv("LOGINDEX_BENCH_RECORDS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	var lines []loghubLine
	for _, s := range systems {
		for _, l := range s.lines {
			lines = append(lines, loghubLine{s.name, l, loghubLevel(l)})
		}
	}
	dir := os.Getenv("LOGINDEX_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	now := time.Now().UTC()
	marker := filepath.Join(dir, "bench-"+strconv.Itoa(total))
	if v, err := os.ReadFile(marker); err == nil {
		if now, err = time.Parse(time.RFC3339Nano, string(v)); err != nil {
			b.Fatalf("cannot read %s: %v", marker, err)
		}
	} else {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		buildSearchBench(b, dir, lines, total, now)
		if err := os.WriteFile(marker, []byte(now.Format(time.RFC3339Nano)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ix, err := Open(filepath.Join(dir, "logs"), &Options{Retention: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	day := now.Add(-24 * time.Hour)
	cases := []struct {
		name string
		run  func() error
	}{
		{"term", func() error { _, err := ix.Search(ctx, SearchRequest{Query: "failed", Limit: 100}); return err }},
		{"term-7d", func() error {
			_, err := ix.Search(ctx, SearchRequest{Query: "failed", Start: now.Add(-8 * 24 * time.Hour), End: now, Limit: 100})
			return err
		}},
		{"phrase", func() error {
			_, err := ix.Search(ctx, SearchRequest{Query: `"connection closed"`, Start: now.Add(-8 * 24 * time.Hour), End: now, Limit: 100})
			return err
		}},
		{"ip-7d", func() error {
			_, err := ix.Search(ctx, SearchRequest{Query: "173.234.31.186", Start: now.Add(-8 * 24 * time.Hour), End: now, Limit: 100})
			return err
		}},
		{"number-7d", func() error {
			_, err := ix.Search(ctx, SearchRequest{Query: "67108864", Start: now.Add(-8 * 24 * time.Hour), End: now, Limit: 100})
			return err
		}},
		{"service+severity+range", func() error {
			_, err := ix.Search(ctx, SearchRequest{Query: "service:hadoop severity>=WARN", Start: day, End: now, Limit: 100})
			return err
		}},
		{"newest100-24h", func() error { _, err := ix.Search(ctx, SearchRequest{Start: day, End: now, Limit: 100}); return err }},
		{"histogram-24h", func() error {
			_, err := ix.Histogram(ctx, HistogramRequest{Start: day, End: now})
			return err
		}},
		{"facets-24h", func() error { _, err := ix.Facets(ctx, FacetsRequest{Start: day, End: now}); return err }},
		{"histogram-term-24h", func() error {
			_, err := ix.Histogram(ctx, HistogramRequest{Query: "failed", Start: day, End: now})
			return err
		}},
		{"facets-term-24h", func() error {
			_, err := ix.Facets(ctx, FacetsRequest{Query: "failed", Start: day, End: now})
			return err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			durs := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(t0))
			}
			sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(durs[(len(durs)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// buildSearchBench writes total records spread evenly over the 7 UTC days up to
// now into a new Index under dir, two writers at a time, and logs the rate and
// the size on disk.
func buildSearchBench(b *testing.B, dir string, lines []loghubLine, total int, now time.Time) {
	ix, err := Open(filepath.Join(dir, "logs"), &Options{Retention: -1, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	start := dayStart(dayOf(now) - 6)
	step := now.Sub(start) / time.Duration(total)
	ctx := context.Background()
	const batch = 1000
	var next atomic.Int64
	var rawBytes atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(batch)) - batch
				if i >= total {
					return
				}
				recs := make([]genRecord, min(batch, total-i))
				var raw int64
				for j := range recs {
					k := i + j
					l := lines[k%len(lines)]
					sev := l.level
					if sev == plog.SeverityNumberUnspecified {
						sev = genLevels[k%len(genLevels)]
					}
					body := l.line
					if pass := k / len(lines); pass > 0 {
						body = varyNumbers(body, pass)
					}
					raw += int64(len(body)) + 1
					recs[j] = genRecord{t: start.Add(time.Duration(k) * step), service: l.service, sev: sev, body: body,
						attrs: map[string]any{"thread.id": k * 7 % 16}}
				}
				rawBytes.Add(raw)
				for {
					_, _, err := ix.WriteLogs(ctx, makeLogs(recs))
					if err == nil {
						break
					}
					if _, ok := err.(*BackpressureError); !ok {
						errs <- err
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	if err := ix.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(t0)
	if err := ix.Close(); err != nil {
		b.Fatal(err)
	}
	disk := dirSize(b, dir)
	b.Logf("built %d records over 7 days in %s (%.0f records/s); %.1f bytes/record on disk, %.2f× the raw text",
		total, el.Round(time.Second), float64(total)/el.Seconds(), float64(disk)/float64(total), float64(disk)/float64(rawBytes.Load()))
}

// varyNumbers changes the last two digits of every number of at least two digits
// in l, differently for each pass, so that replayed lines keep their templates
// but not their exact values.
func varyNumbers(l string, pass int) string {
	buf := []byte(l)
	run, k := 0, 0
	for j := 0; j <= len(buf); j++ {
		if j < len(buf) && buf[j] >= '0' && buf[j] <= '9' {
			run++
			continue
		}
		if run >= 2 {
			v := int(buf[j-2]-'0')*10 + int(buf[j-1]-'0')
			v = (v + pass*37 + k*11) % 100
			buf[j-2], buf[j-1] = byte('0'+v/10), byte('0'+v%10)
			k++
		}
		run = 0
	}
	return string(buf)
}

// BenchmarkMatchAll compares the empty query with * (which must cost the same)
// and with ?* (a real wildcard over every body token, what * used to be) over
// LOGINDEX_BENCH_RECORDS generated records (default 50,000) with many distinct
// body tokens.
func BenchmarkMatchAll(b *testing.B) {
	total := 50_000
	if v := os.Getenv("LOGINDEX_BENCH_RECORDS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	ix, _ := openTest(b, nil)
	now := time.Now().UTC()
	start := now.Add(-24 * time.Hour)
	step := 24 * time.Hour / time.Duration(total)
	ctx := context.Background()
	for i := 0; i < total; i += 5000 {
		recs := make([]genRecord, min(5000, total-i))
		for j := range recs {
			n := i + j
			recs[j] = genRecord{t: start.Add(time.Duration(n) * step), service: genServices[n%len(genServices)],
				sev: genLevels[n%len(genLevels)], body: "request " + strconv.Itoa(n) + " user u" + strconv.Itoa(n%5000) + " took " + strconv.Itoa(n%977) + "ms",
				attrs: map[string]any{"http.status": 200 + n%5, "region": "r" + strconv.Itoa(n%7)}}
		}
		for {
			_, _, err := ix.WriteLogs(ctx, makeLogs(recs))
			if err == nil {
				break
			}
			if _, ok := err.(*BackpressureError); !ok {
				b.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := ix.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	end := now.Add(time.Minute)
	for _, q := range []struct{ name, q string }{{"empty", ""}, {"star", "*"}, {"wildcard", "?*"}} {
		b.Run("search/"+q.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ix.Search(ctx, SearchRequest{Query: q.q, Limit: 100}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("histogram/"+q.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ix.Histogram(ctx, HistogramRequest{Query: q.q, Start: start, End: end}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("facets/"+q.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ix.Facets(ctx, FacetsRequest{Query: q.q, Start: start, End: end}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
