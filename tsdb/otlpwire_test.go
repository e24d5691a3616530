package tsdb

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"outpost/internal/otlpwire"
)

// TestWriteMetricsWireMatchesDecoded writes the same random requests of gauges,
// sums and explicit-bucket histograms (and some of the metrics the wire path
// decodes) through WriteMetrics (decoded) into one DB and WriteMetricsWire (on
// the wire) into another, and expects the same answers, series, samples (bit
// for bit) and metadata: the resource mapping, scopes, name normalisation,
// start timestamps, delta sums and histograms accumulated across requests,
// staleness markers, attributes of every type, histograms without a sum or
// with bucket counts that do not fit their bounds, and the label cache on
// later requests.
func TestWriteMetricsWireMatchesDecoded(t *testing.T) {
	opts := func() *Options {
		return &Options{OutOfOrderWindow: time.Hour, PromoteResourceAttributes: []string{"deployment.environment", "cloud.region"}}
	}
	dec, _ := openTest(t, opts())
	wire, _ := openTest(t, opts())
	r := rand.New(rand.NewPCG(7, 8))
	duplicated := 0
	var md pmetric.Metrics
	for req := range 60 {
		switch {
		case req%3 == 0 || req < 2:
			md = randomNumberMetrics(r, req)
		case req%3 == 1:
			// The same points again, later: every scope's series in the order
			// of its previous request.
			laterPoints(md, 10*time.Second)
		default:
			// Again, with the last point of each scope dropped, or a new one
			// first, or two swapped.
			laterPoints(md, 10*time.Second)
			reshape(r, md)
		}
		body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		if req%5 == 4 {
			var changed bool
			if body, changed = duplicateKeys(body); changed {
				duplicated++
			}
		}
		m, ok := otlpwire.Scan(body, 128)
		if !ok {
			t.Fatalf("request %d: Scan refused it", req)
		}
		// The decoded side gets the body decoded, so that both see the same
		// bytes (duplicateKeys changes them).
		q := pmetricotlp.NewExportRequest()
		if err := q.UnmarshalProto(body); err != nil {
			t.Fatal(err)
		}
		rejD, whyD, errD := dec.WriteMetrics(t.Context(), q.Metrics())
		rejW, whyW, errW := wire.WriteMetricsWire(t.Context(), m)
		if rejD != rejW || whyD != whyW || (errD == nil) != (errW == nil) {
			t.Fatalf("request %d: decoded: %d %q %v; wire: %d %q %v", req, rejD, whyD, errD, rejW, whyW, errW)
		}
	}
	if duplicated == 0 {
		t.Fatal("no request had duplicate attribute keys")
	}
	got, want := readAll(t, wire), readAll(t, dec)
	if len(want) < 100 {
		t.Fatalf("only %d series written: the test does not test much", len(want))
	}
	for k, ws := range want {
		gs, ok := got[k]
		if !ok {
			t.Errorf("series %s missing on the wire side", k)
			continue
		}
		if err := sameSamples(gs, ws); err != nil {
			t.Errorf("series %s: %v", k, err)
			continue
		}
		for i := range ws {
			if g, w := gs[i].fh, ws[i].fh; (g == nil) != (w == nil) || g != nil && !g.Equals(w) {
				t.Errorf("series %s: histogram %d: %v, want %v", k, i, g, w)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("series %s only on the wire side", k)
		}
	}
	if g, w := wire.Metadata(), dec.Metadata(); !reflect.DeepEqual(g, w) {
		t.Errorf("metadata: wire %v, decoded %v", g, w)
	}
}

// randomNumberMetrics builds request number req of TestWriteMetricsWireMatchesDecoded.
// Resources, scopes, metrics and attribute sets come from small pools, so that
// later requests meet series seen before.
func randomNumberMetrics(r *rand.Rand, req int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	for range 1 + r.IntN(3) {
		rm := md.ResourceMetrics().AppendEmpty()
		ra := rm.Resource().Attributes()
		for _, k := range []string{"service.name", "service.namespace", "service.instance.id", "host.name", "k8s.pod.name", "job", "instance", "deployment.environment", "cloud.region", "os.type"} {
			if r.IntN(3) > 0 {
				ra.PutStr(k, pick("a", "b", "c"))
			}
		}
		if r.IntN(4) == 0 {
			ra.PutInt("process.pid", int64(r.IntN(3)))
		}
		for range 1 + r.IntN(2) {
			sm := rm.ScopeMetrics().AppendEmpty()
			if r.IntN(2) == 0 {
				sm.Scope().SetName(pick("io.opentelemetry.runtime", "app/db"))
				if r.IntN(2) == 0 {
					sm.Scope().SetVersion(pick("1.0", "2.1.0"))
				}
			}
			for range 1 + r.IntN(4) {
				m := sm.Metrics().AppendEmpty()
				m.SetName(pick("http.server.duration", "queue.depth", "jobs.done", "process.cpu.time", "system.memory.usage", "a.b-c"))
				m.SetUnit(pick("", "s", "ms", "By", "{request}", "1", "%"))
				m.SetDescription(pick("", "what it counts"))
				if r.IntN(6) == 0 {
					otherMetric(r, m, req)
					continue
				}
				var dps pmetric.NumberDataPointSlice
				sum := r.IntN(2) == 0
				if sum {
					s := m.SetEmptySum()
					s.SetIsMonotonic(r.IntN(2) == 0)
					s.SetAggregationTemporality(pmetric.AggregationTemporality(1 + r.IntN(2)))
					dps = s.DataPoints()
				} else {
					dps = m.SetEmptyGauge().DataPoints()
				}
				for range 1 + r.IntN(6) {
					dp := dps.AppendEmpty()
					at := t0.Add(time.Duration(req)*10*time.Second + time.Duration(r.IntN(10_000))*time.Millisecond)
					dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
					if r.IntN(2) == 0 {
						dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Duration(r.IntN(3)) * time.Minute)))
					}
					switch r.IntN(4) {
					case 0:
						dp.SetIntValue(int64(r.IntN(1000)) - 100)
					case 1:
						dp.SetDoubleValue(r.NormFloat64() * 1e6)
					case 2:
						dp.SetDoubleValue(float64(r.IntN(10)) / 10)
					} // else no value at all
					if r.IntN(12) == 0 {
						dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
					}
					if r.IntN(20) == 0 { // the metric is then decoded
						dp.Exemplars().AppendEmpty().SetDoubleValue(1)
					}
					a := dp.Attributes()
					if r.IntN(3) > 0 {
						a.PutStr(pick("code", "route", "job", "instance", "http.method"), pick("200", "/a", "x"))
					}
					switch r.IntN(8) {
					case 0:
						a.PutInt("shard", int64(r.IntN(3)))
					case 1:
						a.PutBool("ok", r.IntN(2) == 0)
					case 2:
						a.PutDouble("ratio", float64(r.IntN(3))/4)
					case 3:
						a.PutEmptyBytes("raw").FromRaw([]byte{1, 2, byte(r.IntN(3))})
					case 4:
						s := a.PutEmptySlice("tags")
						s.AppendEmpty().SetStr(pick("x", "y"))
						s.AppendEmpty().SetInt(3)
					case 5:
						mm := a.PutEmptyMap("ctx")
						mm.PutStr("k", pick("v", "w"))
						mm.PutEmpty("nothing")
					case 6:
						a.PutStr("a.b", "1") // collides with a_b once sanitised
						a.PutStr("a_b", pick("2", "3"))
					case 7: // see duplicateKeys
						a.PutStr("route", pick("/a", "/b"))
						a.PutInt("shard", 1)
					}
				}
			}
		}
	}
	return md
}

