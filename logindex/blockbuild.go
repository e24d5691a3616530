package logindex

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// Blocks: the unit a format-3 shard indexes (FORMAT.md, "Blocks").
//
// The records of one frame are grouped by service and level, in the order each
// group first appears, and each group is cut into blocks of at most blockRecords
// records, in frame order. A block is one Bleve document: every term of its
// records, each with a frequency that counts the block's records having the term.
// So a block document stands for all its records, and a search finds the blocks
// that may hold matches, counts what the frequencies decide, and reads the
// records of the other blocks from the record log to match them one by one.
//
// One document per record (format 2) cost about 390 bytes of index and 70–90 µs
// of CPU per Loghub record, most of it the postings of the body's words; blocks
// of Loghub lines have about 4.5 distinct terms per record against 25 tokens.

// blockRecords is the most records a block holds.
const blockRecords = 256

// frameBlocks groups the records of a frame into blocks: each block is the
// indexes of its records in the frame, in frame order. Blocks are numbered in
// the order returned. The grouping depends on the records alone, so it is the
// same whenever the frame is read, decoded (split) or not (splitEncoded).
type frameBlocks struct {
	group  map[string]int // level digit + service → index in groups
	key    []byte
	groups [][]int32
	blocks [][]int32 // sub-slices of groups
}

// split returns the blocks of recs; they are valid until the next call.
func (g *frameBlocks) split(recs []Record) [][]int32 {
	g.start()
	for i := range recs {
		addRecord(g, int32(i), recs[i].Service, levelOrder[recs[i].Severity])
	}
	return g.finish()
}

// splitEncoded returns the blocks of the encoded records recs (appendRecord's
// bytes); they are valid until the next call.
func (g *frameBlocks) splitEncoded(recs [][]byte) ([][]int32, error) {
	g.start()
	for i, b := range recs {
		service, level, err := groupKey(b)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		addRecord(g, int32(i), service, level)
	}
	return g.finish(), nil
}

func (g *frameBlocks) start() {
	if g.group == nil {
		g.group = map[string]int{}
	}
	clear(g.group)
	for i := range g.groups {
		g.groups[i] = g.groups[i][:0]
	}
}

// addRecord puts record i, of service and level, into its group.
func addRecord[S string | []byte](g *frameBlocks, i int32, service S, level int) {
	g.key = append(append(g.key[:0], byte(level)), service...)
	g.join(i)
}

// join puts record i into the group of g.key.
func (g *frameBlocks) join(i int32) {
	k, ok := g.group[string(g.key)]
	if !ok {
		k = len(g.group)
		g.group[string(g.key)] = k
		if k == len(g.groups) {
			g.groups = append(g.groups, nil)
		}
	}
	g.groups[k] = append(g.groups[k], i)
}

func (g *frameBlocks) finish() [][]int32 {
	g.blocks = g.blocks[:0]
	for _, grp := range g.groups[:len(g.group)] {
		for len(grp) > blockRecords {
			g.blocks = append(g.blocks, grp[:blockRecords:blockRecords])
			grp = grp[blockRecords:]
		}
		g.blocks = append(g.blocks, grp)
	}
	return g.blocks
}

// groupKey reads what groups an encoded record into a block: its service and
// its level (levelOrder of Record.Severity), without decoding the rest.
func groupKey(b []byte) (service []byte, level int, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, 0, fmt.Errorf("cannot decode record of %d bytes: unknown version: %w", len(b), errShortRecord)
	}
	d := recordDecoder{b: b, off: 1}
	d.varint("time")
	d.varint("observed time")
	sn := d.uvarint("severity number")
	text := d.bytes("severity text")
	for _, what := range [...]string{"body type", "body", "trace id", "span id"} {
		d.bytes(what)
	}
	d.uvarint("flags")
	d.bytes("event name")
	service = d.bytes("service")
	if d.err != nil {
		return nil, 0, d.err
	}
	if sn > math.MaxInt32 {
		return nil, 0, fmt.Errorf("cannot decode severity number %d: %w", sn, errShortRecord)
	}
	num := int32(sn)
	if num < 1 || num > 24 {
		// Only then is the text read (effectiveSeverity).
		num = effectiveSeverity(num, string(text))
	}
	return service, levelOrder[levelOf(num)], nil
}

