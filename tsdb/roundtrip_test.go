package tsdb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// randomFloat draws from the values that break decimal encodings: NaN with
// payloads, the stale marker, infinities, subnormals, mixed magnitudes and full
// precision.
func randomFloat(r *rand.Rand) float64 {
	switch r.IntN(12) {
	case 0:
		return math.Float64frombits(0x7ff8000000000000 | r.Uint64N(1<<51)) // NaN with payload
	case 1:
		return math.Float64frombits(value.StaleNaN)
	case 2:
		return math.Inf(1 - 2*r.IntN(2))
	case 3:
		return math.Float64frombits(r.Uint64N(1 << 52)) // subnormal
	case 4:
		return 1e300 * float64(1-2*r.IntN(2))
	case 5:
		return tenthPlusFifth // 0.30000000000000004
	case 6:
		return math.Float64frombits(r.Uint64()) // any bits at all
	case 7:
		return math.Copysign(0, -1)
	case 8:
		return float64(r.IntN(1000)) // decimal-friendly
	default:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	}
}

// tenthPlusFifth is 0.1 + 0.2 in float64 arithmetic (the constant expression
// would be exactly 0.3).
var tenthPlusFifth = func(a, b float64) float64 { return a + b }(0.1, 0.2)

func sameSamples(a, b []sample) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d samples, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i].t != b[i].t || a[i].st != b[i].st || math.Float64bits(a[i].v) != math.Float64bits(b[i].v) {
			return fmt.Errorf("sample %d: got t=%d st=%d v=%x, want t=%d st=%d v=%x", i,
				a[i].t, a[i].st, math.Float64bits(a[i].v), b[i].t, b[i].st, math.Float64bits(b[i].v))
		}
	}
	return nil
}

// TestFloatRoundTrip writes random float series and checks that the head, the WAL
// replay, the partitions and a merged partition all return them bit for bit.
func TestFloatRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed))
			dir := t.TempDir()
			opts := &Options{MaintenanceInterval: -1, Retention: -1, OutOfOrderWindow: -1}
			db, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]sample{}
			var batch []seriesSamples
			for s := 0; s < 20; s++ {
				lset := labels.FromStrings("__name__", "m", "s", fmt.Sprint(s))
				n := 1 + r.IntN(3000)
				ss := make([]sample, n)
				t0 := int64(r.IntN(1e6)) * 1000
				mixed := r.IntN(2) == 0
				for i := range ss {
					t0 += 1 + int64(r.IntN(30000))
					ss[i] = sample{t: t0, v: randomFloat(r)}
					if !mixed {
						ss[i].v = float64(i) * 0.5 // a decimal-friendly series
					}
					if r.IntN(4) == 0 {
						ss[i].st = t0 - int64(r.IntN(100000))
					}
				}
				want[lset.String()] = ss
				batch = append(batch, seriesSamples{lset: lset, samples: ss})
			}
			if rej, reason, err := db.appendBatch(batch); err != nil || rej != 0 {
				t.Fatalf("append: rejected %d (%s), err %v", rej, reason, err)
			}
			check := func(stage string, db *DB) {
				t.Helper()
				got := readAll(t, db)
				if len(got) != len(want) {
					t.Fatalf("%s: %d series, want %d", stage, len(got), len(want))
				}
				for k, w := range want {
					if err := sameSamples(got[k], w); err != nil {
						t.Fatalf("%s: series %s: %v", stage, k, err)
					}
				}
			}
			check("head", db)
			db.Close()
			if db, err = Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			check("wal replay", db)
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			if db.Stats().HeadSamples != 0 || db.Stats().Partitions == 0 {
				t.Fatalf("flush left %+v", db.Stats())
			}
			check("partitions", db)
			db.Close()
			if db, err = Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			check("reopened partitions", db)
			db.mu.RLock()
			parts := append([]*partition(nil), db.parts...)
			db.mu.RUnlock()
			if err := db.mergeParts(parts); err != nil {
				t.Fatal(err)
			}
			check("merged partition", db)
		})
	}
}

func TestFloatBlockEdgeValues(t *testing.T) {
	cases := map[string][]float64{
		"nan":            {math.NaN()},
		"stale":          {math.Float64frombits(value.StaleNaN), 1},
		"inf":            {math.Inf(1), math.Inf(-1), 0},
		"huge beside 1":  {1e300, 1},
		"0.1+0.2":        {tenthPlusFifth, 0.3},
		"negative zero":  {math.Copysign(0, -1), 0},
		"subnormal":      {5e-324, 1},
		"decimal series": {1, 2, 3, 4.5, 6},
		"constant":       {7, 7, 7},
	}
	for name, vs := range cases {
		t.Run(name, func(t *testing.T) {
			ts := make([]int64, len(vs))
			for i := range ts {
				ts[i] = int64(i) * 1000
			}
			b := appendFloatBlock(nil, ts, nil, vs)
			got, err := decodeFloatBlock(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range vs {
				if math.Float64bits(got[i].v) != math.Float64bits(vs[i]) || got[i].t != ts[i] {
					t.Fatalf("value %d: got %x at %d, want %x at %d", i, math.Float64bits(got[i].v), got[i].t, math.Float64bits(vs[i]), ts[i])
				}
			}
		})
	}
}