// laterPoints moves every number and explicit-bucket histogram point of md d
// later.
func laterPoints(md pmetric.Metrics, d time.Duration) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				var dps pmetric.NumberDataPointSlice
				switch m := ms.At(k); m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				case pmetric.MetricTypeHistogram:
					hps := m.Histogram().DataPoints()
					for l := range hps.Len() {
						hps.At(l).SetTimestamp(hps.At(l).Timestamp() + pcommon.Timestamp(d))
					}
					continue
				default:
					continue
				}
				for l := range dps.Len() {
					dps.At(l).SetTimestamp(dps.At(l).Timestamp() + pcommon.Timestamp(d))
				}
			}
		}
	}
}

// reshape changes the order of each scope's points: it drops the last, puts a
// new one first, or swaps the first two.
func reshape(r *rand.Rand, md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			if ms.Len() == 0 || ms.At(0).Type() != pmetric.MetricTypeGauge {
				continue
			}
			dps := ms.At(0).Gauge().DataPoints()
			switch r.IntN(3) {
			case 0:
				if dps.Len() > 1 {
					dps.RemoveIf(func(p pmetric.NumberDataPoint) bool { return p.Attributes().Len() == 0 })
				}
			case 1:
				np := pmetric.NewNumberDataPointSlice()
				p := np.AppendEmpty()
				p.SetTimestamp(dps.At(0).Timestamp())
				p.SetDoubleValue(42)
				p.Attributes().PutStr("new", fmt.Sprint(r.IntN(1000)))
				dps.MoveAndAppendTo(np)
				np.MoveAndAppendTo(dps)
			default:
				if dps.Len() > 1 {
					a, b := pmetric.NewNumberDataPoint(), pmetric.NewNumberDataPoint()
					dps.At(0).CopyTo(a)
					dps.At(1).CopyTo(b)
					b.CopyTo(dps.At(0))
					a.CopyTo(dps.At(1))
				}
			}
		}
	}
}

