package tsdb

import (
	"math"
	"slices"
	"sort"
)

// partRefs holds a partition's chunk references by DB series id, for the life of
// the partition: every partition keeps one entry per series it holds, so the
// memory of stored data is mostly these. An entry takes 28 bytes (the id, and
// a packedRef) where a map[uint32]chunkRef took about 100; the frames, which
// many neighbouring series share, are listed once.
type partRefs struct {
	base   int64       // times are stored as offsets from it (the partition's mint)
	ids    []uint32    // sorted
	refs   []packedRef // refs[i] is the chunk of series ids[i]
	frames []frameLoc
	// wide holds the rare entries a packedRef cannot carry (times more than
	// 49 days from base, or more than 2³² samples); nil when there are none.
	wide map[uint32]chunkRef
}

// frameLoc is one frame record of a partition file, checksum included.
type frameLoc struct{ off, length uint64 }

// packedRef is a chunkRef in 24 bytes: its frame as an index into
// partRefs.frames, its times as offsets from partRefs.base.
type packedRef struct {
	frame        uint32
	inOff, inLen uint32
	dmin, dmax   uint32
	n            uint32
}

// newPartRefs indexes refs[i], the chunk of series ids[i]; the refs of one
// frame are consecutive, as in a partition's index. base is the partition's
// mint.
func newPartRefs(base int64, ids []uint32, refs []chunkRef) *partRefs {
	pr := &partRefs{base: base}
	order := make([]int32, len(ids))
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
	frameOf := make([]uint32, len(refs))
	for i, r := range refs {
		if n := len(pr.frames); n == 0 || pr.frames[n-1] != (frameLoc{r.off, r.length}) {
			pr.frames = append(pr.frames, frameLoc{r.off, r.length})
		}
		frameOf[i] = uint32(len(pr.frames) - 1)
	}
	pr.frames = slices.Clip(pr.frames)
	pr.ids = make([]uint32, 0, len(ids))
	pr.refs = make([]packedRef, 0, len(ids))
	for _, i := range order {
		r := refs[i]
		dmin, dmax := uint64(r.mint-base), uint64(r.maxt-base)
		if r.mint < base || r.maxt < r.mint || dmax > math.MaxUint32 || r.n > math.MaxUint32 {
			if pr.wide == nil {
				pr.wide = map[uint32]chunkRef{}
			}
			pr.wide[ids[i]] = r
			continue
		}
		pr.ids = append(pr.ids, ids[i])
		pr.refs = append(pr.refs, packedRef{frame: frameOf[i], inOff: r.inOff, inLen: r.inLen, dmin: uint32(dmin), dmax: uint32(dmax), n: uint32(r.n)})
	}
	return pr
}

// get returns the chunk of series id, if the partition holds it.
func (pr *partRefs) get(id uint32) (chunkRef, bool) {
	i, ok := slices.BinarySearch(pr.ids, id)
	if !ok {
		if r, ok := pr.wide[id]; ok {
			return r, true
		}
		return chunkRef{}, false
	}
	p := &pr.refs[i]
	f := pr.frames[p.frame]
	return chunkRef{off: f.off, length: f.length, inOff: p.inOff, inLen: p.inLen,
		mint: pr.base + int64(p.dmin), maxt: pr.base + int64(p.dmax), n: uint64(p.n)}, true
}

// has reports whether the partition holds series id.
func (pr *partRefs) has(id uint32) bool {
	if _, ok := slices.BinarySearch(pr.ids, id); ok {
		return true
	}
	_, ok := pr.wide[id]
	return ok
}

// len returns the number of series the partition holds.
func (pr *partRefs) len() int { return len(pr.ids) + len(pr.wide) }

// each calls fn with the id of every series the partition holds.
func (pr *partRefs) each(fn func(id uint32)) {
	for _, id := range pr.ids {
		fn(id)
	}
	for id := range pr.wide {
		fn(id)
	}
}
