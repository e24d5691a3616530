package logindex

import (
	"context"
	"errors"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// Counting every record of a time range.
//
// A query every record matches is counted from the time terms of the
// granules its range holds whole: the sum of a term's frequencies is the
// number of records in its granule, and its histogram from those sums split
// by the level of each block. Bleve segments never change, so the sums
// of the day and hour terms are kept per segment (termSums) and a count
// reads the postings only of the segments written since, of the finer terms
// at the range's ends, and of the blocks in the granules it cuts.

// termSums caches, per segment of one shard, the sums of the frequencies of
// day and hour terms. An entry goes when its segment is no longer in the
// shard's snapshots (merged away).
type termSums struct {
	mu     sync.Mutex
	segs   map[segment.Segment]map[fieldTerm]uint64
	levels map[segment.Segment]*segmentLevels
}

// cachedLevel reports whether the sums of t's field are cached: the day and
// hour terms, of which a segment has at most 25.
func cachedLevel(t fieldTerm) bool { return t.field == "td" || t.field == "th" }

// termSum returns the sum of the frequencies of t's postings in sr: the
// records of its granule.
func (sr *shardReader) termSum(ctx context.Context, t fieldTerm) (uint64, error) {
	snap, ok := sr.r.(*scorch.IndexSnapshot)
	if !ok || sr.sums == nil {
		list, err := sr.termList(ctx, t.field, t.term)
		var n uint64
		for _, c := range list {
			n += uint64(c.n)
		}
		return n, err
	}
	var total uint64
	for _, ss := range snap.Segments() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		seg := ss.Segment()
		deleted := ss.Deleted()
		cache := cachedLevel(t) && (deleted == nil || deleted.IsEmpty())
		if cache {
			if n, ok := sr.sums.get(seg, t); ok {
				total += n
				continue
			}
		}
		n, err := segmentTermSum(seg, t, ss)
		if err != nil {
			return 0, err
		}
		if cache {
			sr.sums.put(seg, t, n)
		}
		total += n
	}
	if cachedLevel(t) {
		sr.sums.keep(snap.Segments())
	}
	return total, nil
}

// segmentTermSum sums the frequencies of t's postings in one segment, less
// its deleted documents.
func segmentTermSum(seg segment.Segment, t fieldTerm, ss *scorch.SegmentSnapshot) (uint64, error) {
	d, err := seg.Dictionary(t.field)
	if err != nil {
		return 0, err
	}
	pl, err := d.PostingsList([]byte(t.term), ss.Deleted(), nil)
	if err != nil {
		return 0, err
	}
	it := pl.Iterator(true, false, false, nil)
	var n uint64
	for {
		p, err := it.Next()
		if err != nil {
			return 0, err
		}
		if p == nil {
			return n, nil
		}
		n += p.Frequency()
	}
}

func (c *termSums) get(seg segment.Segment, t fieldTerm) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.segs[seg][t]
	return n, ok
}

func (c *termSums) put(seg segment.Segment, t fieldTerm, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.segs == nil {
		c.segs = map[segment.Segment]map[fieldTerm]uint64{}
	}
	if c.segs[seg] == nil {
		c.segs[seg] = map[fieldTerm]uint64{}
	}
	c.segs[seg][t] = n
}

// keep drops the sums of the segments not in live.
func (c *termSums) keep(live []*scorch.SegmentSnapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.segs) <= len(live) && len(c.levels) <= len(live) {
		return
	}
	in := make(map[segment.Segment]bool, len(live))
	for _, ss := range live {
		in[ss.Segment()] = true
	}
	for seg := range c.segs {
		if !in[seg] {
			delete(c.segs, seg)
		}
	}
	for seg := range c.levels {
		if !in[seg] {
			delete(c.levels, seg)
		}
	}
}

