package tsdb

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"outpost/internal/otlpwire"
)

// Examples from the OpenTelemetry "Prometheus and OpenMetrics Compatibility"
// specification (metric name and unit handling).
func TestMetricName(t *testing.T) {
	cases := []struct {
		name, unit string
		kind       MetricKind
		want       string
	}{
		{"http.server.duration", "s", KindHistogram, "http_server_duration_seconds"},
		{"system.memory.usage", "By", KindGauge, "system_memory_usage_bytes"},
		{"requests", "1", KindCounter, "requests_total"},
		{"cpu.utilization", "1", KindGauge, "cpu_utilization_ratio"},
		{"http.requests", "{request}", KindCounter, "http_requests_total"},
		{"network.io", "By/s", KindGauge, "network_io_bytes_per_second"},
		{"requests_total", "", KindCounter, "requests_total"},
		{"process.cpu.time", "s", KindCounter, "process_cpu_time_seconds_total"},
		{"latency_seconds", "s", KindHistogram, "latency_seconds"},
		{"2xx.responses", "", KindGauge, "_2xx_responses"},
		{"queue.size", "{items}", KindGauge, "queue_size"},
		{"disk.io", "MiBy", KindCounter, "disk_io_mebibytes_total"},
	}
	for _, c := range cases {
		if got := MetricName(c.name, c.unit, c.kind); got != c.want {
			t.Errorf("MetricName(%q, %q) = %q, want %q", c.name, c.unit, got, c.want)
		}
	}
}