// pairWord reports whether a body word takes part in word pairs (the b2
// field): whether it has no ASCII digit and a byte other than '_'. Pairs of
// such words (a phrase of two words is exactly one pair) are far fewer than
// all pairs: in a Loghub replay with numbers that vary, 99% of the distinct
// pairs held a word with a digit (an id, a count, a time), nearly every one
// unique to its record, and building and merging their dictionary cost about
// a third of the index's CPU. A phrase with such a word is bounded by its
// words' counts and its blocks are read.
func pairWord(w string) bool {
	word := false
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case c >= '0' && c <= '9':
			return false
		case c != '_':
			word = true
		}
	}
	return word
}

// blockShard is the shard of block b of the frame at off: the blocks of a frame
// go round the shards from a place the frame's offset chooses, so that frames
// of one block each do not all go to the first shard.
func blockShard(off int64, b, shards int) int {
	h := uint64(off) * 0x9e3779b97f4a7c15
	return int((h>>33 + uint64(b)) % uint64(shards))
}

// blockBuilder builds the documents of the blocks of one Bleve batch at a time;
// reset makes everything built unusable and readies it for the next batch.
// Bleve reads a document's fields only while it indexes the batch (it builds an
// in-memory segment of bytes from them and keeps none), so the fields, their
// term maps and bytes are reused from batch to batch. Indexers take builders
// from blockBuilderPool: the space kept is that of the batches being indexed at
// once, and a builder left in the pool through two garbage collections is given
// back.
type blockBuilder struct {
	fields  []*countField
	nfields int
	attrs   map[string]*[2]*countField // attribute key → its a. and n. fields, in the current block
	names   map[string][2]string       // attribute key → {"a." + key, "n." + key}
	num     []byte                     // prefix-coded number scratch
	pair    []byte                     // word pair scratch
	hashes  []uint64                   // the block's tokens with a digit, hashed
	blooms  []*bloomField              // the filters of the batch's blocks
	nblooms int

	// The time terms of the last record at each level: records come roughly in
	// time order, so most records share them with the record before.
	timeKey  [len(blockTimeLevels)]int64
	timeTerm [len(blockTimeLevels)]string
}

// blockTimeLevels are the time fields a block indexes its records' times at:
// timeLevels without the seconds, and the granule without the level digit
// (a block's records share their level).
var blockTimeLevels = [4]struct {
	field string
	ms    int64
}{
	{"td", 86_400_000},
	{"th", 3_600_000},
	{"t5", 300_000},
	{fieldGranule, granuleMs},
}

// Index options of a block's fields. Every field keeps frequencies (the counts
// of records); the time bounds and the service and level keep doc values (sort,
// facets).
var (
	blockOpts   = index.IndexField
	blockDVOpts = index.IndexField | index.DocValues
)

// fieldTimeFirst is the block field holding the time of its earliest record;
// fieldTime (t) holds its latest.
const fieldTimeFirst = "t0"

var blockBuilderPool = sync.Pool{New: func() any { return newBlockBuilder() }}

func newBlockBuilder() *blockBuilder {
	return &blockBuilder{attrs: map[string]*[2]*countField{}, names: map[string][2]string{}}
}

// reset starts a new batch.
func (b *blockBuilder) reset() {
	for _, f := range b.fields[:b.nfields] {
		f.release()
	}
	b.nfields = 0
	b.nblooms = 0 // a filter's bytes are at most bloomMaxBytes: kept
	clear(b.attrs)
}

