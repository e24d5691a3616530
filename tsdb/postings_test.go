package tsdb

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// TestPostingsMatchModel adds and removes random ids under a few label values
// (so that lists go from none to one id to a bitmap and back) and checks every
// list against a plain set, through orInto, removeFrom and intersects, and that
// values and names with nothing left are gone.
func TestPostingsMatchModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := newPostings()
	model := map[[2]string]map[uint32]bool{}
	names, values := []string{"a", "b"}, []string{"x", "y", "z"}
	for step := range 20_000 {
		key := [2]string{names[r.IntN(2)], values[r.IntN(3)]}
		id := uint32(r.IntN(6))
		if model[key] == nil {
			model[key] = map[uint32]bool{}
		}
		if r.IntN(2) == 0 {
			p.add(key[0], key[1], id)
			model[key][id] = true
		} else {
			p.remove(key[0], key[1], id)
			delete(model[key], id)
		}
		for k, ids := range model {
			l, ok := p[k[0]][k[1]]
			if ok != (len(ids) > 0) {
				t.Fatalf("step %d: %s=%s present %v, model holds %d ids", step, k[0], k[1], ok, len(ids))
			}
			got := roaring.New()
			l.orInto(got)
			var want []uint32
			for id := range ids {
				want = append(want, id)
			}
			slices.Sort(want)
			if !slices.Equal(got.ToArray(), want) {
				t.Fatalf("step %d: %s=%s holds %v, want %v", step, k[0], k[1], got.ToArray(), want)
			}
			all := roaring.BitmapOf(0, 1, 2, 3, 4, 5)
			l.removeFrom(all)
			if all.GetCardinality() != uint64(6-len(want)) || all.Intersects(got) {
				t.Fatalf("step %d: removeFrom left %v of 0–5 for %v", step, all.ToArray(), want)
			}
			for id := range uint32(6) {
				if l.intersects(roaring.BitmapOf(id)) != ids[id] {
					t.Fatalf("step %d: %s=%s intersects {%d} is %v", step, k[0], k[1], id, !ids[id])
				}
			}
		}
		for name, m := range p {
			if len(m) == 0 {
				t.Fatalf("step %d: name %s kept with no value", step, name)
			}
		}
	}
}
