package logindex

import (
	"context"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// BenchmarkSearch measures query latency over Loghub lines replayed across 7
// daily partitions (LOGINDEX_BENCH_RECORDS records, default 350,000), reporting
// p50 and p99 per query kind.
func BenchmarkSearch(b *testing.B) {
	systems := loadLoghub(b)
	total := 350_000
	if v := os.Getenv("LOGINDEX_BENCH_RECORDS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	var lines []loghubLine
	for _, s := range systems {
		for _, l := range s.lines {
			lines = append(lines, loghubLine{s.name, l, loghubLevel(l)})
		}
	}
	dir := b.TempDir()
	ix, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	now := time.Now().UTC()
	start := now.Add(-7 * 24 * time.Hour)
	step := 7 * 24 * time.Hour / time.Duration(total)
	ctx := context.Background()
	for i := 0; i < total; i += 1000 {
		recs := make([]genRecord, min(1000, total-i))
		for j := range recs {
			l := lines[(i+j)%len(lines)]
			sev := l.level
			if sev == plog.SeverityNumberUnspecified {
				sev = genLevels[(i+j)%len(genLevels)]
			}
			recs[j] = genRecord{t: start.Add(time.Duration(i+j) * step), service: l.service, sev: sev, body: l.line}
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
	day := now.Add(-24 * time.Hour)
	cases := []struct {
		name string
		run  func() error
	}{
		{"term", func() error { _, err := ix.Search(ctx, SearchRequest{Query: "failed", Limit: 100}); return err }},
		{"phrase", func() error {
			_, err := ix.Search(ctx, SearchRequest{Query: `"connection closed"`, Limit: 100})
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