// bloom returns a filter field for the current block, its bytes those of hs.
func (b *blockBuilder) bloom(hs []uint64) *bloomField {
	if b.nblooms == len(b.blooms) {
		b.blooms = append(b.blooms, &bloomField{})
	}
	f := b.blooms[b.nblooms]
	b.nblooms++
	f.value = appendBloom(f.value[:0], hs)
	return f
}

func (b *blockBuilder) field(name string, opts index.FieldIndexingOptions) *countField {
	if b.nfields == len(b.fields) {
		b.fields = append(b.fields, &countField{slot: map[string]int32{}})
	}
	f := b.fields[b.nfields]
	b.nfields++
	f.name, f.opts = name, opts
	return f
}

// attrNames returns the field names of attribute key: "a." + key and "n." + key.
func (b *blockBuilder) attrNames(key string) (string, string) {
	if n, ok := b.names[key]; ok {
		return n[0], n[1]
	}
	if len(b.names) >= maxNames {
		clear(b.names)
	}
	n := [2]string{attrPrefix + key, numPrefix + key}
	b.names[key] = n
	return n[0], n[1]
}

// document builds the document of the block of recs whose records are members
// (indexes into recs, in frame order).
func (b *blockBuilder) document(id docID, recs []Record, members []int32) *document.Document {
	doc := document.NewDocument(string(id[:]))
	first := &recs[members[0]]
	body := b.field(fieldBody, blockOpts)
	sn := b.field(fieldSevNum, blockOpts)
	var hashed, pairs, scope, trace, span, event *countField
	b.hashes = b.hashes[:0]
	var times [len(blockTimeLevels)]*countField
	for i, l := range blockTimeLevels {
		times[i] = b.field(l.field, blockOpts)
	}
	keys := b.field(fieldKeys, blockOpts)
	clear(b.attrs)
	lo, hi := first.Time.UnixMilli(), first.Time.UnixMilli()
	for j, m := range members {
		r := &recs[m]
		rec := int32(j)
		prev := ""
		tokenize(r.Body, func(t token) {
			if hasDigit(t.term) {
				if !t.word {
					// Searches look words up, never chunks: a chunk with a
					// digit would only be found by a wildcard or regular
					// expression, which read every block anyway.
					return
				}
				h := tokenHash(t.term)
				if hashed == nil {
					hashed = b.field(fieldHashed, blockOpts)
				}
				hashed.add(bucketTerm(h), rec)
				b.hashes = append(b.hashes, h)
			} else {
				body.add(t.term, rec)
			}
			if !t.word {
				return
			}
			if !pairWord(t.term) {
				prev = ""
				return
			}
			if prev != "" {
				b.pair = append(append(append(b.pair[:0], prev...), ' '), t.term...)
				if pairs == nil {
					pairs = b.field(fieldPairs, blockOpts)
				}
				pairs.addBytes(b.pair, rec)
			}
			prev = t.term
		})
		sn.add(sevNumTerms[effectiveSeverity(r.SeverityNumber, r.SeverityText)], rec)
		if r.ScopeName != "" {
			scope = b.addTo(scope, fieldScope, r.ScopeName, rec)
		}
		if r.TraceID != "" {
			trace = b.addTo(trace, fieldTrace, r.TraceID, rec)
		}
		if r.SpanID != "" {
			span = b.addTo(span, fieldSpan, r.SpanID, rec)
		}
		if r.EventName != "" {
			event = b.addTo(event, fieldEvent, r.EventName, rec)
		}
		ms := r.Time.UnixMilli()
		lo, hi = min(lo, ms), max(hi, ms)
		for i := range blockTimeLevels {
			times[i].add(b.timeLevelTerm(i, ms), rec)
		}
		b.addAttrs(keys, r.Resource, true, rec)
		b.addAttrs(keys, r.ScopeAttributes, false, rec)
		b.addAttrs(keys, r.Attributes, false, rec)
	}
	n := int32(len(members))
	svc := b.field(fieldService, blockDVOpts)
	svc.addCount(first.Service, n)
	sev := b.field(fieldSev, blockDVOpts)
	sev.addCount(first.Severity, n)
	tFirst := b.field(fieldTimeFirst, blockDVOpts)
	tFirst.addCount(timeTerm(lo), 1)
	tLast := b.field(fieldTime, blockDVOpts)
	tLast.addCount(timeTerm(hi), 1)

	fs := make([]document.Field, 0, 16+2*len(b.attrs))
	for _, f := range []*countField{body, hashed, pairs, svc, sev, sn, scope, trace, span, event, tFirst, tLast, keys} {
		if f != nil && len(f.terms) > 0 {
			fs = append(fs, f)
		}
	}
	for _, f := range times {
		fs = append(fs, f)
	}
	for _, af := range b.attrs {
		for _, f := range af {
			if f != nil {
				fs = append(fs, f)
			}
		}
	}
	for _, f := range fs {
		f.(*countField).finish()
	}
	if len(b.hashes) > 0 {
		fs = append(fs, b.bloom(b.hashes))
	}
	// Room for the _id field Batch adds, so that adding it does not copy.
	doc.Fields = slices.Grow(fs, 1)
	return doc
}

