package logindex

import (
	"context"
	"math"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// Bleve fields and queries of our own, where Bleve's stock ones cost more than
// the log index needs: numbers indexed at a coarser precision step, and the
// queries that read them and the record time.

// numPrecisionStep is the precision step of attribute numbers: a value is indexed
// as 64/numPrecisionStep prefix-coded terms (shifts 0, 8, ..., 56), half of what
// Bleve's numeric fields index (step 4). Every term is also a term of Bleve's
// encoding, so ranges over numbers Bleve indexed itself still match.
const numPrecisionStep = 8

// numField is an attribute value that parses as a number.
type numField struct {
	name string
	tf   index.TokenFrequencies
	n    int
}

func newNumField(name string, v float64) *numField {
	i := numeric.Float64ToInt64(v)
	f := &numField{name: name, tf: make(index.TokenFrequencies, 64/numPrecisionStep)}
	for shift := uint(0); shift < 64; shift += numPrecisionStep {
		t := []byte(numeric.MustNewPrefixCodedInt64(i, shift))
		f.tf[string(t)] = &index.TokenFreq{Term: t}
		f.n++
	}
	return f
}

func (f *numField) Name() string                                     { return f.name }
func (f *numField) ArrayPositions() []uint64                         { return nil }
func (f *numField) Options() index.FieldIndexingOptions              { return numOpts }
func (f *numField) Analyze()                                         {}
func (f *numField) Value() []byte                                    { return nil }
func (f *numField) NumPlainTextBytes() uint64                        { return 8 }
func (f *numField) Size() int                                        { return 64 + 48*f.n }
func (f *numField) EncodedFieldType() byte                           { return 'n' }
func (f *numField) AnalyzedLength() int                              { return f.n }
func (f *numField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

// numRangeQuery matches numbers of field in [lo, hi] (each end inclusive or not,
// nil = open) as term ranges over the prefix-coded terms of numField: at most
// 2·(2^numPrecisionStep − 1) terms per precision level, each range walked in the
// term dictionary so only terms that exist are searched.
func numRangeQuery(field string, lo, hi *float64, loIncl, hiIncl bool) query.Query {
	minV, maxV := int64(math.MinInt64), int64(math.MaxInt64)
	if lo != nil {
		minV = numeric.Float64ToInt64(*lo)
		if !loIncl {
			if minV == math.MaxInt64 {
				return query.NewMatchNoneQuery()
			}
			minV++
		}
	}
	if hi != nil {
		maxV = numeric.Float64ToInt64(*hi)
		if !hiIncl {
			if maxV == math.MinInt64 {
				return query.NewMatchNoneQuery()
			}
			maxV--
		}
	}
	var parts []query.Query
	t := true
	splitInt64Range(minV, maxV, numPrecisionStep, func(a, b int64, shift uint) {
		q := query.NewTermRangeInclusiveQuery(string(numeric.MustNewPrefixCodedInt64(a, shift)), string(numeric.MustNewPrefixCodedInt64(b, shift)), &t, &t)
		q.SetField(field)
		parts = append(parts, q)
	})
	switch len(parts) {
	case 0:
		return query.NewMatchNoneQuery()
	case 1:
		return parts[0]
	}
	return query.NewDisjunctionQuery(parts)
}

// splitInt64Range splits [minBound, maxBound] into ranges of prefix-coded terms,
// finest precision first, as Lucene's NumericUtils.splitRange does: emit(a, b,
// shift) covers the values whose bits above shift lie between a's and b's.
func splitInt64Range(minBound, maxBound int64, step uint, emit func(a, b int64, shift uint)) {
	if minBound > maxBound {
		return
	}
	for shift := uint(0); ; shift += step {
		diff := int64(1) << (shift + step)
		mask := ((int64(1) << step) - 1) << shift
		hasLower := minBound&mask != 0
		hasUpper := maxBound&mask != mask
		nextMin := minBound &^ mask
		if hasLower {
			nextMin = (minBound + diff) &^ mask
		}
		nextMax := maxBound &^ mask
		if hasUpper {
			nextMax = (maxBound - diff) &^ mask
		}
		if shift+step >= 64 || nextMin > nextMax || nextMin < minBound || nextMax > maxBound {
			emit(minBound, maxBound, shift)
			return
		}
		if hasLower {
			emit(minBound, minBound|mask, shift)
		}
		if hasUpper {
			emit(maxBound&^mask, maxBound, shift)
		}
		minBound, maxBound = nextMin, nextMax
	}
}

// msRangeQuery matches the records of one second (a term of the ts field) whose
// time in milliseconds lies in [lo, hi), reading the time from the doc values of
// the t field: the ragged ends of a time range.
type msRangeQuery struct {
	sec, lo, hi int64
}

func (q *msRangeQuery) Searcher(ctx context.Context, i index.IndexReader, m mapping.IndexMapping, opts search.SearcherOptions) (search.Searcher, error) {
	tq := query.NewTermQuery(levelTerm(q.sec))
	tq.SetField("ts")
	s, err := tq.Searcher(ctx, i, m, opts)
	if err != nil {
		return nil, err
	}
	dvr, err := i.DocValueReader([]string{fieldTime})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	lo, hi := timeTerm(q.lo), timeTerm(q.hi)
	var in bool
	visit := func(_ string, term []byte) {
		in = string(term) >= lo && string(term) < hi
	}
	return searcher.NewFilteringSearcher(ctx, s, func(_ *search.SearchContext, d *search.DocumentMatch) bool {
		in = false
		if err := dvr.VisitDocValues(d.IndexInternalID, visit); err != nil {
			return false
		}
		return in
	}), nil
}

// kwField is a keyword field: its whole value is its one term. It stands for a
// Bleve text field with the keyword analyzer, without the token stream that
// analyzer allocates for every field of every record.
type kwField struct {
	name  string
	value []byte
	opts  index.FieldIndexingOptions
	tf    index.TokenFrequencies
}

func newKWField(name, value string, opts index.FieldIndexingOptions) *kwField {
	return &kwField{name: name, value: []byte(value), opts: opts}
}

func (f *kwField) Analyze() {
	tf := &index.TokenFreq{Term: f.value}
	if !f.opts.SkipFreqNorm() {
		tf.SetFrequency(1)
	}
	f.tf = index.TokenFrequencies{string(f.value): tf}
}

func (f *kwField) Name() string                                     { return f.name }
func (f *kwField) ArrayPositions() []uint64                         { return nil }
func (f *kwField) Options() index.FieldIndexingOptions              { return f.opts }
func (f *kwField) Value() []byte                                    { return f.value }
func (f *kwField) NumPlainTextBytes() uint64                        { return uint64(len(f.value)) }
func (f *kwField) Size() int                                        { return 128 + 2*len(f.value) }
func (f *kwField) EncodedFieldType() byte                           { return 't' }
func (f *kwField) AnalyzedLength() int                              { return 1 }
func (f *kwField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

// bodyField is the body, analysed by tokenize straight into term frequencies
// (a few allocations per record instead of a few per token). Words carry their
// locations, which phrases need, and no frequency (the field skips frequencies
// and norms: results are never scored). Whole chunks (IPs, paths, key=value...),
// which no phrase matches, carry a frequency and no locations: zap then writes 1-2
// bytes per record for a common chunk instead of ~6, and "1-hit" encodes a chunk
// that one record has (most of them: addresses with ports, timestamps, ids) in the
// term dictionary instead of a ~40-byte posting list with locations.
type bodyField struct {
	text string
	tf   index.TokenFrequencies
	n    int
}

func (f *bodyField) Analyze() {
	s := f.text
	var toks []token
	terms := 0
	tokenize(s, func(t token) {
		toks = append(toks, t)
		terms += len(t.term)
	})
	f.n = len(toks)
	locs := make([]index.TokenLocation, len(toks))
	buf := make([]byte, 0, terms)
	tf := make(index.TokenFrequencies, len(toks))
	for i, t := range toks {
		cur, ok := tf[t.term]
		if !ok {
			start := len(buf)
			buf = append(buf, t.term...)
			cur = &index.TokenFreq{Term: buf[start:len(buf):len(buf)]}
			tf[t.term] = cur
		}
		if !t.word {
			// A whole chunk: wildcards and regular expressions match it,
			// phrases never do. No locations; a frequency instead, so that
			// a chunk only one record has is 1-hit encoded.
			cur.SetFrequency(cur.Frequency() + 1)
			continue
		}
		locs[i] = index.TokenLocation{Start: t.start, End: t.end, Position: t.pos}
		cur.Locations = append(cur.Locations, &locs[i])
	}
	f.tf = tf
}

func (f *bodyField) Name() string                                     { return fieldBody }
func (f *bodyField) ArrayPositions() []uint64                         { return nil }
func (f *bodyField) Options() index.FieldIndexingOptions              { return bodyOpts }
func (f *bodyField) Value() []byte                                    { return []byte(f.text) }
func (f *bodyField) NumPlainTextBytes() uint64                        { return uint64(len(f.text)) }
func (f *bodyField) Size() int                                        { return 128 + 2*len(f.text) + 96*f.n }
func (f *bodyField) EncodedFieldType() byte                           { return 't' }
func (f *bodyField) AnalyzedLength() int                              { return f.n }
func (f *bodyField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }
