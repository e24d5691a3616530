package detect

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// StateBytes is the size of one series' detector state.
func TestStateBytes(t *testing.T) {
	if n := unsafe.Sizeof(Detector{}); n > 1024 {
		t.Fatalf("Detector state is %d bytes, over the 1 KiB budget", n)
	}
}

// A Set entry (one watched series: its Detector and the Live engine's note) is
// one allocation, which Go rounds up to a size class: up to 768 bytes it takes
// 768, one byte more takes 896.
func TestEntryBytes(t *testing.T) {
	if n := unsafe.Sizeof(setEntry{}); n > 768 {
		t.Fatalf("a Set entry is %d bytes, over its 768-byte size class", n)
	}
}

// A sample that does not close a bucket reads and writes the entry's time of the
// latest sample and the engine's open bucket only: they must sit in the
// entry's first 64-byte cache line (Go aligns a 768-byte object to 256).
func TestEntryHotFieldsShareALine(t *testing.T) {
	var e setEntry
	end := unsafe.Offsetof(e.note) + unsafe.Offsetof(e.note.agg) + unsafe.Sizeof(e.note.agg)
	if last := unsafe.Offsetof(e.last) + unsafe.Sizeof(e.last); last > 64 || end > 64 {
		t.Fatalf("latest sample time ends at byte %d, open bucket at %d: beyond the first cache line", last, end)
	}
}

// TestNaNDoesNotPoison checks that NaN, ±Inf and out-of-order samples leave the
// state exactly as if they had never arrived.
func TestNaNDoesNotPoison(t *testing.T) {
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	clean, dirty := NewDetector(Options{}), NewDetector(Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		ts := start.Add(time.Duration(i) * time.Minute)
		v := 10 + rng.NormFloat64()
		if i%7 == 3 {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				if r := dirty.Observe(ts.Add(-time.Second), bad); !r.Skipped || r.Score != 0 {
					t.Fatalf("sample %d: %v gave %+v", i, bad, r)
				}
			}
		}
		a, b := clean.Observe(ts, v), dirty.Observe(ts, v)
		if a.Score != b.Score || a.Expected != b.Expected && !(math.IsNaN(a.Expected) && math.IsNaN(b.Expected)) {
			t.Fatalf("sample %d: clean %+v, dirty %+v", i, a, b)
		}
		if r := dirty.Observe(ts.Add(-30*time.Second), v+100); !r.Skipped {
			t.Fatalf("sample %d: out-of-order sample was not skipped", i)
		}
	}
	if *clean != *dirty {
		t.Fatalf("states differ:\nclean %+v\ndirty %+v", *clean, *dirty)
	}
}

func TestScoreRangeAndExplain(t *testing.T) {
	start := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC) // a Tuesday
	d := NewDetector(Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	var alert Result
	for i := 0; i < 3000; i++ {
		ts := start.Add(time.Duration(i) * time.Minute)
		v := 0.45 + 0.03*rng.NormFloat64()
		if i == 2762 { // Tuesday+1 = Wednesday 22:02
			v = 2.4
		}
		r := d.Observe(ts, v)
		if r.Score < 0 || r.Score > 1 || math.IsNaN(r.Score) {
			t.Fatalf("sample %d: score %v", i, r.Score)
		}
		if i == 2762 {
			alert = r
		}
	}
	if alert.Score < AlertScore {
		t.Fatalf("spike scored %v", alert.Score)
	}
	got := alert.Explain("s")
	for _, want := range []string{"value 2.4 s", "expected 0.", "for Wednesday 22:02", "anomalous since 22:02"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation %q lacks %q", got, want)
		}
	}
	if alert.Lower >= alert.Upper || alert.Expected < alert.Lower || alert.Expected > alert.Upper {
		t.Errorf("band %v–%v around %v", alert.Lower, alert.Upper, alert.Expected)
	}
}

func BenchmarkObserve(b *testing.B) {
	d := NewDetector(Options{})
	rng := rand.New(rand.NewPCG(1, 1))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = 100 + 10*math.Sin(float64(i)/50) + rng.NormFloat64()
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Observe(start.Add(time.Duration(i)*time.Minute), vals[i&4095])
	}
	b.ReportMetric(float64(unsafe.Sizeof(Detector{})), "state-bytes")
}

func BenchmarkSetObserve(b *testing.B) {
	const series = 100000
	s := NewSet(&SetOptions{MaxSeries: series})
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := uint64(i % series)
		s.Observe(id, start.Add(time.Duration(i/series)*time.Minute), float64(i%97), Options{})
	}
}

// TestWhiteNoiseQuiet runs the detector over long stretches of plain white noise:
// once it has learned the series (one day), no sample may reach AlertScore.
func TestWhiteNoiseQuiet(t *testing.T) {
	const days = 60
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		d := NewDetector(Options{})
		level := math.Pow(10, float64(seed)-2) // 0.1 … 100
		n, worst := 0, 0.0
		for i := 0; i < days*24*60; i++ {
			ts := start.Add(time.Duration(i) * time.Minute)
			r := d.Observe(ts, level+level/10*rng.NormFloat64())
			if i < 24*60 {
				continue
			}
			worst = math.Max(worst, r.Score)
			if r.Score >= AlertScore {
				n++
				if n <= 3 {
					t.Errorf("seed %d: false alert at %s (score %.2f)", seed, ts.Sub(start), r.Score)
				}
			}
		}
		t.Logf("seed %d: %d false alerts in %d days, highest score %.3f", seed, n, days-1, worst)
	}
}

// TestFarBeyondRange checks the range rule's two gates: a value beyond every
// value seen by rangeFar of the range alerts from gateFar noise widths once the
// history is long, while a value just beyond the range, or far beyond a short
// history, must still pass the ordinary gate.
func TestFarBeyondRange(t *testing.T) {
	for _, c := range []struct {
		name    string
		learn   int     // samples of plain noise before the probe
		beyond  float64 // how far past the highest value, as a fraction of the range
		wantHit bool
	}{
		{"far beyond a long history", 3000, 0.25, true},
		{"just beyond a long history", 3000, 0.03, false},
		{"far beyond a short history", 600, 0.25, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			rng := rand.New(rand.NewPCG(11, 12))
			d := NewDetector(Options{})
			for i := 0; i < c.learn; i++ {
				d.Observe(start.Add(time.Duration(i)*time.Minute), 50+4*rng.NormFloat64())
			}
			lo, hi := d.lo, d.hi
			v := hi + c.beyond*(hi-lo)
			r := d.Observe(start.Add(time.Duration(c.learn)*time.Minute), v)
			width := (r.Upper - r.Expected) / bandWidth
			if z := (v - r.Expected) / width; z >= gateLo {
				t.Fatalf("probe is %.1f noise widths out: the ordinary gate would pass it too", z)
			} else if c.wantHit && z < gateFar+1 {
				t.Fatalf("probe is %.1f noise widths out: below the far gate", z)
			}
			if hit := r.Score >= AlertScore; hit != c.wantHit {
				t.Errorf("value %.2f (range %.2f–%.2f) scored %.2f, want alert %v", v, lo, hi, r.Score, c.wantHit)
			}
		})
	}
}

// TestYoungSeriesRecords checks the rule for records while a series is young
// (fewer than farAfter samples): a rate that climbs steadily to three times its
// first hour's level, quantised as a counter with two decimals makes it, sets a
// new record almost every minute and must not alert; a value far beyond the
// range seen (by twice the range) must, however young the series.
func TestYoungSeriesRecords(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(5, 6))
	d := NewDetector(Options{})
	rate := func(i int) float64 {
		v := 0.0008 + 0.00002*float64(max(0, i-20)) + 0.0003*rng.Float64()
		return math.Round(v*60*100) / 100 / 60 // a counter's two decimals, per second
	}
	for i := range 300 {
		if r := d.Observe(start.Add(time.Duration(i)*time.Minute), rate(i)); r.Score >= AlertScore {
			t.Fatalf("minute %d: a steady climb scored %.2f (range %.5f–%.5f)", i, r.Score, d.lo, d.hi)
		}
	}
	v := d.hi + 2*(d.hi-d.lo)
	if r := d.Observe(start.Add(300*time.Minute), v); r.Score < AlertScore {
		t.Errorf("a value twice the range beyond it scored %.2f", r.Score)
	}
}

