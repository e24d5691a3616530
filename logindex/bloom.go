package logindex

import (
	"slices"
	"sort"

	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
)

// Body words with a digit (FORMAT.md, "Words with a digit").
//
// Most distinct body tokens hold a digit: ids, counts, times, addresses. In a
// Loghub replay whose numbers vary, 2.3 million distinct terms of a shard's
// day held one against 2,227 plain words, nearly each in one block only, and
// building and merging their dictionaries took half of the CPU of ingest.
// So a body word with a digit is indexed as one of hashBuckets bucket terms
// (field bh) instead of as itself, and each block stores a Bloom filter of
// those words (field bf, stored, not indexed); a chunk with a digit (an
// address, a path with numbers) is not indexed at all, since searches look up
// words (a query's chunk is the phrase of its words). A search for such a word
// reads the postings of its bucket, drops the blocks whose filter says the
// word is absent, and reads the records of the others: a bucket's count is an
// upper bound of the word's.

const (
	// hashBuckets is the number of bucket terms of the bh field.
	hashBuckets = 4096
	// bloomBitsPerToken is a block filter's size in bits per word with a
	// digit in its records (each occurrence counted) and bloomProbes the bits
	// set per word: about 2% false positives.
	bloomBitsPerToken = 8
	bloomProbes       = 5
	// bloomMaxBytes caps a block's filter (more tokens only raise its false
	// positives).
	bloomMaxBytes = 1 << 16
)

// hasDigit reports whether a body token holds an ASCII digit: whether a word is
// indexed through its bucket and its block's filter instead of as itself (and a
// chunk not at all).
func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}

// tokenHash is the 64-bit hash of a token: FNV-1a over its bytes, then
// SplitMix64's finalizer.
func tokenHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// bucketTerms are the bh field's terms: a bucket's number as three lower-case
// hex digits.
var bucketTerms = func() []string {
	const hex = "0123456789abcdef"
	ts := make([]string, hashBuckets)
	for i := range ts {
		ts[i] = string([]byte{hex[i>>8&15], hex[i>>4&15], hex[i&15]})
	}
	return ts
}()

// bucketTerm is the bh term of a token of hash h: its top 12 bits.
func bucketTerm(h uint64) string { return bucketTerms[h>>52] }

// bloomProbe returns the first bit and the step of a token's probes: bit i is
// (first + i·step) mod the filter's bits. They come from a second mix of the
// hash, so tokens of one bucket do not share them.
func bloomProbe(h uint64) (first, step uint32) {
	g := mix64(h ^ 0x9e3779b97f4a7c15)
	return uint32(g), uint32(g>>32) | 1
}

// appendBloom appends to dst the filter of the token hashes hs.
func appendBloom(dst []byte, hs []uint64) []byte {
	n := min(bloomMaxBytes, max(8, (len(hs)*bloomBitsPerToken+7)/8))
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	f := dst[start:]
	clear(f)
	bits := uint32(n * 8)
	for _, h := range hs {
		p, step := bloomProbe(h)
		for range bloomProbes {
			b := p % bits
			f[b>>3] |= 1 << (b & 7)
			p += step
		}
	}
	return dst
}

// bloomHas reports whether the filter f may hold the token of hash h.
func bloomHas(f []byte, h uint64) bool {
	if len(f) == 0 {
		return false
	}
	bits := uint32(len(f) * 8)
	p, step := bloomProbe(h)
	for range bloomProbes {
		b := p % bits
		if f[b>>3]&(1<<(b&7)) == 0 {
			return false
		}
		p += step
	}
	return true
}

// bloomField is a block's stored filter (field bf): stored, not indexed.
type bloomField struct {
	value []byte
}

func (f *bloomField) Name() string                                     { return fieldBloom }
func (f *bloomField) ArrayPositions() []uint64                         { return nil }
func (f *bloomField) Options() index.FieldIndexingOptions              { return index.StoreField }
func (f *bloomField) Analyze()                                         {}
func (f *bloomField) Value() []byte                                    { return f.value }
func (f *bloomField) NumPlainTextBytes() uint64                        { return uint64(len(f.value)) }
func (f *bloomField) Size() int                                        { return 64 + len(f.value) }
func (f *bloomField) EncodedFieldType() byte                           { return 't' }
func (f *bloomField) AnalyzedLength() int                              { return 0 }
func (f *bloomField) AnalyzedTokenFrequencies() index.TokenFrequencies { return nil }

// bloomReader reads the stored filters of a shard snapshot's blocks by
// document number.
type bloomReader struct {
	segs    []*scorch.SegmentSnapshot
	offsets []uint64 // the first document number of each segment
}

func newBloomReader(snap *scorch.IndexSnapshot) *bloomReader {
	br := &bloomReader{segs: snap.Segments()}
	var running uint64
	for _, ss := range br.segs {
		br.offsets = append(br.offsets, running)
		// Document numbers count a segment's deleted documents too, as
		// scorch numbers them.
		running += ss.Segment().Count()
	}
	return br
}

// mayHaveAll reports whether block doc may hold every token of hashes: false
// only when its filter says one is absent.
func (br *bloomReader) mayHaveAll(doc uint64, hashes []uint64) (bool, error) {
	i := sort.Search(len(br.offsets), func(x int) bool { return br.offsets[x] > doc }) - 1
	if i < 0 {
		return true, nil
	}
	has, found := true, false
	err := br.segs[i].VisitDocument(doc-br.offsets[i], func(name string, _ byte, value []byte, _ []uint64) bool {
		if name == fieldBloom {
			found = true
			for _, h := range hashes {
				if !bloomHas(value, h) {
					has = false
					break
				}
			}
		}
		// Always true: zapx puts its visit context back twice when a visitor
		// stops early.
		return true
	})
	if err != nil {
		return true, err
	}
	// A block without a filter (none of its records has a word with a digit,
	// so its bucket counts are 0 too) is read if asked.
	return has || !found, nil
}
