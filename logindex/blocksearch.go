package logindex

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// Searching block documents (FORMAT.md, "Blocks").
//
// A query is evaluated over a shard's blocks with counts: each leaf of the query
// tree gives, for every block, bounds on how many of the block's records match
// it, read from the frequencies of its terms (exact for one term; for several,
// between the largest and the sum). The bounds combine through the tree: a
// conjunction of k parts matches at least Σlo − (k−1)·n and at most min(hi) of
// the block's n records; a disjunction at least max(lo) and at most Σhi; a
// negation n − hi to n − lo. A block whose upper bound is zero has no match and
// is never read; one whose bounds meet has exactly that many; the others are
// scanned: their records are read from the record log and matched one by one.
// So a search by one word, field or level counts from the index alone, and a
// phrase or a conjunction of words reads only the blocks that have all the words.

// bounds is how many records of a block match: at least lo, at most hi.
type bounds struct{ lo, hi int32 }

func (b bounds) exact() bool { return b.lo == b.hi }

// and is the bounds of both b and c over a block of size records.
func (b bounds) and(c bounds, size int32) bounds {
	return bounds{max(0, b.lo+c.lo-size), min(b.hi, c.hi)}
}

// blockPlan is a query prepared for evaluation over blocks.
type blockPlan struct {
	q      *Query
	leaves map[*matchNode]int // index of each leaf in a block's leaf bounds
	list   []*matchNode
}

func newBlockPlan(q *Query) *blockPlan {
	pl := &blockPlan{q: q, leaves: map[*matchNode]int{}}
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *andNode:
			for _, k := range n.kids {
				walk(k)
			}
		case *orNode:
			for _, k := range n.kids {
				walk(k)
			}
		case *notNode:
			walk(n.kid)
		case *matchNode:
			if _, ok := pl.leaves[n]; !ok {
				pl.leaves[n] = len(pl.list)
				pl.list = append(pl.list, n)
			}
		}
	}
	walk(q.root)
	return pl
}

// eval returns the bounds of n over a block of size size whose leaves have the
// bounds leaf.
func (pl *blockPlan) eval(n node, size int32, leaf []bounds) bounds {
	switch n := n.(type) {
	case *andNode:
		sum, hi := int32(0), size
		for _, k := range n.kids {
			b := pl.eval(k, size, leaf)
			sum += b.lo - size
			hi = min(hi, b.hi)
			if hi == 0 {
				return bounds{}
			}
		}
		return bounds{max(0, sum+size), hi}
	case *orNode:
		lo, sum := int32(0), int32(0)
		for _, k := range n.kids {
			b := pl.eval(k, size, leaf)
			lo = max(lo, b.lo)
			sum += b.hi
		}
		return bounds{lo, min(size, sum)}
	case *notNode:
		b := pl.eval(n.kid, size, leaf)
		return bounds{size - b.hi, size - b.lo}
	case *matchNode:
		if n.kind == kindAll {
			return bounds{size, size}
		}
		return leaf[pl.leaves[n]]
	}
	return bounds{}
}

// blockHit is a block with matches. Its id, times, service and level are read
// from the index only when resolve is called: counting needs none of them.
type blockHit struct {
	p     *partition
	sr    *shardReader
	doc   uint64 // the document number in sr
	size  int32  // records in the block
	query bounds // the block's records matching the query
	match bounds // … and in the time range

	resolved bool
	id       docID
	t0, t    int64 // times of its first and last records, Unix ms
	service  string
	level    string
}

// resolve reads the block's id, times, service and level.
func (h *blockHit) resolve() error {
	if h.resolved {
		return nil
	}
	sr := h.sr
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.dvr == nil {
		var err error
		if sr.dvr, err = sr.r.DocValueReader([]string{fieldTimeFirst, fieldTime, fieldService, fieldSev}); err != nil {
			return err
		}
	}
	sr.iid.SetValue(h.doc)
	ext, err := sr.r.ExternalID(sr.iid)
	if err != nil {
		return err
	}
	id, ok := docIDFromBytes(ext)
	if !ok {
		return fmt.Errorf("bad block id of %d bytes in %s", len(ext), dayDirName(h.p.day))
	}
	h.id = id
	err = sr.dvr.VisitDocValues(sr.iid, func(field string, term []byte) {
		switch field {
		case fieldTimeFirst:
			h.t0 = parseTimeTerm(term)
		case fieldTime:
			h.t = parseTimeTerm(term)
		case fieldService:
			h.service = string(term)
		case fieldSev:
			h.level = string(term)
		}
	})
	if err != nil {
		return err
	}
	h.resolved = true
	return nil
}

