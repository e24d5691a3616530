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
