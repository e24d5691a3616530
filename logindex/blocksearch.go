package logindex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
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
	// required are the indexes of the leaves every matching record has: the
	// root, or the leaves of conjunctions down from it.
	required []int
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
	var must func(n node)
	must = func(n node) {
		switch n := n.(type) {
		case *andNode:
			for _, k := range n.kids {
				must(k)
			}
		case *matchNode:
			if n.kind != kindAll {
				pl.required = append(pl.required, pl.leaves[n])
			}
		}
	}
	must(q.root)
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

// Counts are read per shard, for a sorted list of blocks (internal document
// numbers, docs) into slices aligned with it: the work of a term is the
// smaller of its postings and the blocks asked for, not the shard's size.

// shardReader reads one shard's blocks: one snapshot of the index, held for a
// request (scope.reader). Reading postings is for one goroutine at a time;
// resolving hits may come from several (mu).
type shardReader struct {
	r   index.IndexReader
	tfd index.TermFieldDoc
	at  index.IndexInternalID // Advance's target

	mu  sync.Mutex
	dvr index.DocValueReader
	iid index.IndexInternalID

	sums *termSums // the shard's, kept across requests; nil reads every posting

	bloom *bloomReader // made on first use, under mu
}

// blooms returns the reader of the snapshot's block filters.
func (sr *shardReader) blooms() (*bloomReader, error) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.bloom == nil {
		snap, ok := sr.r.(*scorch.IndexSnapshot)
		if !ok {
			return nil, errors.New("the log index cannot read its block filters")
		}
		sr.bloom = newBloomReader(snap)
	}
	return sr.bloom, nil
}

// seekCost is how many postings reading in order costs as much as one jump
// (Advance) to a block: below that ratio of postings to blocks, a term's
// postings are read in order.
const seekCost = 8

// eachPosting calls fn(i, freq) for every block docs[i] that has term in
// field, in order. A term with many more postings than docs jumps to each
// block; otherwise its postings are read in order and docs searched forward.
func (sr *shardReader) eachPosting(ctx context.Context, field, term string, docs []uint64, fn func(i int, freq int32)) error {
	if len(docs) == 0 {
		return nil
	}
	tfr, err := sr.r.TermFieldReader(ctx, []byte(term), field, true, false, false)
	if err != nil {
		return err
	}
	defer tfr.Close()
	n := tfr.Count()
	if n == 0 {
		return nil
	}
	seek := uint64(len(docs))*seekCost < n
	for i, k := 0, 0; i < len(docs); k++ {
		if k&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var d *index.TermFieldDoc
		if seek {
			sr.at = index.NewIndexInternalID(sr.at, docs[i])
			d, err = tfr.Advance(sr.at, sr.tfd.Reset())
		} else {
			d, err = tfr.Next(sr.tfd.Reset())
		}
		if err != nil {
			return err
		}
		if d == nil {
			return nil
		}
		doc := d.ID.Value()
		if docs[i] < doc {
			i = gallop(docs, i, doc)
		}
		if i < len(docs) && docs[i] == doc {
			fn(i, int32(d.Freq))
			i++
		}
	}
	return nil
}

// gallop returns the index of the first of docs[i:] at or after doc (sorted
// docs), searching from i with growing steps.
func gallop(docs []uint64, i int, doc uint64) int {
	step := 1
	for i+step < len(docs) && docs[i+step] < doc {
		i += step
		step *= 2
	}
	end := min(len(docs), i+step+1)
	return i + sort.Search(end-i, func(j int) bool { return docs[i+j] >= doc })
}

// docCount is a block and a count of its records.
type docCount struct {
	doc uint64
	n   int32
}

// termList reads every posting of term in field, in document order.
func (sr *shardReader) termList(ctx context.Context, field, term string) ([]docCount, error) {
	tfr, err := sr.r.TermFieldReader(ctx, []byte(term), field, true, false, false)
	if err != nil {
		return nil, err
	}
	defer tfr.Close()
	out := make([]docCount, 0, tfr.Count())
	for {
		if len(out)&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		d, err := tfr.Next(sr.tfd.Reset())
		if err != nil {
			return nil, err
		}
		if d == nil {
			return out, nil
		}
		out = append(out, docCount{d.ID.Value(), int32(d.Freq)})
	}
}