// resolveAll resolves every hit, in parallel.
func resolveAll(ctx context.Context, hits []blockHit) error {
	const chunk = 256
	return parallel(ctx, (len(hits)+chunk-1)/chunk, func(c int) error {
		for i := c * chunk; i < min(len(hits), (c+1)*chunk); i++ {
			if err := hits[i].resolve(); err != nil {
				return err
			}
		}
		return nil
	})
}

// postings accumulates, per block (internal document number), the sum and the
// largest of the counts of some terms.
type postings map[uint64]posting

type posting struct {
	sum, max int32
}

func (ps postings) add(doc uint64, freq int32) {
	p := ps[doc]
	p.sum += freq
	p.max = max(p.max, freq)
	ps[doc] = p
}

// keepLeast keeps the blocks ps and other have in common, each with the
// smaller of their counts: the postings of a conjunction's upper bound.
func (ps postings) keepLeast(other postings) {
	for doc, p := range ps {
		q, ok := other[doc]
		if !ok {
			delete(ps, doc)
			continue
		}
		ps[doc] = posting{min(p.sum, q.sum), min(p.max, q.max)}
	}
}

// shardReader reads one shard's blocks: one snapshot of the index, held for a
// request (scope.reader). Reading postings is for one goroutine at a time;
// resolving hits may come from several (mu).
type shardReader struct {
	r   index.IndexReader
	tfd index.TermFieldDoc

	mu  sync.Mutex
	dvr index.DocValueReader
	iid index.IndexInternalID
}

// term adds the postings of term in field to ps.
func (sr *shardReader) term(ctx context.Context, field, term string, ps postings) error {
	tfr, err := sr.r.TermFieldReader(ctx, []byte(term), field, true, false, false)
	if err != nil {
		return err
	}
	defer tfr.Close()
	for {
		d, err := tfr.Next(sr.tfd.Reset())
		if err != nil {
			return err
		}
		if d == nil {
			return nil
		}
		ps.add(d.ID.Value(), int32(d.Freq))
	}
}

// dict adds the postings of every term of d to ps, and closes d.
func (sr *shardReader) dict(ctx context.Context, field string, d index.FieldDict, ps postings) error {
	terms, err := dictTerms(d)
	if err != nil {
		return err
	}
	for _, t := range terms {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sr.term(ctx, field, t, ps); err != nil {
			return err
		}
	}
	return nil
}

// dictTerms lists the terms of d, and closes d.
func dictTerms(d index.FieldDict) ([]string, error) {
	var terms []string
	for {
		e, err := d.Next()
		if err != nil {
			d.Close()
			return nil, err
		}
		if e == nil {
			return terms, d.Close()
		}
		terms = append(terms, e.Term)
	}
}

// fieldTerms lists every term of field.
func (sr *shardReader) fieldTerms(field string) ([]string, error) {
	d, err := sr.r.FieldDict(field)
	if err != nil {
		return nil, err
	}
	return dictTerms(d)
}

// termRange adds the postings of the terms of field in [lo, hi] (inclusive).
func (sr *shardReader) termRange(ctx context.Context, field, lo, hi string, ps postings) error {
	if lo > hi {
		return nil
	}
	d, err := sr.r.FieldDictRange(field, []byte(lo), []byte(hi))
	if err != nil {
		return err
	}
	return sr.dict(ctx, field, d, ps)
}

// regexp adds the postings of the terms of field that re matches whole.
func (sr *shardReader) regexp(ctx context.Context, field, re string, ps postings) error {
	rr, ok := sr.r.(index.IndexReaderRegexp)
	if !ok {
		return errors.New("the index cannot expand regular expressions")
	}
	d, err := rr.FieldDictRegexp(field, re)
	if err != nil {
		return err
	}
	return sr.dict(ctx, field, d, ps)
}

// leafMode says how a leaf's postings bound its matches in a block.
type leafMode int

const (
	// modeSum: a record has at most one of the leaf's terms; the sum of their
	// counts is exact.
	modeSum leafMode = iota
	// modeRange: between the largest count and the sum.
	modeRange
	// modeAtMost: at most the largest count (a phrase: the least count over
	// its words, which need not be in sequence).
	modeAtMost
)

