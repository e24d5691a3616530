package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// headModel is the plain reference the compressed head must agree with: the
// latest sample written for each timestamp.
type headModel map[int64]sample

func (m headModel) window(mint, maxt int64) []sample {
	var out []sample
	for t, s := range m {
		if t >= mint && t <= maxt {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

// checkHead compares h with the model over the whole range and a few windows.
func checkHead(t *testing.T, h *head, m headModel, r *rand.Rand) {
	t.Helper()
	if h.n != len(m) {
		t.Fatalf("head counts %d samples, want %d", h.n, len(m))
	}
	if err := sameHeadSamples(h.samples(nil, math.MinInt64, math.MaxInt64), m.window(math.MinInt64, math.MaxInt64)); err != nil {
		t.Fatalf("all samples: %v", err)
	}
	if len(m) == 0 {
		return
	}
	for range 3 {
		a, b := r.Int64N(1_000_000)-500_000, r.Int64N(1_000_000)-500_000
		lo, hi := min(a, b), max(a, b)
		if err := sameHeadSamples(h.samples(nil, lo, hi), m.window(lo, hi)); err != nil {
			t.Fatalf("window [%d, %d]: %v", lo, hi, err)
		}
	}
	want := m.window(math.MinInt64, math.MaxInt64)
	if got := h.minT(); got != want[0].t {
		t.Fatalf("minT %d, want %d", got, want[0].t)
	}
	for _, s := range want[:min(len(want), 5)] {
		if !h.contains(s.t) {
			t.Fatalf("contains(%d) is false", s.t)
		}
	}
}

func sameHeadSamples(got, want []sample) error {
	if err := sameSamples(got, want); err != nil {
		return err
	}
	for i := range got {
		if (got[i].fh == nil) != (want[i].fh == nil) || got[i].fh != nil && !got[i].fh.Equals(want[i].fh) {
			return fmt.Errorf("sample %d at %d: histogram %v, want %v", i, got[i].t, got[i].fh, want[i].fh)
		}
	}
	return nil
}

// TestHeadMatchesModel writes random in-order, out-of-order, rewritten,
// histogram and extreme samples into a head and checks it against the model.
func TestHeadMatchesModel(t *testing.T) {
	cases := []struct {
		name                 string
		n                    int
		outOfOrder, rewrites int // in 100
		histograms           int // in 100
		extremeTimes         bool
	}{
		{name: "in order", n: 2000},
		{name: "some out of order", n: 2000, outOfOrder: 5},
		{name: "rewrites", n: 1000, rewrites: 20},
		{name: "mostly out of order", n: 500, outOfOrder: 80, rewrites: 10},
		{name: "histograms mixed in", n: 600, histograms: 10, outOfOrder: 5},
		{name: "extreme timestamps", n: 300, extremeTimes: true},
	}
	for _, c := range cases {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprint(c.name, "/", seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 42))
				h, m := new(head), headModel{}
				tm := int64(-400_000)
				for i := 0; i < c.n; i++ {
					tm += 1 + r.Int64N(1000)
					s := sample{t: tm, v: randomFloat(r)}
					switch p := r.IntN(100); {
					case p < c.outOfOrder:
						s.t = tm - r.Int64N(50_000)
					case p < c.outOfOrder+c.rewrites && len(m) > 0:
						s.t = tm - 1 - r.Int64N(3)*1000
					}
					if c.extremeTimes && r.IntN(10) == 0 {
						s.t = []int64{math.MinInt64, math.MaxInt64, math.MinInt64 / 2, math.MaxInt64 - 1}[r.IntN(4)]
					}
					if r.IntN(3) == 0 {
						s.st = s.t - r.Int64N(1<<40)
					}
					if r.IntN(100) < c.histograms {
						s.fh, s.v = testHistogram(), 0
					}
					_, had := m[s.t]
					if added := h.insert(s); added == had {
						t.Fatalf("insert %d: added %v, had %v", i, added, had)
					}
					m[s.t] = s
					if i%97 == 0 {
						checkHead(t, h, m, r)
					}
				}
				checkHead(t, h, m, r)
			})
		}
	}
}