// addTo adds term to the field f, making it first when f is nil.
func (b *blockBuilder) addTo(f *countField, name, term string, rec int32) *countField {
	if f == nil {
		f = b.field(name, blockOpts)
	}
	f.add(term, rec)
	return f
}

// addAttrs adds the attributes of one record (rec) to the block's key field and
// its attribute fields; skipService leaves out service.name (the resource's).
func (b *blockBuilder) addAttrs(keys *countField, as []Attr, skipService bool, rec int32) {
	for _, a := range as {
		if skipService && a.Key == "service.name" {
			continue
		}
		if a.Key == "" || len(a.Key) > MaxKeywordLen {
			continue
		}
		keys.add(a.Key, rec)
		af := b.attrs[a.Key]
		if af == nil {
			af = new([2]*countField)
			b.attrs[a.Key] = af
		}
		attrName, numName := b.attrNames(a.Key)
		if len(a.Value) <= MaxKeywordLen {
			af[0] = b.addTo(af[0], attrName, a.Value, rec)
		}
		if v, ok := attrNumber(a); ok {
			if af[1] == nil {
				af[1] = b.field(numName, blockOpts)
			}
			b.addNumber(af[1], v, rec)
		}
	}
}

// addNumber adds the prefix-coded terms of v (numPrecisionStep) to f.
func (b *blockBuilder) addNumber(f *countField, v float64, rec int32) {
	i := numeric.Float64ToInt64(v)
	for k := 0; k < 64/numPrecisionStep; k++ {
		shift := uint(k) * numPrecisionStep
		size := int((63-shift)/7) + 2
		b.num = slices.Grow(b.num[:0], size)[:size]
		numeric.MustNewPrefixCodedInt64Prealloc(i, shift, b.num)
		f.addBytes(b.num, rec)
	}
}

// timeLevelTerm returns the term of ms at blockTimeLevels[i].
func (b *blockBuilder) timeLevelTerm(i int, ms int64) string {
	n := floorDiv(ms, blockTimeLevels[i].ms)
	if n != b.timeKey[i] || b.timeTerm[i] == "" {
		if blockTimeLevels[i].field == fieldGranule {
			b.timeTerm[i] = granuleTerm(n)
		} else {
			b.timeTerm[i] = levelTerm(n)
		}
		b.timeKey[i] = n
	}
	return b.timeTerm[i]
}

var sevNumTerms = func() [25]string {
	var t [25]string
	for i := range t {
		t[i] = sevNumTerm(int32(i))
	}
	return t
}()