func TestSanitizeLabel(t *testing.T) {
	for in, want := range map[string]string{
		"http.method": "http_method", "2fa": "key_2fa", "_private": "key_private",
		"__reserved": "__reserved", "a-b/c": "a_b_c", "ok": "ok",
	} {
		if got := sanitizeLabel(in); got != want {
			t.Errorf("sanitizeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

var t0 = time.Unix(1700000000, 0)

func ts(sec int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(t0.Add(time.Duration(sec) * time.Second))
}

func newResource(md pmetric.Metrics, attrs map[string]string) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	for k, v := range attrs {
		rm.Resource().Attributes().PutStr(k, v)
	}
	return rm.ScopeMetrics().AppendEmpty().Metrics()
}

// query returns the samples of the series with exactly labels want (string form).
func seriesValues(t *testing.T, db *DB) map[string][]float64 {
	out := map[string][]float64{}
	for k, ss := range readAll(t, db) {
		for _, s := range ss {
			out[k] = append(out[k], s.v)
		}
	}
	return out
}

func TestWriteMetricsMapping(t *testing.T) {
	svc := map[string]string{"service.name": "api", "service.namespace": "shop", "service.instance.id": "i-1", "host.arch": "amd64"}
	cases := []struct {
		name  string
		build func(md pmetric.Metrics)
		want  map[string][]float64
	}{
		{
			name: "gauge",
			build: func(md pmetric.Metrics) {
				m := newResource(md, svc).AppendEmpty()
				m.SetName("queue.depth")
				dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
				dp.SetTimestamp(ts(0))
				dp.SetIntValue(7)
				dp.Attributes().PutStr("queue", "q1")
			},
			want: map[string][]float64{
				`{__name__="queue_depth", instance="i-1", job="shop/api", queue="q1"}`:        {7},
				`{__name__="target_info", host_arch="amd64", instance="i-1", job="shop/api"}`: {1},
			},
		},
		{
			name: "cumulative monotonic sum",
			build: func(md pmetric.Metrics) {
				m := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"}).AppendEmpty()
				m.SetName("http.requests")
				m.SetUnit("{request}")
				s := m.SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for i, v := range []float64{1, 5} {
					dp := s.DataPoints().AppendEmpty()
					dp.SetStartTimestamp(ts(0))
					dp.SetTimestamp(ts(10 * (i + 1)))
					dp.SetDoubleValue(v)
				}
			},
			want: map[string][]float64{`{__name__="http_requests_total", instance="i-1", job="api"}`: {1, 5}},
		},
		{
			name: "delta sum accumulated",
			build: func(md pmetric.Metrics) {
				m := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"}).AppendEmpty()
				m.SetName("jobs.done")
				s := m.SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
				for i, v := range []int64{2, 3, 4} {
					dp := s.DataPoints().AppendEmpty()
					dp.SetTimestamp(ts(10 * (i + 1)))
					dp.SetIntValue(v)
				}
			},
			want: map[string][]float64{`{__name__="jobs_done_total", instance="i-1", job="api"}`: {2, 5, 9}},
		},
		{
			name: "non-monotonic sum is a gauge",
			build: func(md pmetric.Metrics) {
				m := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"}).AppendEmpty()
				m.SetName("active.sessions")
				s := m.SetEmptySum()
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				dp := s.DataPoints().AppendEmpty()
				dp.SetTimestamp(ts(1))
				dp.SetIntValue(-3)
			},
			want: map[string][]float64{`{__name__="active_sessions", instance="i-1", job="api"}`: {-3}},
		},
		{
			name: "explicit histogram",
			build: func(md pmetric.Metrics) {
				m := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"}).AppendEmpty()
				m.SetName("http.server.duration")
				m.SetUnit("s")
				h := m.SetEmptyHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				dp := h.DataPoints().AppendEmpty()
				dp.SetTimestamp(ts(1))
				dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
				dp.BucketCounts().FromRaw([]uint64{2, 3, 1})
				dp.SetCount(6)
				dp.SetSum(4.5)
			},
			want: map[string][]float64{
				`{__name__="http_server_duration_seconds_bucket", instance="i-1", job="api", le="0.1"}`:  {2},
				`{__name__="http_server_duration_seconds_bucket", instance="i-1", job="api", le="1"}`:    {5},
				`{__name__="http_server_duration_seconds_bucket", instance="i-1", job="api", le="+Inf"}`: {6},
				`{__name__="http_server_duration_seconds_sum", instance="i-1", job="api"}`:               {4.5},
				`{__name__="http_server_duration_seconds_count", instance="i-1", job="api"}`:             {6},
			},
		},
		{
			name: "summary",
			build: func(md pmetric.Metrics) {
				m := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"}).AppendEmpty()
				m.SetName("rpc.latency")
				m.SetUnit("ms")
				dp := m.SetEmptySummary().DataPoints().AppendEmpty()
				dp.SetTimestamp(ts(1))
				dp.SetCount(10)
				dp.SetSum(123)
				q := dp.QuantileValues().AppendEmpty()
				q.SetQuantile(0.99)
				q.SetValue(40)
			},
			want: map[string][]float64{
				`{__name__="rpc_latency_milliseconds", instance="i-1", job="api", quantile="0.99"}`: {40},
				`{__name__="rpc_latency_milliseconds_sum", instance="i-1", job="api"}`:              {123},
				`{__name__="rpc_latency_milliseconds_count", instance="i-1", job="api"}`:            {10},
			},
		},
		{
			name: "resources without instance id stay apart",
			build: func(md pmetric.Metrics) {
				for _, host := range []string{"a", "b"} {
					for _, pod := range []string{"p1", "p2"} {
						m := newResource(md, map[string]string{"service.name": "api", "host.name": host, "k8s.pod.name": pod}).AppendEmpty()
						m.SetName("up")
						dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
						dp.SetTimestamp(ts(1))
						dp.SetDoubleValue(1)
					}
				}
			},
			want: map[string][]float64{
				`{__name__="up", instance="a", job="api", k8s_pod_name="p1"}`: {1},
				`{__name__="up", instance="a", job="api", k8s_pod_name="p2"}`: {1},
				`{__name__="up", instance="b", job="api", k8s_pod_name="p1"}`: {1},
				`{__name__="up", instance="b", job="api", k8s_pod_name="p2"}`: {1},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t, &Options{OutOfOrderWindow: time.Hour})
			md := pmetric.NewMetrics()
			tc.build(md)
			rej, reason, err := db.WriteMetrics(t.Context(), md)
			if err != nil || rej != 0 {
				t.Fatalf("WriteMetrics: rejected %d (%s), err %v", rej, reason, err)
			}
			got := seriesValues(t, db)
			for k, w := range tc.want {
				g, ok := got[k]
				if !ok {
					t.Fatalf("series %s missing; have %v", k, got)
				}
				if len(g) != len(w) {
					t.Fatalf("series %s: %v, want %v", k, g, w)
				}
				for i := range w {
					if g[i] != w[i] {
						t.Fatalf("series %s: %v, want %v", k, g, w)
					}
				}
			}
			for k := range got {
				if _, ok := tc.want[k]; !ok && !strings.HasPrefix(k, `{__name__="target_info"`) {
					t.Errorf("unexpected series %s", k)
				}
			}
		})
	}
}

func TestExponentialHistogramAndStaleness(t *testing.T) {
	db, _ := openTest(t, nil)
	md := pmetric.NewMetrics()
	ms := newResource(md, map[string]string{"service.name": "api", "service.instance.id": "i-1"})
	m := ms.AppendEmpty()
	m.SetName("latency")
	m.SetUnit("s")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := eh.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(1))
	dp.SetScale(0)
	dp.SetCount(7)
	dp.SetSum(12)
	dp.SetZeroCount(1)
	dp.Positive().SetOffset(0) // OTLP bucket 0 is (1,2]; Prometheus calls it bucket 1
	dp.Positive().BucketCounts().FromRaw([]uint64{2, 0, 4})
	dp2 := eh.DataPoints().AppendEmpty()
	dp2.SetTimestamp(ts(2))
	dp2.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	g := ms.AppendEmpty()
	g.SetName("temp")
	gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.SetTimestamp(ts(1))
	gdp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))

	if rej, reason, err := db.WriteMetrics(t.Context(), md); err != nil || rej != 0 {
		t.Fatalf("rejected %d (%s), err %v", rej, reason, err)
	}
	all := readAll(t, db)
	hs := all[`{__name__="latency_seconds", instance="i-1", job="api"}`]
	if len(hs) != 2 || hs[0].fh == nil {
		t.Fatalf("native histogram samples: %+v", hs)
	}
	fh := hs[0].fh
	if fh.Schema != 0 || fh.Count != 7 || fh.ZeroCount != 1 || len(fh.PositiveSpans) != 2 ||
		fh.PositiveSpans[0].Offset != 1 || fh.PositiveBuckets[0] != 2 || fh.PositiveBuckets[1] != 4 {
		t.Fatalf("histogram %v spans %v buckets %v", fh, fh.PositiveSpans, fh.PositiveBuckets)
	}
	if !value.IsStaleNaN(hs[1].fh.Sum) {
		t.Fatalf("no-recorded-value histogram is not a stale marker: %v", hs[1].fh)
	}
	temp := all[`{__name__="temp", instance="i-1", job="api"}`]
	if len(temp) != 1 || math.Float64bits(temp[0].v) != value.StaleNaN {
		t.Fatalf("no-recorded-value gauge is not a stale marker: %+v", temp)
	}
}

// TestConcurrentWritersShareScope has writers send points of one resource and
// scope at once, each adding new series (cache misses, which take the scope's
// write lock while the others read under its read lock), and checks that every
// point is stored.
func TestConcurrentWritersShareScope(t *testing.T) {
	for _, wire := range []bool{false, true} {
		t.Run(map[bool]string{false: "decoded", true: "wire"}[wire], func(t *testing.T) { concurrentWritersShareScope(t, wire) })
	}
}

// concurrentWritersShareScope has writers send points of one scope at once,
// decoded or on the wire (where they also replace the scope's order of series
// and share its metric families).
func concurrentWritersShareScope(t *testing.T, wire bool) {
	db, _ := openTest(t, &Options{OutOfOrderWindow: -1})
	const writers, rounds, perRound = 4, 30, 50
	base := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				md := pmetric.NewMetrics()
				rm := md.ResourceMetrics().AppendEmpty()
				rm.Resource().Attributes().PutStr("service.name", "shared")
				sm := rm.ScopeMetrics().AppendEmpty()
				sm.Scope().SetName("scope")
				m := sm.Metrics().AppendEmpty()
				m.SetName("g")
				dps := m.SetEmptyGauge().DataPoints()
				for i := range perRound {
					dp := dps.AppendEmpty()
					// Half the series are new each round, half seen before.
					dp.Attributes().PutInt("series", int64(w*1_000_000+(r/2)*perRound+i))
					dp.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(r) * time.Second)))
					dp.SetDoubleValue(float64(r))
				}
				var err error
				if wire {
					body, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
					m, ok := otlpwire.Scan(body, 128)
					if !ok {
						errs <- fmt.Errorf("Scan refused round %d", r)
						return
					}
					_, _, err = db.WriteMetricsWire(t.Context(), m)
					m.Release()
				} else {
					_, _, err = db.WriteMetrics(t.Context(), md)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	for _, ss := range readAll(t, db) {
		n += len(ss)
	}
	if want := writers * rounds * perRound; n != want {
		t.Fatalf("%d samples stored, want %d", n, want)
	}
}
