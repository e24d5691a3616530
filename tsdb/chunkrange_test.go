package tsdb

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A read of part of a series chunk gets exactly the samples of the whole chunk
// inside the range, and skips the float blocks outside it.
func TestSeriesChunkRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for round := range 200 {
		// Six hours at a random interval, with gaps, and in some rounds
		// stretches of histograms between the floats.
		var ss []sample
		step := int64(1+rng.IntN(120)) * 1000
		hist := round%4 == 0
		for ts := int64(1_700_000_000_000); ts < 1_700_000_000_000+6*3_600_000; ts += step {
			if rng.IntN(50) == 0 {
				ts += int64(rng.IntN(3)) * 3_600_000
			}
			s := sample{t: ts, v: rng.NormFloat64()}
			if round%3 == 0 {
				s.st = ts - 1000
			}
			if hist && (ts/3_600_000)%3 == 1 {
				s = sample{t: ts, fh: testHistogram()}
			}
			ss = append(ss, s)
		}
		chunk := appendSeriesChunk(nil, ss)
		all, err := decodeSeriesChunk(nil, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(ss) {
			t.Fatalf("round %d: decoded %d samples, wrote %d", round, len(all), len(ss))
		}
		for i := range all {
			if all[i].t != ss[i].t || all[i].st != ss[i].st || all[i].fh == nil && all[i].v != ss[i].v {
				t.Fatalf("round %d: sample %d = %+v, want %+v", round, i, all[i], ss[i])
			}
		}
		for range 20 {
			lo := ss[0].t - 60_000 + rng.Int64N(ss[len(ss)-1].t-ss[0].t+120_000)
			hi := lo + rng.Int64N(2*3_600_000)
			got, err := decodeSeriesChunkRange(nil, chunk, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			out := func(s sample) bool { return s.t < lo || s.t > hi }
			want := slices.DeleteFunc(slices.Clone(all), out)
			got = slices.DeleteFunc(got, out)
			if len(got) != len(want) {
				t.Fatalf("round %d [%d, %d]: %d samples, want %d", round, lo, hi, len(got), len(want))
			}
			for i := range got {
				if got[i].t != want[i].t || (got[i].fh == nil) != (want[i].fh == nil) ||
					got[i].fh == nil && got[i].v != want[i].v {
					t.Fatalf("round %d [%d, %d]: sample %d = %+v, want %+v", round, lo, hi, i, got[i], want[i])
				}
			}
		}
	}

	// One float every 15 s for a day: a read of the last hour decodes one or
	// two of its blocks, not all 5,760 samples.
	var day []sample
	for i := range 5760 {
		day = append(day, sample{t: int64(i) * 15_000, v: float64(i)})
	}
	chunk := appendSeriesChunk(nil, day)
	if chunk[0] != runFloatSpan {
		t.Fatalf("a day of samples starts with a run of kind %d, want %d", chunk[0], runFloatSpan)
	}
	got, err := decodeSeriesChunkRange(nil, chunk, 23*3_600_000, 24*3_600_000)
	if err != nil {
		t.Fatal(err)
	}
	if most := 2 * floatRunSpan / 15_000; len(got) < 240 || len(got) > most {
		t.Errorf("last hour of a day decoded %d samples, want 240 to %d", len(got), most)
	}
	ref := chunkRef{n: 5760, mint: 0, maxt: 5759 * 15_000}
	if c := chunkReadCap(ref, 23*3_600_000, 24*3_600_000); c < len(got) || c > 3*len(got) {
		t.Errorf("chunkReadCap for the last hour = %d, decoded %d", c, len(got))
	}
}

// One blockEncoder reused across series, as a partition write does, encodes
// each exactly as a fresh one would: nothing of one series leaks into the next.
func TestBlockEncoderReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var shared blockEncoder
	for round := range 300 {
		n := 1 + rng.IntN(2000)
		if round%7 == 0 {
			n = 1
		}
		step := int64(1+rng.IntN(300)) * 1000
		ss := make([]sample, n)
		for i := range ss {
			ss[i] = sample{t: int64(i) * step, v: float64(rng.IntN(1000)) / 10}
			switch round % 5 {
			case 1:
				ss[i].v = rng.NormFloat64() // not decimal: the XOR column
			case 2:
				ss[i].st = ss[i].t - 1000
			case 3:
				if i%500 > 400 {
					ss[i].fh = testHistogram()
				}
			}
		}
		got := shared.appendSeriesChunk(nil, ss)
		if want := appendSeriesChunk(nil, ss); !slices.Equal(got, want) {
			t.Fatalf("round %d (%d samples): a reused encoder wrote %d bytes, a fresh one %d", round, n, len(got), len(want))
		}
	}
}