// leafPostings reads the postings of leaf m and how they bound its matches.
func (sr *shardReader) leafPostings(ctx context.Context, m *matchNode, day int) (ps postings, mode leafMode, err error) {
	ps = postings{}
	field := fieldName(m)
	switch m.kind {
	case kindTerm:
		return ps, modeSum, sr.term(ctx, field, m.value, ps)
	case kindPhrase:
		if len(m.words) == 0 {
			return ps, modeSum, nil
		}
		var least postings
		for i, w := range m.words {
			wp := postings{}
			if err := sr.term(ctx, fieldBody, w, wp); err != nil {
				return nil, 0, err
			}
			if i == 0 {
				least = wp
				continue
			}
			least.keepLeast(wp)
		}
		if len(m.words) == 1 {
			return least, modeSum, nil
		}
		// Word pairs: a phrase of two words that take part in pairs is one
		// pair, counted exactly; a longer one has at most the least count
		// of its pairs too.
		for i := 1; i < len(m.words); i++ {
			a, w := m.words[i-1], m.words[i]
			if !pairWord(a) || !pairWord(w) {
				continue
			}
			pp := postings{}
			if err := sr.term(ctx, fieldPairs, a+" "+w, pp); err != nil {
				return nil, 0, err
			}
			if len(m.words) == 2 {
				return pp, modeSum, nil
			}
			least.keepLeast(pp)
		}
		return least, modeAtMost, nil
	case kindWildcard, kindRegexp:
		if m.kind == kindWildcard && m.value == ".*" && m.field == fAttr {
			return ps, modeSum, sr.term(ctx, fieldKeys, m.key, ps) // key:* means the key is present
		}
		mode := modeRange
		if m.field == fService || m.field == fSeverity { // one value per block
			mode = modeSum
		}
		return ps, mode, sr.regexp(ctx, field, m.value, ps)
	case kindRange:
		switch m.field {
		case fTime:
			inner, edge, err := sr.timePostings(ctx, m.timeLo, m.timeHi, day)
			if err != nil {
				return nil, 0, err
			}
			return mergeTime(inner, edge), modeRange, nil
		case fSeverity:
			return ps, modeSum, sr.termRange(ctx, fieldSevNum, sevNumTerm(int32(m.lo)), sevNumTerm(int32(m.hi)), ps)
		case fAttr:
			return ps, modeRange, sr.numRange(ctx, numPrefix+m.key, m, ps)
		}
	}
	return ps, modeSum, nil
}

// mergeTime turns the postings of a time range's whole granules (inner) and its
// cut granules (edge) into postings whose max is the lower bound and sum the
// upper (modeRange).
func mergeTime(inner, edge postings) postings {
	out := make(postings, len(inner)+len(edge))
	for doc, p := range inner {
		out[doc] = posting{sum: p.sum, max: p.sum}
	}
	for doc, p := range edge {
		q := out[doc]
		q.sum += p.sum
		out[doc] = q
	}
	return out
}

// numRange adds the postings of the prefix-coded number terms of field in m's
// range.
func (sr *shardReader) numRange(ctx context.Context, field string, m *matchNode, ps postings) error {
	lo, hi, ok := numRangeBounds(m)
	if !ok {
		return nil
	}
	var err error
	splitInt64Range(lo, hi, numPrecisionStep, func(a, b int64, shift uint) {
		if err == nil {
			err = sr.termRange(ctx, field, string(numeric.MustNewPrefixCodedInt64(a, shift)), string(numeric.MustNewPrefixCodedInt64(b, shift)), ps)
		}
	})
	return err
}

// timePostings reads the counts of a block's records with times in [lo, hi)
// ms within day: inner, those of the granules the range holds whole; edge,
// those of the granules it cuts.
func (sr *shardReader) timePostings(ctx context.Context, lo, hi int64, day int) (inner, edge postings, err error) {
	inner, edge = postings{}, postings{}
	ds := int64(day) * 86_400_000
	lo, hi = max(lo, ds), min(hi, ds+86_400_000)
	if lo >= hi {
		return inner, edge, nil
	}
	a := -floorDiv(-lo, granuleMs) * granuleMs // first whole granule
	b := floorDiv(hi, granuleMs) * granuleMs   // end of the last whole granule
	if a < b {
		if err := sr.timeRange(ctx, a, b, 0, inner); err != nil {
			return nil, nil, err
		}
	}
	for _, g := range []int64{floorDiv(lo, granuleMs), floorDiv(hi-1, granuleMs)} {
		if g*granuleMs < a || g*granuleMs >= b {
			if err := sr.term(ctx, fieldGranule, granuleTerm(g), edge); err != nil {
				return nil, nil, err
			}
		}
		if floorDiv(lo, granuleMs) == floorDiv(hi-1, granuleMs) {
			break
		}
	}
	return inner, edge, nil
}

