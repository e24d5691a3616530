package logindex

import (
	"math"

	"github.com/blevesearch/bleve/v2/numeric"
)

// Attribute numbers: indexed at a coarser precision step than Bleve's own, and
// how a range over them splits into term ranges.

// numPrecisionStep is the precision step of attribute numbers: a value is indexed
// as 64/numPrecisionStep prefix-coded terms (shifts 0, 8, ..., 56), half of what
// Bleve's numeric fields index (step 4). Every term is also a term of Bleve's
// encoding, so ranges over numbers Bleve indexed itself still match.
const numPrecisionStep = 8

// numRangeBounds returns the range of m (a number range) as inclusive bounds on
// the numbers' sortable int64 form; ok is false when the range is empty.
func numRangeBounds(m *matchNode) (lo, hi int64, ok bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	if m.hasLo {
		lo = numeric.Float64ToInt64(m.lo)
		if !m.loIncl {
			if lo == math.MaxInt64 {
				return 0, 0, false
			}
			lo++
		}
	}
	if m.hasHi {
		hi = numeric.Float64ToInt64(m.hi)
		if !m.hiIncl {
			if hi == math.MinInt64 {
				return 0, 0, false
			}
			hi--
		}
	}
	return lo, hi, lo <= hi
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
