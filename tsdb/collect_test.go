package tsdb

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"outpost/internal/otlpwire"
)

// TestCollectSeriesAfterRetention checks that series whose last sample
// retention deleted leave memory (the series count, the label index), and that
// every way of writing to such a series afterwards (by labels, by a ref held
// from before with or without labels, through the OTLP translators' cached
// refs) creates it anew or fails cleanly, while the other series are untouched.
func TestCollectSeriesAfterRetention(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := start
	db, dir := openTest(t, &Options{Retention: 6 * time.Hour, Now: func() time.Time { return now }})

	otlpGauge := func(name string, at time.Time, v float64) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "svc")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetDoubleValue(v)
		return md
	}
	writeDecoded := func(name string, at time.Time, v float64) {
		t.Helper()
		if _, _, err := db.WriteMetrics(t.Context(), otlpGauge(name, at, v)); err != nil {
			t.Fatal(err)
		}
	}
	writeWire := func(name string, at time.Time, v float64) {
		t.Helper()
		body, _ := pmetricotlp.NewExportRequestFromMetrics(otlpGauge(name, at, v)).MarshalProto()
		m, ok := otlpwire.Scan(body, 128)
		if !ok {
			t.Fatal("Scan refused the request")
		}
		if _, _, err := db.WriteMetricsWire(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}

	// Hour 0: 100 short-lived series, one series that lives on, and two OTLP
	// series (decoded and wire) that go silent and come back later.
	const churn = 100
	var batch []RefSample
	for i := range churn {
		batch = append(batch, RefSample{Labels: labels.FromStrings("__name__", "pod_up", "pod", fmt.Sprintf("p%03d", i)), T: start.UnixMilli(), V: float64(i)})
	}
	kept := labels.FromStrings("__name__", "node_up", "node", "a")
	batch = append(batch, RefSample{Labels: kept, T: start.UnixMilli(), V: 1})
	if _, err := db.AppendRefs(batch); err != nil {
		t.Fatal(err)
	}
	oldRef := batch[0].Ref
	writeDecoded("decoded_gauge", start, 1)
	writeWire("wire_gauge", start, 1)
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}

	// Hour 10: only node_up still writes. Retention (6 h) deletes hour 0's
	// partition, and with it the only samples of 103 series.
	now = start.Add(10 * time.Hour)
	if _, err := db.AppendRefs([]RefSample{{Ref: batch[churn].Ref, T: now.UnixMilli(), V: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := db.Stats().Series; got != churn+3 {
		t.Fatalf("series before retention: %d, want %d", got, churn+3)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	if st.Series != 1 || st.SeriesCollected != churn+2 {
		t.Fatalf("after retention: %d series, %d collected; want 1 and %d", st.Series, st.SeriesCollected, churn+2)
	}
	q, err := db.Querier(0, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if vals, _, _ := q.LabelValues(t.Context(), "pod", nil); len(vals) != 0 {
		t.Fatalf("label values of collected series still listed: %v", vals)
	}
	if names, _, _ := q.LabelValues(t.Context(), labels.MetricName, nil); !slices.Equal(names, []string{"node_up"}) {
		t.Fatalf("metric names %v, want [node_up]", names)
	}
	q.Close()
	if got := readAll(t, db); len(got) != 1 || len(got[kept.String()]) != 1 {
		t.Fatalf("stored after retention: %v", got)
	}

	// A ref from before, without labels, is unknown now; nothing of the call
	// is stored.
	_, err = db.AppendRefs([]RefSample{{Ref: batch[churn].Ref, T: now.UnixMilli() + 1000, V: 3}, {Ref: oldRef, T: now.UnixMilli() + 1000, V: 3}})
	if !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("stale ref without labels: err = %v, want ErrUnknownRef", err)
	}
	// With its labels it creates the series anew, under a new ref.
	again := []RefSample{{Ref: oldRef, Labels: batch[0].Labels, T: now.UnixMilli() + 2000, V: 42}}
	if _, err := db.AppendRefs(again); err != nil {
		t.Fatal(err)
	}
	if again[0].Ref == oldRef || again[0].Ref == 0 {
		t.Fatalf("ref after re-creation: %d (old %d)", again[0].Ref, oldRef)
	}
	if _, err := db.AppendRefs([]RefSample{{Ref: again[0].Ref, T: now.UnixMilli() + 3000, V: 43}}); err != nil {
		t.Fatal(err)
	}
	// The OTLP translators hold the collected series' refs in their caches:
	// their next points must land in new series, twice (the second time
	// through the refreshed cache).
	for k := range 2 {
		at := now.Add(time.Duration(k+1) * time.Minute)
		writeDecoded("decoded_gauge", at, float64(10+k))
		writeWire("wire_gauge", at, float64(20+k))
	}

	check := func(when string) {
		t.Helper()
		got := seriesValues(t, db)
		want := map[string][]float64{
			kept.String():                           {2}, // hour 0 went with its partition
			batch[0].Labels.String():                {42, 43},
			`{__name__="decoded_gauge", job="svc"}`: {10, 11},
			`{__name__="wire_gauge", job="svc"}`:    {20, 21},
		}
		if len(got) != len(want) {
			t.Fatalf("%s: series %v, want %v", when, got, want)
		}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Fatalf("%s: %s = %v, want %v (all: %v)", when, k, got[k], v, got)
			}
		}
		if st := db.Stats(); st.Series != len(want) {
			t.Fatalf("%s: %d series, want %d", when, st.Series, len(want))
		}
	}
	check("in the head")
	// A flush after a collection writes the series in label order, the new
	// ones among the old.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	check("after flush")
	db.Close()
	db, err = Open(dir, &Options{MaintenanceInterval: -1, Retention: 6 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	check("after reopening")
}

// TestCollectedSeriesFreeMemory checks that the memory of collected series is
// given back: after retention deleted the only samples of 20,000 series, the
// heap holds less than a fifth of what they took.
func TestCollectedSeriesFreeMemory(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := start
	db, _ := openTest(t, &Options{Retention: 6 * time.Hour, Now: func() time.Time { return now }})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// A first flush sets up what every flush shares (the zstd encoder).
	warm := []RefSample{{Labels: labels.FromStrings("__name__", "warm"), T: start.UnixMilli(), V: 1}}
	if _, err := db.AppendRefs(warm); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	h0 := heap()
	const n = 20_000
	batch := make([]RefSample, 0, 1000)
	for i := range n {
		batch = append(batch, RefSample{Labels: labels.FromStrings("__name__", "container_memory_working_set_bytes", "namespace", "shop", "pod", fmt.Sprintf("checkout-7d9f8c-%05d", i), "container", "app"), T: start.UnixMilli(), V: float64(i)})
		if len(batch) == cap(batch) {
			if _, err := db.AppendRefs(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	h1 := heap()
	now = start.Add(10 * time.Hour)
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	h2 := heap()
	if st := db.Stats(); st.Series != 0 || st.SeriesCollected != n+1 {
		t.Fatalf("%d series, %d collected; want 0 and %d", st.Series, st.SeriesCollected, n+1)
	}
	took, left := int64(h1)-int64(h0), int64(h2)-int64(h0)
	t.Logf("heap: %d B per series while stored, %d B after collection", took/n, left/n)
	if took <= 0 || left > took/5 {
		t.Fatalf("heap grew by %d bytes with the series and still holds %d after their collection", took, left)
	}
}