// otherMetric makes m an explicit-bucket histogram (twice as likely as the
// others), an exponential histogram or a summary.
func otherMetric(r *rand.Rand, m pmetric.Metric, req int) {
	at := pcommon.NewTimestampFromTime(t0.Add(time.Duration(req)*10*time.Second + time.Duration(r.IntN(10_000))*time.Millisecond))
	switch r.IntN(4) {
	case 0, 3:
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporality(1 + r.IntN(2)))
		bounds := [][]float64{{0.1, 1}, {}, {0.005, 0.25, 2.5, 10}, {1, 2, math.Inf(1)}}[r.IntN(4)]
		for i := range 1 + r.IntN(3) {
			dp := h.DataPoints().AppendEmpty()
			dp.SetTimestamp(at)
			if r.IntN(2) == 0 {
				dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Duration(r.IntN(3)) * time.Minute)))
			}
			dp.ExplicitBounds().FromRaw(bounds)
			counts := make([]uint64, len(bounds)+1)
			for j := range counts {
				counts[j] = uint64(r.IntN(4))
			}
			switch r.IntN(10) {
			case 0:
				counts = nil // no buckets: all count as zero
			case 1:
				counts = counts[1:] // one short: the point is rejected
			}
			dp.BucketCounts().FromRaw(counts)
			dp.SetCount(uint64(r.IntN(20)))
			if r.IntN(4) > 0 {
				dp.SetSum(float64(r.IntN(100)) / 10)
			}
			if r.IntN(3) == 0 {
				dp.SetMin(0.001)
				dp.SetMax(12)
			}
			if r.IntN(12) == 0 {
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			}
			if r.IntN(20) == 0 { // the metric is then decoded
				dp.Exemplars().AppendEmpty().SetDoubleValue(1)
			}
			dp.Attributes().PutStr("route", fmt.Sprint("/h", i))
			if r.IntN(3) == 0 {
				dp.Attributes().PutInt("code", int64(200+r.IntN(2)))
			}
		}
	case 1:
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(at)
		dp.SetScale(2)
		dp.Positive().BucketCounts().FromRaw([]uint64{1, uint64(r.IntN(4))})
		dp.SetCount(1 + dp.Positive().BucketCounts().At(1))
		dp.SetSum(3)
	default:
		dp := m.SetEmptySummary().DataPoints().AppendEmpty()
		dp.SetTimestamp(at)
		dp.SetCount(uint64(r.IntN(9)))
		dp.SetSum(1.5)
		q := dp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.5)
		q.SetValue(float64(r.IntN(5)))
	}
}

// duplicateKeys renames every attribute key "route" to "shard" in a body, so
// that points carrying both come with one key twice: pdata keeps both, and so
// must the wire path's labels.
func duplicateKeys(body []byte) ([]byte, bool) {
	// A KeyValue's key is field 1, length 5: 0a 05 "route".
	out := bytes.ReplaceAll(body, []byte("\x0a\x05route"), []byte("\x0a\x05shard"))
	return out, !bytes.Equal(out, body)
}

// TestWireMetadataFollowsLatest: a metric's metadata is the latest request's
// on the wire too, when two sources send it with different descriptions by
// turns (each source's metric header is remembered, see family).
func TestWireMetadataFollowsLatest(t *testing.T) {
	db, _ := openTest(t, &Options{OutOfOrderWindow: time.Hour})
	send := func(host, help string, sec int) {
		md := pmetric.NewMetrics()
		m := newResource(md, map[string]string{"service.name": "api", "host.name": host}).AppendEmpty()
		m.SetName("queue.depth")
		m.SetDescription(help)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(sec))
		dp.SetIntValue(1)
		body, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		w, ok := otlpwire.Scan(body, 128)
		if !ok {
			t.Fatal("Scan refused the request")
		}
		if _, _, err := db.WriteMetricsWire(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		if got := db.Metadata()["queue_depth"].Help; got != help {
			t.Fatalf("after %s's request: help %q, want %q", host, got, help)
		}
	}
	send("a", "items waiting", 1)
	send("b", "queued items", 2)
	send("a", "items waiting", 3)
	send("a", "items waiting", 4)
	send("b", "queued items", 5)
}
