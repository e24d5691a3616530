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
// number of records in its granule, split by level through each block's one
// level term. Bleve segments never change, so per segment its blocks' levels
// (a byte a block) and the level sums of its day, hour and 5-minute terms are
// kept (termSums); a count or histogram reads the postings only of the
// segments written since, of the finer terms at the range's ends, and of the
// blocks in the granules the range cuts.

// termSums caches, per segment of one shard, the levels of its blocks and the
// level sums of its day, hour and 5-minute terms. An entry goes when its
// segment is no longer in the shard's snapshots (merged away).
type termSums struct {
	mu     sync.Mutex
	levels map[segment.Segment]*segmentLevels
}

// keep drops the entries of the segments not in live.
func (c *termSums) keep(live []*scorch.SegmentSnapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.levels) <= len(live) {
		return
	}
	in := make(map[segment.Segment]bool, len(live))
	for _, ss := range live {
		in[ss.Segment()] = true
	}
	for seg := range c.levels {
		if !in[seg] {
			delete(c.levels, seg)
		}
	}
}

// snapshot returns the reader's scorch snapshot, whose segments the sums are
// kept by.
func (sr *shardReader) snapshot() (*scorch.IndexSnapshot, error) {
	snap, ok := sr.r.(*scorch.IndexSnapshot)
	if !ok || sr.sums == nil {
		return nil, errors.New("the log index cannot list its segments")
	}
	return snap, nil
}

// cutBlocks returns the blocks with records in the granules [lo, hi) cuts
// within day (in document order) with those records' counts, and their
// sizes.
func (sr *shardReader) cutBlocks(ctx context.Context, lo, hi int64, day int) (docs []uint64, cut, sizes []int32, err error) {
	_, et, err := sr.timeTerms(lo, hi, day)
	if err != nil {
		return nil, nil, nil, err
	}
	list, err := sr.union(ctx, et)
	if err != nil {
		return nil, nil, nil, err
	}
	docs, cut = make([]uint64, len(list)), make([]int32, len(list))
	for i, c := range list {
		docs[i], cut[i] = c.doc, c.n
	}
	sizes, err = sr.blockSizes(ctx, day, docs)
	return docs, cut, sizes, err
}

// countAll counts the records of the reader's shard of p in [lo, hi), for a
// query every record matches: the records of the granules the range holds
// whole, from the terms' sums, less those of the blocks with records in the
// granules it cuts, which are returned to be read whole.
func (sr *shardReader) countAll(ctx context.Context, p *partition, lo, hi int64) (uint64, []blockHit, error) {
	it, _, err := sr.timeTerms(lo, hi, p.day)
	if err != nil {
		return 0, nil, err
	}
	var total uint64
	for _, t := range it {
		s, err := sr.termLevelSums(ctx, t)
		if err != nil {
			return 0, nil, err
		}
		for _, n := range s {
			total += n
		}
	}
	docs, cut, sizes, err := sr.cutBlocks(ctx, lo, hi, p.day)
	if err != nil || len(docs) == 0 {
		return total, nil, err
	}
	inner := make([]int32, len(docs))
	err = sr.timeInto(ctx, lo, hi, p.day, docs, func(i int, n int32) { inner[i] += n }, func(int, int32) {})
	if err != nil {
		return 0, nil, err
	}
	open := make([]blockHit, 0, len(docs))
	for i, doc := range docs {
		size := sizes[i]
		total -= uint64(inner[i])
		match := bounds{inner[i], min(size, inner[i]+cut[i])}
		open = append(open, blockHit{p: p, sr: sr, doc: doc, size: size, query: bounds{size, size}, match: match})
	}
	return total, open, nil
}

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

// cachedTerm reports whether t's level sums are kept: the day, hour and
// 5-minute terms, of which a segment has at most 313.
func cachedTerm(t fieldTerm) bool { return t.field == "td" || t.field == "th" || t.field == "t5" }

// termLevelSums returns the sums of t's frequencies in sr by the level of
// their blocks.
func (sr *shardReader) termLevelSums(ctx context.Context, t fieldTerm) (levelSums, error) {
	var total levelSums
	snap, err := sr.snapshot()
	if err != nil {
		return total, err
	}
	for _, ss := range snap.Segments() {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		seg := ss.Segment()
		deleted := ss.Deleted()
		cache := cachedTerm(t) && (deleted == nil || deleted.IsEmpty())
		sl, s, ok := sr.sums.cached(seg, t)
		if cache && ok {
			for i := range total {
				total[i] += s[i]
			}
			continue
		}
		if sl == nil {
			var err error
			if sl, err = segmentBlockLevels(seg, ss); err != nil {
				return total, err
			}
			sr.sums.putLevels(seg, sl)
		}
		s, err := segmentLevelSums(seg, ss, t, sl.levels)
		if err != nil {
			return total, err
		}
		if cache {
			sr.sums.putLevelSums(seg, t, s)
		}
		for i := range total {
			total[i] += s[i]
		}
	}
	sr.sums.keep(snap.Segments())
	return total, nil
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

// cached returns seg's entry and t's sums in it, if they are kept. The entry's
// maps are read and written under c.mu only: requests share them.
func (c *termSums) cached(seg segment.Segment, t fieldTerm) (sl *segmentLevels, s levelSums, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sl = c.levels[seg]; sl != nil {
		s, ok = sl.sums[t]
	}
	return sl, s, ok
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
// cuts are left out of the sums and returned, unresolved, to be read whole.
func (sr *shardReader) histogramAll(ctx context.Context, p *partition, lo, hi, first, stepMs int64, add func(bucket int, level string, n uint64)) ([]blockHit, error) {
	ds := int64(p.day) * 86_400_000
	blo, bhi := max(lo, ds), min(hi, ds+86_400_000)
	if blo >= bhi {
		return nil, nil
	}
	docs, _, sizes, err := sr.cutBlocks(ctx, blo, bhi, p.day)
	if err != nil {
		return nil, err
	}
	level, err := sr.blockLevels(ctx, docs)
	if err != nil {
		return nil, err
	}
	for b := floorDiv(blo-first, stepMs); first+b*stepMs < bhi; b++ {
		inner, _, err := sr.timeTerms(max(blo, first+b*stepMs), min(bhi, first+(b+1)*stepMs), p.day)
		if err != nil {
			return nil, err
		}
		var counts levelSums
		for _, t := range inner {
			s, err := sr.termLevelSums(ctx, t)
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
	open := make([]blockHit, len(docs))
	for i, doc := range docs {
		open[i] = blockHit{p: p, sr: sr, doc: doc, size: sizes[i], query: bounds{sizes[i], sizes[i]}, match: bounds{0, sizes[i]}}
	}
	return open, nil
}