// nabOffsetFloor is the mean normalised NAB score over nabOffsets runs, each
// starting the detector nabOffsetStep rows later than the one before (rows
// skipped score 0; all lie in the probationary rows NAB does not score).
var nabOffsetFloor = map[string]float64{
	"standard":           67.05,
	"reward_low_FP_rate": 62.29,
	"reward_low_FN_rate": 71.31,
}

const nabOffsets, nabOffsetStep = 12, 3

// TestNABStartOffsets scores the detector on the NAB corpus as TestNABScore does,
// from nabOffsets different first rows, and checks the mean. One window's best
// score crossing the corpus threshold moves a single run by 1–2 points; the mean
// over start offsets moves much less, so it tells a real change from a lucky one.
func TestNABStartOffsets(t *testing.T) {
	c := loadNAB(t)
	sum := map[string]float64{}
	for k := 0; k < nabOffsets; k++ {
		scores := map[string][]float64{}
		for _, f := range c.Files {
			d := NewDetector(Options{})
			s := make([]float64, len(f.Values))
			for i := k * nabOffsetStep; i < len(f.Values); i++ {
				s[i] = d.Observe(f.Timestamps[i], f.Values[i]).Score
			}
			scores[f.Name] = s
		}
		for _, p := range c.Profiles {
			_, raw, err := c.Optimize(scores, p)
			if err != nil {
				t.Fatal(err)
			}
			sum[p.Name] += c.Normalize(raw, p)
		}
	}
	for _, p := range c.Profiles {
		mean := sum[p.Name] / nabOffsets
		t.Logf("%-18s mean normalised score over %d start offsets %.2f", p.Name, nabOffsets, mean)
		if mean < nabOffsetFloor[p.Name]-0.005 {
			t.Errorf("%s: mean normalised NAB score %.2f fell below the recorded %.2f", p.Name, mean, nabOffsetFloor[p.Name])
		}
	}
}

// TestProfileTrust checks the least-squares trust in the daily profile: near 0
// for a series without a daily cycle (the profile holds only averaged noise),
// near 1 for one with a clear cycle.
func TestProfileTrust(t *testing.T) {
	for _, c := range []struct {
		name     string
		swing    float64 // amplitude of the daily cycle, in noise widths
		min, max float64 // the range the trust must end in
	}{
		{"no daily cycle", 0, 0, 0.3},
		{"daily cycle of 10 noise widths", 10, 0.9, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			rng := rand.New(rand.NewPCG(5, 6))
			d := NewDetector(Options{})
			for i := 0; i < 14*288; i++ {
				ts := start.Add(time.Duration(i) * 5 * time.Minute)
				day := 2 * math.Pi * float64(i%288) / 288
				d.Observe(ts, 100+c.swing*math.Sin(day)+rng.NormFloat64())
			}
			k := max(0, min(1, d.dayXY/d.dayXX))
			if k < c.min || k > c.max {
				t.Errorf("trust in the daily profile %.2f, want %.1f–%.1f", k, c.min, c.max)
			}
		})
	}
}

// learnKnots takes a step of knots i0 and i1 of q as Observe does.
func learnKnots(q []int16, e *uint8, i0, i1 int, x0, x1 float64, r uint64) {
	if !stepKnots(&q[i0], &q[i1], *e, x0, x1, r) {
		growKnots(q, e, i0, i1, x0, x1, r)
	}
}