// TestHeadDecimals writes short decimals of every size and precision (the
// values the head encodes as decimal differences), mixed with values that are
// not decimals, and checks that they come back bit for bit, and that a
// two-decimal counter takes the few bits a sample that decimal differences
// promise.
func TestHeadDecimals(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for run := range 200 {
		h, m := new(head), headModel{}
		k := r.IntN(16)
		mant := r.Int64N(1<<53) - 1<<52
		for i := range 1000 {
			switch p := r.IntN(100); {
			case p < 3: // more digits than so far
				k = min(k+1+r.IntN(3), 15)
			case p < 5:
				k = r.IntN(16)
			}
			step := []int64{0, 1, 50, 5000, 1 << 20, 1 << 30, 1 << 52}[r.IntN(7)]
			mant = max(min(mant+r.Int64N(2*step+1)-step, 1<<53-1), -(1<<53 - 1))
			v := float64(mant) / pow10[k]
			switch r.IntN(40) {
			case 0:
				v = randomFloat(r)
			case 1:
				v = math.Copysign(0, -1)
			case 2:
				v = float64(1<<53 + 2*r.Int64N(1000)) // an integer beyond a mantissa
			}
			s := sample{t: int64(i) * 15_000, v: v}
			h.insert(s)
			m[s.t] = s
		}
		if err := sameHeadSamples(h.samples(nil, math.MinInt64, math.MaxInt64), m.window(math.MinInt64, math.MaxInt64)); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}

	h := new(head)
	c := 123456.78
	for i := range 2400 {
		c = math.Round((c+r.Float64()*5)*100) / 100
		h.insert(sample{t: int64(i) * 15_000, v: c})
	}
	bytes, samples := 0, 0
	for _, c := range h.sealed {
		bytes, samples = bytes+len(c.b), samples+c.n
	}
	if perSample := float64(bytes) / float64(samples); perSample > 2.6 {
		t.Errorf("a two-decimal counter takes %.2f bytes a sample in the head, want at most 2.6", perSample)
	}
}

// FuzzHead inserts samples decoded from the input (timestamp delta, start
// timestamp, value bits) and checks the head against the model.
func FuzzHead(f *testing.F) {
	seed := func(vals ...int64) []byte {
		var b []byte
		for _, v := range vals {
			b = binary.AppendVarint(b, v)
		}
		return b
	}
	f.Add(seed(1000, 0, 0x3ff0000000000000, 1000, 0, 0x7ff0000000000002, -5, 7, 0x7ff8000000000001))
	f.Add(seed(math.MaxInt64, 1, 1, math.MinInt64, 2, 2, 0, 3, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, m := new(head), headModel{}
		var tm int64
		for len(b) > 0 {
			var vals [3]int64
			for i := range vals {
				v, n := binary.Varint(b)
				if n <= 0 {
					b = nil
					break
				}
				vals[i], b = v, b[n:]
			}
			tm += vals[0]
			s := sample{t: tm, st: vals[1], v: math.Float64frombits(uint64(vals[2]))}
			if vals[2]&1 == 1 { // a decimal, as most exported values are
				s.v = float64(vals[2]>>5) / pow10[vals[2]>>1&15]
			}
			_, had := m[s.t]
			if added := h.insert(s); added == had {
				t.Fatalf("insert at %d: added %v, had %v", s.t, added, had)
			}
			m[s.t] = s
		}
		if err := sameHeadSamples(h.samples(nil, math.MinInt64, math.MaxInt64), m.window(math.MinInt64, math.MaxInt64)); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkHeadInsert appends one scrape at a time to the heads of 50 node
// hosts' series (about 15,000, far more than the caches hold), as ingest does,
// and reports the head's bytes per sample. The heads are dropped every 720
// scrapes (3 h), as a flush would.
func BenchmarkHeadInsert(b *testing.B) {
	var values []func(int64) float64
	var offs []int64
	for h := range 50 {
		host := newNodeHost(h)
		_, vs := host.promSeries()
		values = append(values, vs...)
		for range vs {
			offs = append(offs, host.offsetMs)
		}
	}
	heads := make([]*head, len(values))
	scrape := make([]float64, len(values))
	bytes, samples := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		step := int64(n % 720)
		for i := range scrape {
			scrape[i] = values[i](step)
		}
		if step == 0 {
			for i := range heads {
				bytes += heads[i].bytes()
				heads[i] = new(head)
			}
		}
		b.StartTimer()
		for i, h := range heads {
			h.insert(sample{t: nodeT0 + step*nodeStepMs + offs[i], v: scrape[i]})
		}
		samples += len(heads)
	}
	b.StopTimer()
	for _, h := range heads {
		bytes += h.bytes()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
	b.ReportMetric(float64(bytes)/float64(samples), "head-bytes/sample")
}

// BenchmarkHeadSamples reads back 3 h of one node host's series (303 heads of
// 720 samples) as a flush does.
func BenchmarkHeadSamples(b *testing.B) {
	host := newNodeHost(7)
	_, values := host.promSeries()
	heads := make([]*head, len(values))
	for i := range heads {
		heads[i] = new(head)
		for step := range int64(720) {
			heads[i].insert(sample{t: nodeT0 + step*nodeStepMs + host.offsetMs, v: values[i](step)})
		}
	}
	var buf []sample
	b.ResetTimer()
	for range b.N {
		for _, h := range heads {
			buf = h.samples(buf[:0], math.MinInt64, math.MaxInt64)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(heads)*720), "ns/sample")
}
