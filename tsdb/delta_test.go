package tsdb

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Delta running totals continue from the stored series after a restart, whether
// the newest sample is still in the WAL or already in a partition, for sums,
// explicit histograms and exponential histograms; a new series starts at zero.
func TestDeltaTotalsSurviveRestart(t *testing.T) {
	batch := func(sec int, inc int64) pmetric.Metrics {
		md := pmetric.NewMetrics()
		ms := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"})
		s := ms.AppendEmpty()
		s.SetName("jobs.done")
		sum := s.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(ts(sec - 10))
		dp.SetTimestamp(ts(sec))
		dp.SetIntValue(inc)

		h := ms.AppendEmpty()
		h.SetName("wait")
		h.SetUnit("s")
		hist := h.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		hp := hist.DataPoints().AppendEmpty()
		hp.SetTimestamp(ts(sec))
		hp.ExplicitBounds().FromRaw([]float64{1})
		hp.BucketCounts().FromRaw([]uint64{uint64(inc), 1})
		hp.SetCount(uint64(inc) + 1)
		hp.SetSum(float64(inc))

		e := ms.AppendEmpty()
		e.SetName("size")
		eh := e.SetEmptyExponentialHistogram()
		eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		ep := eh.DataPoints().AppendEmpty()
		ep.SetTimestamp(ts(sec))
		ep.SetScale(0)
		ep.Positive().BucketCounts().FromRaw([]uint64{uint64(inc)})
		ep.SetCount(uint64(inc))
		ep.SetSum(float64(inc))
		return md
	}
	for _, flush := range []bool{false, true} {
		name := "wal"
		if flush {
			name = "partition"
		}
		t.Run(name, func(t *testing.T) {
			_, dir := openTest(t, nil)
			opts := &Options{Retention: -1, MaintenanceInterval: -1}
			db, err := Open(dir+"/db", opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, inc := range []int64{2, 3} {
				if _, _, err := db.WriteMetrics(context.Background(), batch(10*(i+1), inc)); err != nil {
					t.Fatal(err)
				}
			}
			if flush {
				if err := db.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, err = Open(dir+"/db", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, _, err := db.WriteMetrics(context.Background(), batch(30, 4)); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, db)
			check := func(series string, want ...float64) {
				t.Helper()
				ss := got[series]
				if len(ss) != len(want) {
					t.Fatalf("%s: %d samples, want %v", series, len(ss), want)
				}
				for i, s := range ss {
					v := s.v
					if s.fh != nil {
						v = s.fh.Count
					}
					if v != want[i] {
						t.Errorf("%s: sample %d is %v, want %v", series, i, v, want[i])
					}
				}
			}
			check(`{__name__="jobs_done_total", instance="i-1", job="api"}`, 2, 5, 9)
			check(`{__name__="wait_seconds_bucket", instance="i-1", job="api", le="1"}`, 2, 5, 9)
			check(`{__name__="wait_seconds_count", instance="i-1", job="api"}`, 3, 7, 12)
			check(`{__name__="size", instance="i-1", job="api"}`, 2, 5, 9)
			// The start time of the running total is the first delta's, still.
			if ss := got[`{__name__="jobs_done_total", instance="i-1", job="api"}`]; ss[2].st != ss[0].st || ss[0].st != ts(0).AsTime().UnixMilli() {
				t.Errorf("start times %d, %d, %d; want all %d", ss[0].st, ss[1].st, ss[2].st, ts(0).AsTime().UnixMilli())
			}
		})
	}
}

// Running totals idle for deltaIdle are dropped from memory, and a dropped one
// continues from its stored series when deltas come again.
func TestDeltaTotalsForgotten(t *testing.T) {
	now := t0.Add(time.Minute)
	db, _ := openTest(t, &Options{Now: func() time.Time { return now }})
	write := func(sec int, inc int64) {
		t.Helper()
		md := pmetric.NewMetrics()
		m := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"}).AppendEmpty()
		m.SetName("jobs.done")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(sec))
		dp.SetIntValue(inc)
		if _, _, err := db.WriteMetrics(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	write(10, 2)
	if n := db.otlp.forget(now.Add(-deltaIdle).UnixMilli()); n != 0 {
		t.Fatalf("forgot %d fresh totals", n)
	}
	now = now.Add(deltaIdle + time.Minute)
	if n := db.otlp.forget(now.Add(-deltaIdle).UnixMilli()); n != 1 {
		t.Fatalf("forgot %d idle totals, want 1", n)
	}
	write(20, 3)
	got := seriesValues(t, db)[`{__name__="jobs_done_total", instance="i-1", job="api"}`]
	if len(got) != 2 || got[0] != 2 || got[1] != 5 {
		t.Fatalf("got %v, want [2 5]", got)
	}
}