// timeRange adds the postings of [lo, hi) ms (whole granules) at the time
// levels from level on, coarsest first.
func (sr *shardReader) timeRange(ctx context.Context, lo, hi int64, level int, ps postings) error {
	if lo >= hi {
		return nil
	}
	l := blockTimeLevels[level]
	a := -floorDiv(-lo, l.ms)
	b := floorDiv(hi, l.ms)
	if a >= b {
		return sr.timeRange(ctx, lo, hi, level+1, ps)
	}
	if err := sr.termRange(ctx, l.field, levelTerm(a), levelTerm(b-1), ps); err != nil {
		return err
	}
	if level+1 < len(blockTimeLevels) {
		if err := sr.timeRange(ctx, lo, a*l.ms, level+1, ps); err != nil {
			return err
		}
		return sr.timeRange(ctx, b*l.ms, hi, level+1, ps)
	}
	return nil
}

// leafBounds turns a leaf's posting for a block of size records into bounds.
func leafBounds(p posting, ok bool, size int32, mode leafMode) bounds {
	switch {
	case !ok:
		return bounds{}
	case mode == modeSum:
		return bounds{min(size, p.sum), min(size, p.sum)}
	case mode == modeAtMost:
		return bounds{0, min(size, p.max)}
	}
	return bounds{p.max, min(size, p.sum)}
}

// blocks finds the blocks of the reader's shard of p that may hold records
// matching pl in [lo, hi) ms, unresolved.
func (sr *shardReader) blocks(ctx context.Context, p *partition, pl *blockPlan, lo, hi int64) ([]blockHit, error) {
	inner, edge, err := sr.timePostings(ctx, lo, hi, p.day)
	if err != nil {
		return nil, err
	}
	if len(inner) == 0 && len(edge) == 0 {
		return nil, nil
	}
	sizes := postings{}
	if err := sr.term(ctx, "td", levelTerm(int64(p.day)), sizes); err != nil {
		return nil, err
	}
	leafPs := make([]postings, len(pl.list))
	modes := make([]leafMode, len(pl.list))
	for i, m := range pl.list {
		if m.kind == kindAll {
			continue
		}
		if leafPs[i], modes[i], err = sr.leafPostings(ctx, m, p.day); err != nil {
			return nil, err
		}
	}
	docs := make([]uint64, 0, len(inner)+len(edge))
	for doc := range inner {
		docs = append(docs, doc)
	}
	for doc := range edge {
		if _, ok := inner[doc]; !ok {
			docs = append(docs, doc)
		}
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i] < docs[j] })
	leaf := make([]bounds, len(pl.list))
	var hits []blockHit
	for n, doc := range docs {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		sp, ok := sizes[doc]
		if !ok {
			continue
		}
		size := sp.sum
		for i := range pl.list {
			if pl.list[i].kind != kindAll {
				lp, ok := leafPs[i][doc]
				leaf[i] = leafBounds(lp, ok, size, modes[i])
			}
		}
		tb := bounds{}
		if ip, ok := inner[doc]; ok {
			tb.lo = ip.sum
		}
		tb.hi = tb.lo
		if ep, ok := edge[doc]; ok {
			tb.hi = min(size, tb.hi+ep.sum)
		}
		qb := pl.eval(pl.q.root, size, leaf)
		if b := qb.and(tb, size); b.hi > 0 {
			hits = append(hits, blockHit{p: p, sr: sr, doc: doc, size: size, query: qb, match: b})
		}
	}
	return hits, nil
}

// bucketCount is what the index counts of one block's matches in one
// histogram bucket.
type bucketCount struct {
	hit    int // index in hits
	bucket int
	level  string
	n      int32
}