// union reads the postings of terms and sums the counts of every block.
func (sr *shardReader) union(ctx context.Context, terms []fieldTerm) ([]docCount, error) {
	lists := make([][]docCount, 0, len(terms))
	for _, t := range terms {
		l, err := sr.termList(ctx, t.field, t.term)
		if err != nil {
			return nil, err
		}
		if len(l) > 0 {
			lists = append(lists, l)
		}
	}
	if len(lists) == 0 {
		return nil, nil
	}
	for len(lists) > 1 { // merge pairs, so each posting is copied log(terms) times
		next := lists[:0]
		for i := 0; i < len(lists); i += 2 {
			if i+1 == len(lists) {
				next = append(next, lists[i])
				break
			}
			next = append(next, mergeCounts(lists[i], lists[i+1]))
		}
		lists = next
	}
	return lists[0], nil
}

// mergeCounts merges two lists of blocks in document order, summing the counts
// of a block in both.
func mergeCounts(a, b []docCount) []docCount {
	out := make([]docCount, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].doc < b[j].doc:
			out = append(out, a[i])
			i++
		case a[i].doc > b[j].doc:
			out = append(out, b[j])
			j++
		default:
			out = append(out, docCount{a[i].doc, a[i].n + b[j].n})
			i, j = i+1, j+1
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// fieldTerm is a term of a field.
type fieldTerm struct{ field, term string }

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

// termRange lists the terms of field in [lo, hi] (inclusive).
func (sr *shardReader) termRange(field, lo, hi string) ([]string, error) {
	if lo > hi {
		return nil, nil
	}
	d, err := sr.r.FieldDictRange(field, []byte(lo), []byte(hi))
	if err != nil {
		return nil, err
	}
	return dictTerms(d)
}

// regexp lists the terms of field that re matches whole.
func (sr *shardReader) regexp(field, re string) ([]string, error) {
	rr, ok := sr.r.(index.IndexReaderRegexp)
	if !ok {
		return nil, errors.New("the index cannot expand regular expressions")
	}
	d, err := rr.FieldDictRegexp(field, re)
	if err != nil {
		return nil, err
	}
	return dictTerms(d)
}

// eachTerm calls eachPosting for every term of field in terms.
func (sr *shardReader) eachTerm(ctx context.Context, field string, terms []string, docs []uint64, fn func(i int, freq int32)) error {
	for _, t := range terms {
		if err := sr.eachPosting(ctx, field, t, docs, fn); err != nil {
			return err
		}
	}
	return nil
}

// timeTerms lists the time terms of [lo, hi) ms within day: inner, those of
// the granules (at any level, coarsest first) the range holds whole; edge,
// those of the granules it cuts.
func (sr *shardReader) timeTerms(lo, hi int64, day int) (inner, edge []fieldTerm, err error) {
	ds := int64(day) * 86_400_000
	lo, hi = max(lo, ds), min(hi, ds+86_400_000)
	if lo >= hi {
		return nil, nil, nil
	}
	a := -floorDiv(-lo, granuleMs) * granuleMs // first whole granule
	b := floorDiv(hi, granuleMs) * granuleMs   // end of the last whole granule
	if a < b {
		if inner, err = sr.levelTerms(a, b, 0, inner); err != nil {
			return nil, nil, err
		}
	}
	for _, g := range []int64{floorDiv(lo, granuleMs), floorDiv(hi-1, granuleMs)} {
		if g*granuleMs < a || g*granuleMs >= b {
			edge = append(edge, fieldTerm{fieldGranule, granuleTerm(g)})
		}
		if floorDiv(lo, granuleMs) == floorDiv(hi-1, granuleMs) {
			break
		}
	}
	return inner, edge, nil
}

// levelTerms appends the terms of [lo, hi) ms (whole granules) at the time
// levels from level on, coarsest first.
func (sr *shardReader) levelTerms(lo, hi int64, level int, out []fieldTerm) ([]fieldTerm, error) {
	if lo >= hi {
		return out, nil
	}
	l := blockTimeLevels[level]
	a := -floorDiv(-lo, l.ms)
	b := floorDiv(hi, l.ms)
	if a >= b {
		return sr.levelTerms(lo, hi, level+1, out)
	}
	terms, err := sr.termRange(l.field, levelTerm(a), levelTerm(b-1))
	if err != nil {
		return nil, err
	}
	for _, t := range terms {
		out = append(out, fieldTerm{l.field, t})
	}
	if level+1 < len(blockTimeLevels) {
		if out, err = sr.levelTerms(lo, a*l.ms, level+1, out); err != nil {
			return nil, err
		}
		return sr.levelTerms(b*l.ms, hi, level+1, out)
	}
	return out, nil
}

// timeCounts finds the blocks with records in [lo, hi) ms within day (docs,
// in document order) and the counts of those records: in the granules the
// range holds whole (inner) and in those it cuts (edge), aligned with docs.
func (sr *shardReader) timeCounts(ctx context.Context, lo, hi int64, day int) (docs []uint64, inner, edge []int32, err error) {
	it, et, err := sr.timeTerms(lo, hi, day)
	if err != nil {
		return nil, nil, nil, err
	}
	in, err := sr.union(ctx, it)
	if err != nil {
		return nil, nil, nil, err
	}
	ed, err := sr.union(ctx, et)
	if err != nil {
		return nil, nil, nil, err
	}
	n := len(in) + len(ed)
	docs, inner, edge = make([]uint64, 0, n), make([]int32, 0, n), make([]int32, 0, n)
	i, j := 0, 0
	for i < len(in) || j < len(ed) {
		switch {
		case j == len(ed) || i < len(in) && in[i].doc < ed[j].doc:
			docs, inner, edge = append(docs, in[i].doc), append(inner, in[i].n), append(edge, 0)
			i++
		case i == len(in) || ed[j].doc < in[i].doc:
			docs, inner, edge = append(docs, ed[j].doc), append(inner, 0), append(edge, ed[j].n)
			j++
		default:
			docs, inner, edge = append(docs, in[i].doc), append(inner, in[i].n), append(edge, ed[j].n)
			i, j = i+1, j+1
		}
	}
	return docs, inner, edge, nil
}

// timeInto adds the counts of the records of docs in [lo, hi) ms within day:
// those in granules the range holds whole to inner, those in granules it cuts
// to edge.
func (sr *shardReader) timeInto(ctx context.Context, lo, hi int64, day int, docs []uint64, inner, edge func(i int, n int32)) error {
	it, et, err := sr.timeTerms(lo, hi, day)
	if err != nil {
		return err
	}
	for _, t := range it {
		if err := sr.eachPosting(ctx, t.field, t.term, docs, inner); err != nil {
			return err
		}
	}
	for _, t := range et {
		if err := sr.eachPosting(ctx, t.field, t.term, docs, edge); err != nil {
			return err
		}
	}
	return nil
}

// leafMode says how a leaf's counts bound its matches in a block.
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

// leafCounts are the counts of a leaf's terms in each block of a list: their
// sum and the largest.
type leafCounts struct {
	sum, max []int32
	mode     leafMode
}

func newLeafCounts(n int, mode leafMode) *leafCounts {
	return &leafCounts{sum: make([]int32, n), max: make([]int32, n), mode: mode}
}

func (lc *leafCounts) add(i int, freq int32) {
	lc.sum[i] += freq
	lc.max[i] = max(lc.max[i], freq)
}

// keepLeast keeps, per block, the smaller of lc's and other's counts: the
// counts of a conjunction's upper bound.
func (lc *leafCounts) keepLeast(other *leafCounts) {
	for i := range lc.sum {
		lc.sum[i] = min(lc.sum[i], other.sum[i])
		lc.max[i] = min(lc.max[i], other.max[i])
	}
}

// bounds turns the counts of block i of size records into bounds.
func (lc *leafCounts) bounds(i int, size int32) bounds {
	switch lc.mode {
	case modeSum:
		return bounds{min(size, lc.sum[i]), min(size, lc.sum[i])}
	case modeAtMost:
		return bounds{0, min(size, lc.max[i])}
	}
	return bounds{min(size, lc.max[i]), min(size, lc.sum[i])}
}

// leafCounts reads the counts of leaf m's terms in the blocks docs.
func (sr *shardReader) leafCounts(ctx context.Context, m *matchNode, day int, docs []uint64) (*leafCounts, error) {
	field := fieldName(m)
	switch m.kind {
	case kindTerm:
		if m.field == fBody && hasDigit(m.value) {
			h := tokenHash(m.value)
			lc := newLeafCounts(len(docs), modeAtMost)
			if err := sr.eachPosting(ctx, fieldHashed, bucketTerm(h), docs, lc.add); err != nil {
				return nil, err
			}
			return lc, sr.filterDigits(ctx, docs, []uint64{h}, lc)
		}
		lc := newLeafCounts(len(docs), modeSum)
		return lc, sr.eachPosting(ctx, field, m.value, docs, lc.add)
	case kindPhrase:
		if len(m.words) == 0 {
			return newLeafCounts(len(docs), modeSum), nil
		}
		var least *leafCounts
		var hashes []uint64 // of the words with a digit
		for _, w := range m.words {
			wc := newLeafCounts(len(docs), modeSum)
			t := bodyTerm(fieldBody, w)
			if t.field == fieldHashed {
				hashes = append(hashes, tokenHash(w))
				wc.mode = modeAtMost
			}
			if err := sr.eachPosting(ctx, t.field, t.term, docs, wc.add); err != nil {
				return nil, err
			}
			if least == nil {
				least = wc
				continue
			}
			least.keepLeast(wc)
		}
		if len(hashes) > 0 {
			if err := sr.filterDigits(ctx, docs, hashes, least); err != nil {
				return nil, err
			}
		}
		if len(m.words) == 1 {
			return least, nil
		}
		// Word pairs: a phrase of two words that take part in pairs is one
		// pair, counted exactly; a longer one has at most the least count
		// of its pairs too.
		for i := 1; i < len(m.words); i++ {
			a, w := m.words[i-1], m.words[i]
			if !pairWord(a) || !pairWord(w) {
				continue
			}
			pc := newLeafCounts(len(docs), modeSum)
			if err := sr.eachPosting(ctx, fieldPairs, a+" "+w, docs, pc.add); err != nil {
				return nil, err
			}
			if len(m.words) == 2 {
				return pc, nil
			}
			least.keepLeast(pc)
		}
		least.mode = modeAtMost
		return least, nil
	case kindWildcard, kindRegexp:
		if m.kind == kindWildcard && m.value == ".*" && m.field == fAttr {
			lc := newLeafCounts(len(docs), modeSum) // key:* means the key is present
			return lc, sr.eachPosting(ctx, fieldKeys, m.key, docs, lc.add)
		}
		mode := modeRange
		if m.field == fService || m.field == fSeverity { // one value per block
			mode = modeSum
		}
		terms, err := sr.regexp(field, m.value)
		if err != nil {
			return nil, err
		}
		lc := newLeafCounts(len(docs), mode)
		if err := sr.eachTerm(ctx, field, terms, docs, lc.add); err != nil {
			return nil, err
		}
		if m.field == fBody {
			// The body's tokens with a digit are not in its dictionary: any
			// record may have one that matches.
			for i := range lc.sum {
				lc.sum[i] = math.MaxInt32
			}
		}
		return lc, nil
	case kindRange:
		switch m.field {
		case fTime:
			// The lower bound (max) is the count in whole granules, the upper
			// (sum) adds the cut ones.
			lc := newLeafCounts(len(docs), modeRange)
			return lc, sr.timeInto(ctx, m.timeLo, m.timeHi, day, docs,
				func(i int, n int32) { lc.sum[i] += n; lc.max[i] += n },
				func(i int, n int32) { lc.sum[i] += n })
		case fSeverity:
			terms, err := sr.termRange(fieldSevNum, sevNumTerm(int32(m.lo)), sevNumTerm(int32(m.hi)))
			if err != nil {
				return nil, err
			}
			lc := newLeafCounts(len(docs), modeSum)
			return lc, sr.eachTerm(ctx, fieldSevNum, terms, docs, lc.add)
		case fAttr:
			lc := newLeafCounts(len(docs), modeRange)
			return lc, sr.numRange(ctx, numPrefix+m.key, m, docs, lc)
		}
	}
	return newLeafCounts(len(docs), modeSum), nil
}

// numRange adds the counts of the prefix-coded number terms of field in m's
// range.
func (sr *shardReader) numRange(ctx context.Context, field string, m *matchNode, docs []uint64, lc *leafCounts) error {
	lo, hi, ok := numRangeBounds(m)
	if !ok {
		return nil
	}
	var err error
	splitInt64Range(lo, hi, numPrecisionStep, func(a, b int64, shift uint) {
		if err != nil {
			return
		}
		var terms []string
		if terms, err = sr.termRange(field, string(numeric.MustNewPrefixCodedInt64(a, shift)), string(numeric.MustNewPrefixCodedInt64(b, shift))); err == nil {
			err = sr.eachTerm(ctx, field, terms, docs, lc.add)
		}
	})
	return err
}

// driverTerms returns the terms a block with a record matching leaf m must
// have one of, when m names them without expanding a dictionary: a term, the
// rarest word or word pair of a phrase, the levels of a severity range, or an
// attribute key; and their postings.
func (sr *shardReader) driverTerms(ctx context.Context, m *matchNode) ([]fieldTerm, uint64, error) {
	var cands [][]fieldTerm // one of them: the one with the fewest postings
	switch {
	case m.kind == kindTerm:
		cands = [][]fieldTerm{{bodyTerm(fieldName(m), m.value)}}
	case m.kind == kindPhrase:
		for i, w := range m.words {
			cands = append(cands, []fieldTerm{bodyTerm(fieldBody, w)})
			if i > 0 && pairWord(m.words[i-1]) && pairWord(w) {
				cands = append(cands, []fieldTerm{{fieldPairs, m.words[i-1] + " " + w}})
			}
		}
	case m.kind == kindWildcard && m.value == ".*" && m.field == fAttr:
		cands = [][]fieldTerm{{{fieldKeys, m.key}}}
	case m.kind == kindRange && m.field == fSeverity:
		terms, err := sr.termRange(fieldSevNum, sevNumTerm(int32(m.lo)), sevNumTerm(int32(m.hi)))
		if err != nil {
			return nil, 0, err
		}
		var ts []fieldTerm
		for _, t := range terms {
			ts = append(ts, fieldTerm{fieldSevNum, t})
		}
		cands = [][]fieldTerm{ts}
	}
	var best []fieldTerm
	var bestN uint64
	for _, ts := range cands {
		var n uint64
		for _, t := range ts {
			c, err := sr.postingCount(ctx, t)
			if err != nil {
				return nil, 0, err
			}
			n += c
		}
		if best == nil || n < bestN {
			best, bestN = ts, n
		}
	}
	return best, bestN, nil
}

// bodyTerm is the term a block with term in field has: term itself, or for a
// body token with a digit its bucket term.
func bodyTerm(field, term string) fieldTerm {
	if field == fieldBody && hasDigit(term) {
		return fieldTerm{fieldHashed, bucketTerm(tokenHash(term))}
	}
	return fieldTerm{field, term}
}

// filterDigits drops from lc the blocks of docs whose filter lacks one of the
// tokens of hashes (body words with a digit, bounded by their buckets'
// counts), reading the filter of each block lc leaves once.
func (sr *shardReader) filterDigits(ctx context.Context, docs []uint64, hashes []uint64, lc *leafCounts) error {
	br, err := sr.blooms()
	if err != nil {
		return err
	}
	for i, doc := range docs {
		if lc.max[i] == 0 {
			continue
		}
		if i&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		may, err := br.mayHaveAll(doc, hashes)
		if err != nil {
			return err
		}
		if !may {
			lc.sum[i], lc.max[i] = 0, 0
		}
	}
	return nil
}

// postingCount returns how many blocks have term t.
func (sr *shardReader) postingCount(ctx context.Context, t fieldTerm) (uint64, error) {
	tfr, err := sr.r.TermFieldReader(ctx, []byte(t.term), t.field, false, false, false)
	if err != nil {
		return 0, err
	}
	defer tfr.Close()
	return tfr.Count(), nil
}

// driverShare is how many times fewer than the blocks of a range a required
// leaf's blocks must be for a search to start from them; otherwise the blocks
// of the range are listed and the leaf's postings read against them. (A
// variable for tests.)
var driverShare = 4.0

// candidates lists the blocks of the reader's shard of p that may hold records
// matching pl in [lo, hi) ms (docs, in document order) with the counts of
// their records in the granules the range holds whole (inner) and cuts (edge).
// They are the blocks of the range, or, when a leaf every match has is rarer,
// that leaf's blocks.
func (sr *shardReader) candidates(ctx context.Context, p *partition, pl *blockPlan, lo, hi int64) (docs []uint64, inner, edge []int32, err error) {
	var drive []fieldTerm
	var driveN uint64
	for _, i := range pl.required {
		ts, n, err := sr.driverTerms(ctx, pl.list[i])
		if err != nil {
			return nil, nil, nil, err
		}
		if ts != nil && (drive == nil || n < driveN) {
			drive, driveN = ts, n
		}
	}
	if drive != nil {
		dayBlocks, err := sr.postingCount(ctx, fieldTerm{"td", levelTerm(int64(p.day))})
		if err != nil {
			return nil, nil, nil, err
		}
		ds := int64(p.day) * 86_400_000
		share := float64(min(hi, ds+86_400_000)-max(lo, ds)) / 86_400_000
		if float64(driveN)*driverShare >= float64(dayBlocks)*share {
			drive = nil
		}
	}
	if drive == nil {
		return sr.timeCounts(ctx, lo, hi, p.day)
	}
	list, err := sr.union(ctx, drive)
	if err != nil {
		return nil, nil, nil, err
	}
	docs = make([]uint64, len(list))
	for i, c := range list {
		docs[i] = c.doc
	}
	inner, edge = make([]int32, len(docs)), make([]int32, len(docs))
	err = sr.timeInto(ctx, lo, hi, p.day, docs,
		func(i int, n int32) { inner[i] += n },
		func(i int, n int32) { edge[i] += n })
	return docs, inner, edge, err
}

// eachBlock calls fn for every block of the reader's shard of p that may hold
// records matching pl in [lo, hi) ms, in document order, with its size, the
// bounds of its records matching the query and of those also in the range.
func (sr *shardReader) eachBlock(ctx context.Context, p *partition, pl *blockPlan, lo, hi int64, fn func(doc uint64, size int32, query, match bounds)) error {
	docs, inner, edge, err := sr.candidates(ctx, p, pl, lo, hi)
	if err != nil || len(docs) == 0 {
		return err
	}
	// A block's size is its count of the day term, which is the inner count
	// when the range holds the whole day.
	sizes := inner
	if ds := int64(p.day) * 86_400_000; lo > ds || hi < ds+86_400_000 {
		if sizes, err = sr.blockSizes(ctx, p.day, docs); err != nil {
			return err
		}
	}
	leafs := make([]*leafCounts, len(pl.list))
	for i, m := range pl.list {
		if m.kind == kindAll {
			continue
		}
		if leafs[i], err = sr.leafCounts(ctx, m, p.day, docs); err != nil {
			return err
		}
	}
	leaf := make([]bounds, len(pl.list))
	for i, doc := range docs {
		if i&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		size := sizes[i]
		if size == 0 {
			continue
		}
		for j, lc := range leafs {
			if lc != nil {
				leaf[j] = lc.bounds(i, size)
			}
		}
		tb := bounds{inner[i], min(size, inner[i]+edge[i])}
		qb := pl.eval(pl.q.root, size, leaf)
		if b := qb.and(tb, size); b.hi > 0 {
			fn(doc, size, qb, b)
		}
	}
	return nil
}

// blocks finds the blocks of the reader's shard of p that may hold records
// matching pl in [lo, hi) ms, unresolved, in document order.
func (sr *shardReader) blocks(ctx context.Context, p *partition, pl *blockPlan, lo, hi int64) ([]blockHit, error) {
	var hits []blockHit
	err := sr.eachBlock(ctx, p, pl, lo, hi, func(doc uint64, size int32, query, match bounds) {
		hits = append(hits, blockHit{p: p, sr: sr, doc: doc, size: size, query: query, match: match})
	})
	return hits, err
}

// count sums the matches of the blocks of the reader's shard of p whose count
// the index decides, and returns the others, unresolved.
func (sr *shardReader) count(ctx context.Context, p *partition, pl *blockPlan, lo, hi int64) (uint64, []blockHit, error) {
	if isAll(pl.q.root) {
		return sr.countAll(ctx, p, lo, hi)
	}
	var total uint64
	var open []blockHit
	err := sr.eachBlock(ctx, p, pl, lo, hi, func(doc uint64, size int32, query, match bounds) {
		if match.exact() {
			total += uint64(match.lo)
			return
		}
		open = append(open, blockHit{p: p, sr: sr, doc: doc, size: size, query: query, match: match})
	})
	return total, open, err
}

// blockSizes returns the number of records of each block of docs (its count
// of the day term).
func (sr *shardReader) blockSizes(ctx context.Context, day int, docs []uint64) ([]int32, error) {
	sizes := make([]int32, len(docs))
	err := sr.eachPosting(ctx, "td", levelTerm(int64(day)), docs, func(i int, n int32) { sizes[i] = n })
	return sizes, err
}

// blockLevels returns the level of each block of docs, as its index in
// levelNames (−1 for none).
func (sr *shardReader) blockLevels(ctx context.Context, docs []uint64) ([]int, error) {
	level := make([]int, len(docs))
	for i := range level {
		level[i] = -1
	}
	for li, name := range levelNames {
		if err := sr.eachPosting(ctx, fieldSev, name, docs, func(i int, _ int32) { level[i] = li }); err != nil {
			return nil, err
		}
	}
	return level, nil
}

// levelName returns the name of level index li (blockLevels), "" for none.
func levelName(li int) string {
	if li < 0 {
		return ""
	}
	return levelNames[li]
}

// bucketCount is what the index counts of one block's matches in one
// histogram bucket.
type bucketCount struct {
	block  int // index in the blocks
	bucket int
	level  string
	n      int32
}

// blockRefs are blocks of one shard, in document order, with their sizes and
// the bounds of their matches: eachBlock's answers, kept compact.
type blockRefs struct {
	docs         []uint64
	size         []int32
	query, match []bounds
}

func (br *blockRefs) add(doc uint64, size int32, query, match bounds) {
	br.docs = append(br.docs, doc)
	br.size = append(br.size, size)
	br.query = append(br.query, query)
	br.match = append(br.match, match)
}

// hit returns block i as a hit of sr's shard of p.
func (br *blockRefs) hit(p *partition, sr *shardReader, i int) blockHit {
	return blockHit{p: p, sr: sr, doc: br.docs[i], size: br.size[i], query: br.query[i], match: br.match[i]}
}

// bucketCounts splits the matches of blocks (of sr, in [lo, hi)) into the
// histogram buckets of stepMs from first on, by level. The counts of a block
// whose matches the index decides in every bucket are returned; the others'
// indexes in blocks, to be scanned.
func (sr *shardReader) bucketCounts(ctx context.Context, p *partition, blocks *blockRefs, lo, hi, first, stepMs int64) (counted []bucketCount, scan []int, err error) {
	docs := blocks.docs
	level, err := sr.blockLevels(ctx, docs)
	if err != nil {
		return nil, nil, err
	}
	inexact := make([]bool, len(docs))
	inner, edge := make([]int32, len(docs)), make([]int32, len(docs))
	var touched []int // the hits with counts in the bucket
	touch := func(i int) {
		if inner[i] == 0 && edge[i] == 0 {
			touched = append(touched, i)
		}
	}
	ds := int64(p.day) * 86_400_000
	blo, bhi := max(lo, ds), min(hi, ds+86_400_000)
	for b := floorDiv(blo-first, stepMs); first+b*stepMs < bhi; b++ {
		touched = touched[:0]
		err := sr.timeInto(ctx, max(blo, first+b*stepMs), min(bhi, first+(b+1)*stepMs), p.day, docs,
			func(i int, n int32) { touch(i); inner[i] += n },
			func(i int, n int32) { touch(i); edge[i] += n })
		if err != nil {
			return nil, nil, err
		}
		for _, i := range touched {
			size := blocks.size[i]
			tb := bounds{inner[i], min(size, inner[i]+edge[i])}
			inner[i], edge[i] = 0, 0
			if inexact[i] {
				continue
			}
			switch c := blocks.query[i].and(tb, size); {
			case c.hi == 0:
			case c.exact():
				counted = append(counted, bucketCount{i, int(b), levelName(level[i]), c.lo})
			default:
				inexact[i] = true
			}
		}
	}
	// A block with an undecided bucket is scanned whole: its decided buckets
	// are not counted.
	kept := counted[:0]
	for _, c := range counted {
		if !inexact[c.block] {
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

// countBy sums counts (aligned with docs, blocks in document order) by the
// blocks' term of field (one per block: the service or the level), reading
// the postings of terms, or of every term of field when terms is nil.
func (sr *shardReader) countBy(ctx context.Context, field string, terms []string, docs []uint64, counts []float64) (map[string]float64, error) {
	out := map[string]float64{}
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
		err := sr.eachPosting(ctx, field, t, docs, func(i int, _ int32) { out[t] += counts[i] })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fieldCounts sums, per term of field, its counts in the blocks docs (in
// document order), each times its weight (nil: 1).
func (sr *shardReader) fieldCounts(ctx context.Context, field string, docs []uint64, weight []float64) (map[string]float64, error) {
	out := map[string]float64{}
	if len(docs) == 0 {
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
		err := sr.eachPosting(ctx, field, t, docs, func(i int, n int32) {
			if weight == nil {
				out[t] += float64(n)
			} else {
				out[t] += float64(n) * weight[i]
			}
		})
		if err != nil {
			return nil, err
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
