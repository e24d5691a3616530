package tsdb

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPartRefsRoundTrip checks that partRefs gives back every chunk reference
// exactly, the rare ones it cannot pack (times far from the base, huge counts)
// included, and nothing for series the partition does not hold.
func TestPartRefsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		n := r.IntN(3000)
		base := r.Int64N(1<<41) - 1<<40
		perm := r.Perm(4 * (n + 1))
		ids := make([]uint32, n)
		refs := make([]chunkRef, n)
		want := map[uint32]chunkRef{}
		off := uint64(8)
		for i := range n {
			ids[i] = uint32(perm[i])
			if i == 0 || r.IntN(8) == 0 { // a new frame
				off += uint64(1 + r.IntN(1<<20))
			}
			ref := chunkRef{off: off, length: uint64(1 + r.IntN(1<<16)), inOff: r.Uint32(), inLen: r.Uint32(), n: uint64(1 + r.IntN(1<<16))}
			ref.mint = base + r.Int64N(86_400_000)
			ref.maxt = ref.mint + r.Int64N(86_400_000)
			switch r.IntN(40) {
			case 0:
				ref.mint = base - 1 - r.Int64N(1000) // before the base
			case 1:
				ref.maxt = base + math.MaxUint32 + 1 + r.Int64N(1000) // too far after it
			case 2:
				ref.n = math.MaxUint32 + 1
			case 3:
				ref.maxt = math.MaxInt64
			}
			if i > 0 && refs[i-1].off == off {
				ref.length = refs[i-1].length // the same frame record
			}
			refs[i], want[ids[i]] = ref, ref
		}
		pr := newPartRefs(base, ids, refs)
		if pr.len() != n {
			t.Fatalf("round %d: len %d, want %d", round, pr.len(), n)
		}
		seen := 0
		pr.each(func(id uint32) {
			seen++
			got, ok := pr.get(id)
			if !ok || got != want[id] || !pr.has(id) {
				t.Fatalf("round %d: series %d: got %+v (%v), want %+v", round, id, got, ok, want[id])
			}
		})
		if seen != n {
			t.Fatalf("round %d: each saw %d series, want %d", round, seen, n)
		}
		for _, id := range perm[n:] {
			if _, ok := pr.get(uint32(id)); ok || pr.has(uint32(id)) {
				t.Fatalf("round %d: series %d found, never added", round, id)
			}
		}
	}
}