// bucketCounts splits the matches of hits (blocks of sr in [lo, hi)) into the
// histogram buckets of stepMs from first on, by level. The counts of a block
// whose matches the index decides in every bucket are returned; the others'
// indexes in hits, to be scanned.
func (sr *shardReader) bucketCounts(ctx context.Context, p *partition, hits []blockHit, lo, hi, first, stepMs int64) (counted []bucketCount, scan []int, err error) {
	byDoc := make(map[uint64]int, len(hits))
	for i := range hits {
		byDoc[hits[i].doc] = i
	}
	level := make(map[uint64]string, len(hits))
	for _, name := range levelNames {
		ps := postings{}
		if err := sr.term(ctx, fieldSev, name, ps); err != nil {
			return nil, nil, err
		}
		for doc := range ps {
			level[doc] = name
		}
	}
	inexact := make([]bool, len(hits))
	ds := int64(p.day) * 86_400_000
	blo, bhi := max(lo, ds), min(hi, ds+86_400_000)
	for b := floorDiv(blo-first, stepMs); first+b*stepMs < bhi; b++ {
		inner, edge, err := sr.timePostings(ctx, max(blo, first+b*stepMs), min(bhi, first+(b+1)*stepMs), p.day)
		if err != nil {
			return nil, nil, err
		}
		in := func(doc uint64) {
			i, ok := byDoc[doc]
			if !ok || inexact[i] {
				return
			}
			h := &hits[i]
			tb := bounds{inner[doc].sum, 0}
			tb.hi = min(h.size, tb.lo+edge[doc].sum)
			switch c := h.query.and(tb, h.size); {
			case c.hi == 0:
			case c.exact():
				counted = append(counted, bucketCount{i, int(b), level[doc], c.lo})
			default:
				inexact[i] = true
			}
		}
		for doc := range inner {
			in(doc)
		}
		for doc := range edge {
			if _, ok := inner[doc]; !ok {
				in(doc)
			}
		}
	}
	// A block with an undecided bucket is scanned whole: its decided buckets
	// are not counted.
	kept := counted[:0]
	for _, c := range counted {
		if !inexact[c.hit] {
			kept = append(kept, c)
		}
	}
	for i, in := range inexact {
		if in {
			scan = append(scan, i)
		}
	}
	return kept, scan, nil
}

// countBy sums the counts of the blocks docs by their term of field (one per
// block: the service or the level), reading the postings of terms, or of
// every term of field when terms is nil.
func (sr *shardReader) countBy(ctx context.Context, field string, terms []string, docs map[uint64]int32) (map[string]uint64, error) {
	out := map[string]uint64{}
	if len(docs) == 0 {
		return out, nil
	}
	if terms == nil {
		var err error
		if terms, err = sr.fieldTerms(field); err != nil {
			return nil, err
		}
	}
	for _, t := range terms {
		ps := postings{}
		if err := sr.term(ctx, field, t, ps); err != nil {
			return nil, err
		}
		for doc := range ps {
			if n, ok := docs[doc]; ok {
				out[t] += uint64(n)
			}
		}
	}
	return out, nil
}

// whole reports whether every record of the block matches.
func (h *blockHit) whole() bool { return h.match.lo == h.size }

// fieldCounts sums, per term of field, its counts in the blocks docs; nil docs
// means every block.
func (sr *shardReader) fieldCounts(ctx context.Context, field string, docs map[uint64]bool) (map[string]uint64, error) {
	out := map[string]uint64{}
	if docs != nil && len(docs) == 0 {
		return out, nil
	}
	terms, err := sr.fieldTerms(field)
	if err != nil {
		return nil, err
	}
	for _, t := range terms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps := postings{}
		if err := sr.term(ctx, field, t, ps); err != nil {
			return nil, err
		}
		for doc, p := range ps {
			if docs == nil || docs[doc] {
				out[t] += uint64(p.sum)
			}
		}
	}
	return out, nil
}

// parseTimeTerm reads a t or t0 term (12 hex digits).
func parseTimeTerm(term []byte) int64 {
	var v int64
	for _, c := range term {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int64(c-'a'+10)
		}
	}
	return v
}

// blockRecords calls fn with the index in its frame and the bytes of every
// record of block id, in frame order.
func (p *partition) eachBlockRecord(id docID, fn func(i int, b []byte) error) error {
	fr, err := p.frame(id.off())
	if err != nil {
		return err
	}
	blocks, err := fr.blockList()
	if err != nil {
		return &CorruptionError{Path: p.path, Offset: fr.off, Err: err}
	}
	if id.idx() >= len(blocks) {
		return fmt.Errorf("cannot find block %s: frame at %d has %d blocks: %w", id, fr.off, len(blocks), ErrNotFound)
	}
	for _, i := range blocks[id.idx()] {
		if err := fn(int(i), fr.recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// frame returns the decoded frame at off, from the cache when it is there.
func (p *partition) frame(off int64) (*frame, error) {
	if fr := p.cache.get(off); fr != nil {
		return fr, nil
	}
	fr, err := readFrame(p.f, p.path, off, p.size.Load())
	if err != nil {
		return nil, err
	}
	p.cache.put(fr)
	return fr, nil
}

// blockList returns the blocks of the frame's records (frameBlocks), worked
// out once.
func (fr *frame) blockList() ([][]int32, error) {
	fr.blocksOnce.Do(func() {
		var g frameBlocks
		blocks, err := g.splitEncoded(fr.recs)
		// The splitter's next call would reuse them; there is none.
		fr.blocks, fr.blocksErr = blocks, err
	})
	return fr.blocks, fr.blocksErr
}
