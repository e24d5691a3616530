package logindex

import (
	"context"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// Counting every record of a time range.
//
// A query every record matches is counted from the time terms of the
// granules its range holds whole: the sum of a term's frequencies is the
// number of records in its granule. Bleve segments never change, so the sums
// of the day and hour terms are kept per segment (termSums) and a count
// reads the postings only of the segments written since, of the finer terms
// at the range's ends, and of the blocks in the granules it cuts.

// termSums caches, per segment of one shard, the sums of the frequencies of
// day and hour terms. An entry goes when its segment is no longer in the
// shard's snapshots (merged away).
type termSums struct {
	mu   sync.Mutex
	segs map[segment.Segment]map[fieldTerm]uint64
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
	if len(c.segs) <= len(live) {
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