// countAll counts the records of the reader's shard of p in [lo, hi), for a
// query every record matches: the records of the granules the range holds
// whole, from the terms' sums, less those of the blocks with records in the
// granules it cuts, which are returned to be read whole.
func (sr *shardReader) countAll(ctx context.Context, p *partition, lo, hi int64) (uint64, []blockHit, error) {
	it, et, err := sr.timeTerms(lo, hi, p.day)
	if err != nil {
		return 0, nil, err
	}
	var total uint64
	for _, t := range it {
		n, err := sr.termSum(ctx, t)
		if err != nil {
			return 0, nil, err
		}
		total += n
	}
	if len(et) == 0 {
		return total, nil, nil
	}
	edges, err := sr.union(ctx, et)
	if err != nil || len(edges) == 0 {
		return total, nil, err
	}
	docs := make([]uint64, len(edges))
	for i, c := range edges {
		docs[i] = c.doc
	}
	inner, sizes := make([]int32, len(docs)), make([]int32, len(docs))
	err = sr.timeInto(ctx, lo, hi, p.day, docs, func(i int, n int32) { inner[i] += n }, func(int, int32) {})
	if err == nil {
		err = sr.eachPosting(ctx, "td", levelTerm(int64(p.day)), docs, func(i int, n int32) { sizes[i] = n })
	}
	if err != nil {
		return 0, nil, err
	}
	open := make([]blockHit, 0, len(docs))
	for i, doc := range docs {
		size := sizes[i]
		total -= uint64(inner[i])
		match := bounds{inner[i], min(size, inner[i]+edges[i].n)}
		open = append(open, blockHit{p: p, sr: sr, doc: doc, size: size, query: bounds{size, size}, match: match})
	}
	return total, open, nil
}

// A histogram of every record of a range splits the records of each granule
// by level: per segment, each block's level is kept (one byte a block), and
// the level sums of the day, hour and 5-minute terms with the other sums.

// levelSums are a term's sums by level, in levelNames order.
type levelSums [len(levelNames)]uint64

// segmentLevels caches, per segment, its blocks' levels (index in
// levelNames, noLevel for none) and the level sums of day, hour and 5-minute
// terms.
type segmentLevels struct {
	levels []uint8
	sums   map[fieldTerm]levelSums
}

const noLevel = 255

// histogramLevel reports whether t's level sums are cached: the terms down to
// 5 minutes, of which a segment has at most 313.
func histogramLevel(t fieldTerm) bool { return cachedLevel(t) || t.field == "t5" }

// termLevelSums returns the sums of t's frequencies in sr by the level of
// their blocks. Without a segment snapshot it returns false.
func (sr *shardReader) termLevelSums(ctx context.Context, t fieldTerm) (levelSums, bool, error) {
	var total levelSums
	snap, ok := sr.r.(*scorch.IndexSnapshot)
	if !ok || sr.sums == nil {
		return total, false, nil
	}
	for _, ss := range snap.Segments() {
		if err := ctx.Err(); err != nil {
			return total, false, err
		}
		seg := ss.Segment()
		deleted := ss.Deleted()
		cache := histogramLevel(t) && (deleted == nil || deleted.IsEmpty())
		sl := sr.sums.levelsOf(seg)
		if cache && sl != nil {
			if s, ok := sl.sums[t]; ok {
				for i := range total {
					total[i] += s[i]
				}
				continue
			}
		}
		if sl == nil {
			var err error
			if sl, err = segmentBlockLevels(seg, ss); err != nil {
				return total, false, err
			}
			sr.sums.putLevels(seg, sl)
		}
		s, err := segmentLevelSums(seg, ss, t, sl.levels)
		if err != nil {
			return total, false, err
		}
		if cache {
			sr.sums.putLevelSums(seg, t, s)
		}
		for i := range total {
			total[i] += s[i]
		}
	}
	sr.sums.keep(snap.Segments())
	return total, true, nil
}

// segmentBlockLevels reads the level of every block of a segment.
func segmentBlockLevels(seg segment.Segment, ss *scorch.SegmentSnapshot) (*segmentLevels, error) {
	sl := &segmentLevels{levels: make([]uint8, ss.FullSize()), sums: map[fieldTerm]levelSums{}}
	for i := range sl.levels {
		sl.levels[i] = noLevel
	}
	d, err := seg.Dictionary(fieldSev)
	if err != nil {
		return nil, err
	}
	for li, name := range levelNames {
		pl, err := d.PostingsList([]byte(name), ss.Deleted(), nil)
		if err != nil {
			return nil, err
		}
		it := pl.Iterator(false, false, false, nil)
		for {
			p, err := it.Next()
			if err != nil {
				return nil, err
			}
			if p == nil {
				break
			}
			if n := p.Number(); n < uint64(len(sl.levels)) {
				sl.levels[n] = uint8(li)
			}
		}
	}
	return sl, nil
}

