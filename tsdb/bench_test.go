package tsdb

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
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