// TestProfileKnots checks the profiles' 16-bit knots: steps far below the
// quantum add up on average, the quantum grows with the largest knot and
// shrinks back once that knot has, and nothing overflows.
func TestProfileKnots(t *testing.T) {
	q := make([]int16, 4)
	var e uint8
	knot := func(i int) float64 { return float64(q[i]) * quantum(e) }
	learnKnots(q, &e, 0, 1, 1000, 0, 0) // the first quantum leaves room for 8000
	if knot(0) != 1000 || quantum(e) != 1.0/4 {
		t.Fatalf("knot %v in units of %v, want 1000 in units of 1/4", knot(0), quantum(e))
	}
	fitKnots(q, &e)
	if knot(0) != 1000 || quantum(e) != 1.0/32 {
		t.Fatalf("knot %v in units of %v after the fit, want 1000 in units of 1/32", knot(0), quantum(e))
	}
	// 100,000 steps of 0.001, a thirtieth of the quantum or less: rounded to
	// the nearest knot value they would all vanish.
	for i := range 100000 {
		learnKnots(q, &e, 0, 1, 0.001, 0, dither(int64(i)*60e9))
	}
	if k := knot(0); math.Abs(k-1100) > 5 || quantum(e) != 1.0/16 {
		t.Errorf("after 100,000 steps of 0.001 the knot is %.2f in units of %v, want 1100 in units of 1/16", k, quantum(e))
	}
	// A knot a thousand times larger: the quantum grows, the others are kept to
	// within it.
	before := knot(0)
	learnKnots(q, &e, 2, 3, 1e6, -1e6, 0)
	if knot(2) != 1e6 || knot(3) != -1e6 || quantum(e) != 32 || math.Abs(knot(0)-before) > 16 {
		t.Errorf("knots %v, %v, %v in units of %v", knot(0), knot(2), knot(3), quantum(e))
	}
	// Once it is gone, the quantum shrinks back without moving any knot.
	learnKnots(q, &e, 2, 3, -1e6, 1e6, 0)
	was := knot(0)
	fitKnots(q, &e)
	if quantum(e) != 1.0/16 || knot(0) != was {
		t.Errorf("after the large knots went: knot %v in units of %v, want %v in units of 1/16", knot(0), quantum(e), was)
	}
	// Beyond float32's range the knots saturate but stay finite; NaN leaves
	// a knot at zero.
	learnKnots(q, &e, 0, 1, 1e300, math.NaN(), 0)
	if k := knot(0); math.IsInf(k, 0) || k < 1e42 || q[1] != 0 {
		t.Errorf("knots %v, %v after 1e300 and NaN", k, knot(1))
	}
	learnKnots(q, &e, 2, 3, math.Inf(-1), 1e300, 0)
	if k := knot(2); math.IsInf(k, 0) || k > -1e42 || knot(3) < 1e42 {
		t.Errorf("knots %v, %v after -Inf and 1e300", k, knot(3))
	}
	// A profile of zeros has no quantum: the next step sets it afresh.
	clear(q)
	fitKnots(q, &e)
	if e != 0 {
		t.Errorf("a profile of zeros keeps the quantum %v", quantum(e))
	}
	learnKnots(q, &e, 0, 1, 1, 0, 0)
	if knot(0) != 1 || quantum(e) != 1.0/2048 {
		t.Errorf("knot %v in units of %v, want 1 in units of 1/2048", knot(0), quantum(e))
	}
	// Shrinking keeps negative knots.
	learnKnots(q, &e, 2, 3, -3, 0.5, 0)
	learnKnots(q, &e, 0, 1, -1, 0, 0)
	learnKnots(q, &e, 2, 3, 2.5, 0, 0)
	fitKnots(q, &e)
	if knot(2) != -0.5 || knot(3) != 0.5 || quantum(e) != 1.0/32768 {
		t.Errorf("knots %v, %v in units of %v, want -0.5, 0.5 in units of 1/32768", knot(2), knot(3), quantum(e))
	}
}