// segmentLevelSums sums t's frequencies in one segment by the level of their
// blocks, less its deleted documents.
func segmentLevelSums(seg segment.Segment, ss *scorch.SegmentSnapshot, t fieldTerm, levels []uint8) (levelSums, error) {
	var s levelSums
	d, err := seg.Dictionary(t.field)
	if err != nil {
		return s, err
	}
	pl, err := d.PostingsList([]byte(t.term), ss.Deleted(), nil)
	if err != nil {
		return s, err
	}
	it := pl.Iterator(true, false, false, nil)
	for {
		p, err := it.Next()
		if err != nil {
			return s, err
		}
		if p == nil {
			return s, nil
		}
		if n := p.Number(); n < uint64(len(levels)) && levels[n] != noLevel {
			s[levels[n]] += p.Frequency()
		}
	}
}

func (c *termSums) levelsOf(seg segment.Segment) *segmentLevels {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.levels[seg]
}

func (c *termSums) putLevels(seg segment.Segment, sl *segmentLevels) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.levels == nil {
		c.levels = map[segment.Segment]*segmentLevels{}
	}
	c.levels[seg] = sl
}

func (c *termSums) putLevelSums(seg segment.Segment, t fieldTerm, s levelSums) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sl := c.levels[seg]; sl != nil {
		sl.sums[t] = s
	}
}

// histogramAll counts, by bucket of stepMs from first on and by level, every
// record of the reader's shard of p in [lo, hi), from the level sums of the
// time terms of each bucket. The blocks with records in the granules the range
// cuts are left out of the sums and returned, resolved, to be read whole.
func (sr *shardReader) histogramAll(ctx context.Context, p *partition, lo, hi, first, stepMs int64, add func(bucket int, level string, n uint64)) ([]blockHit, error) {
	if _, ok := sr.r.(*scorch.IndexSnapshot); !ok || sr.sums == nil {
		return nil, errNoSegments
	}
	ds := int64(p.day) * 86_400_000
	blo, bhi := max(lo, ds), min(hi, ds+86_400_000)
	if blo >= bhi {
		return nil, nil
	}
	// The blocks in the cut granules, their sizes and levels.
	_, et, err := sr.timeTerms(blo, bhi, p.day)
	if err != nil {
		return nil, err
	}
	edges, err := sr.union(ctx, et)
	if err != nil {
		return nil, err
	}
	docs := make([]uint64, len(edges))
	for i, c := range edges {
		docs[i] = c.doc
	}
	level := make([]int, len(docs))
	for i := range level {
		level[i] = -1
	}
	for li, name := range levelNames {
		if err := sr.eachPosting(ctx, fieldSev, name, docs, func(i int, _ int32) { level[i] = li }); err != nil {
			return nil, err
		}
	}
	for b := floorDiv(blo-first, stepMs); first+b*stepMs < bhi; b++ {
		inner, _, err := sr.timeTerms(max(blo, first+b*stepMs), min(bhi, first+(b+1)*stepMs), p.day)
		if err != nil {
			return nil, err
		}
		var counts levelSums
		for _, t := range inner {
			s, _, err := sr.termLevelSums(ctx, t)
			if err != nil {
				return nil, err
			}
			for i := range counts {
				counts[i] += s[i]
			}
			// Less the blocks read whole.
			err = sr.eachPosting(ctx, t.field, t.term, docs, func(i int, n int32) {
				if level[i] >= 0 {
					counts[level[i]] -= uint64(n)
				}
			})
			if err != nil {
				return nil, err
			}
		}
		for li, n := range counts {
			if n > 0 {
				add(int(b), levelNames[li], n)
			}
		}
	}
	sizes := make([]int32, len(docs))
	if err := sr.eachPosting(ctx, "td", levelTerm(int64(p.day)), docs, func(i int, n int32) { sizes[i] = n }); err != nil {
		return nil, err
	}
	open := make([]blockHit, len(docs))
	for i, doc := range docs {
		open[i] = blockHit{p: p, sr: sr, doc: doc, size: sizes[i], query: bounds{sizes[i], sizes[i]}, match: bounds{0, sizes[i]}}
	}
	return open, nil
}

// errNoSegments: the index reader is not a scorch snapshot.
var errNoSegments = errors.New("the log index cannot list its segments")
