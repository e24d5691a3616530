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

func TestSetBounds(t *testing.T) {
	s := NewSet(&SetOptions{MaxSeries: 3, IdleAfter: time.Hour})
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for id := uint64(1); id <= 3; id++ {
		s.Observe(id, t0, 1, Options{})
	}
	s.Observe(1, t0.Add(time.Minute), 1, Options{}) // 2 is now the least recent
	s.Observe(4, t0.Add(time.Minute), 1, Options{}) // evicts 2
	if s.Len() != 3 || s.Evicted() != 1 {
		t.Fatalf("len %d evicted %d, want 3 and 1", s.Len(), s.Evicted())
	}
	if _, ok := s.series[2]; ok {
		t.Fatal("series 2 should have been evicted first")
	}
	s.Observe(4, t0.Add(2*time.Hour), 1, Options{})
	if n := s.Evict(t0.Add(2 * time.Hour)); n != 2 || s.Len() != 1 {
		t.Fatalf("Evict dropped %d, %d left; want 2 and 1", n, s.Len())
	}
	if _, ok := s.series[4]; !ok {
		t.Fatal("the fresh series was evicted")
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