// countField is a field of a block: its distinct terms, each with the number of
// the block's records that have it as its frequency.
type countField struct {
	name   string
	opts   index.FieldIndexingOptions
	slot   map[string]int32 // term → index in terms
	terms  []string
	counts []int32
	last   []int32 // per term, 1 + the latest record counted
	n      int     // the sum of counts
	buf    []byte  // term bytes
	freqs  []index.TokenFreq
	tf     index.TokenFrequencies
}

// add counts term for record rec (the records of a block are added in order,
// each once).
func (f *countField) add(term string, rec int32) {
	k, ok := f.slot[term]
	if !ok {
		k = f.newTerm(term)
	}
	f.count(k, rec)
}

// addBytes is add for a term in scratch bytes; the term is copied if new.
func (f *countField) addBytes(term []byte, rec int32) {
	k, ok := f.slot[string(term)]
	if !ok {
		k = f.newTerm(string(term))
	}
	f.count(k, rec)
}

// count counts term k once for record rec.
func (f *countField) count(k, rec int32) {
	if f.last[k] != rec+1 {
		f.last[k] = rec + 1
		f.counts[k]++
		f.n++
	}
}

// addCount adds term with count n.
func (f *countField) addCount(term string, n int32) {
	k := f.newTerm(term)
	f.counts[k] = n
	f.n += int(n)
}

func (f *countField) newTerm(term string) int32 {
	k := int32(len(f.terms))
	f.slot[term] = k
	f.terms = append(f.terms, term)
	f.counts = append(f.counts, 0)
	f.last = append(f.last, 0)
	return k
}

// finish fills the term frequencies from the counts.
func (f *countField) finish() {
	size := 0
	for _, t := range f.terms {
		size += len(t)
	}
	// One array for the terms' bytes, sized first: the frequencies point into it.
	f.buf = slices.Grow(f.buf[:0], size)
	f.freqs = slices.Grow(f.freqs[:0], len(f.terms))[:len(f.terms)]
	if f.tf == nil {
		f.tf = make(index.TokenFrequencies, len(f.terms))
	}
	for k, t := range f.terms {
		n := len(f.buf)
		f.buf = append(f.buf, t...)
		tf := &f.freqs[k]
		*tf = index.TokenFreq{Term: f.buf[n:len(f.buf):len(f.buf)]}
		tf.SetFrequency(int(f.counts[k]))
		f.tf[t] = tf
	}
}

// maxNames bounds the builder's cache of attribute field names.
const maxNames = 4096

// maxReusedBlockTerms bounds what a reused block field keeps between batches.
const maxReusedBlockTerms = 8192

// release forgets the field's terms, keeping its space unless it was large.
func (f *countField) release() {
	if len(f.terms) > maxReusedBlockTerms {
		*f = countField{slot: map[string]int32{}}
		return
	}
	clear(f.slot)
	clear(f.tf)
	clear(f.terms)
	f.terms, f.counts, f.last = f.terms[:0], f.counts[:0], f.last[:0]
	f.buf = f.buf[:0]
	f.n = 0
}

func (f *countField) Name() string                                     { return f.name }
func (f *countField) ArrayPositions() []uint64                         { return nil }
func (f *countField) Options() index.FieldIndexingOptions              { return f.opts }
func (f *countField) Analyze()                                         {}
func (f *countField) NumPlainTextBytes() uint64                        { return uint64(len(f.buf)) }
func (f *countField) Size() int                                        { return 128 + 2*len(f.buf) + 64*len(f.terms) }
func (f *countField) EncodedFieldType() byte                           { return 't' }
func (f *countField) AnalyzedLength() int                              { return f.n }
func (f *countField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

// Value is the field's first term (fields are not stored; Bleve does not read
// it, but for doc values of single-term fields).
func (f *countField) Value() []byte {
	if len(f.terms) == 0 {
		return nil
	}
	return f.buf[:len(f.terms[0]):len(f.terms[0])]
}
