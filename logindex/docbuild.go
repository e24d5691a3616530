package logindex

import (
	"slices"
	"sync"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// Building the Bleve documents of records.
//
// Bleve reads a document's fields only while it indexes the batch: Batch analyses
// the documents, builds an in-memory segment of bytes from them and keeps none of
// them. So a docBuilder's fields, term maps, token frequencies and term bytes are
// reused from batch to batch. A record then costs a few allocations (its document
// and the _id field Bleve adds, the body's lower-cased words, a new millisecond's
// time term) instead of about one per term; before, building and analysing
// documents allocated about 20 KB per record, about half of what log ingest
// allocated, and the collector's work grows with that.
//
// The fields are analysed when they are built, by the indexer goroutine, so
// their Analyze methods do nothing: Bleve calls them from its own analysis
// workers, where the builder's scratch space could not be shared.

// docBuilder builds the documents of one batch at a time; reset makes everything
// built for the batch unusable and readies the builder for the next. Indexers
// take builders from docBuilderPool, so the space kept is that of the batches
// being indexed at once, and a builder left in the pool through two garbage
// collections (indexing idle) is given back.
type docBuilder struct {
	terms  []*termField
	nterms int
	bodies []*bodyField
	nbody  int
	fields [][]document.Field // per document of the batch, reused
	ndocs  int

	// Body analysis scratch.
	toks      []token
	tokTerm   []int32          // per token, the index of its term
	termIdx   map[string]int32 // term → index
	termKeys  []string         // per term
	termWords []int32          // per term, how many of its tokens are words

	names map[string][2]string // attribute key → {"a." + key, "n." + key}

	// The time terms of the last record at each level: records come roughly in
	// time order, so most records share them with the record before.
	timeKey  [len(timeLevels)]int64
	timeTerm [len(timeLevels)]string
	msKey    int64
	msTerm   string
}

var docBuilderPool = sync.Pool{New: func() any { return newDocBuilder() }}

// maxReusedTerms bounds what a reused field keeps between batches: a field that
// held more terms (a huge body) gives its space back to the collector.
const maxReusedTerms = 1024

// maxNames bounds the builder's cache of attribute field names.
const maxNames = 4096

func newDocBuilder() *docBuilder {
	return &docBuilder{names: map[string][2]string{}, termIdx: map[string]int32{}}
}

// reset starts a new batch.
func (b *docBuilder) reset() {
	for _, f := range b.terms[:b.nterms] {
		f.release()
	}
	for _, f := range b.bodies[:b.nbody] {
		f.release()
	}
	for i := range b.fields[:b.ndocs] {
		clear(b.fields[i])
		b.fields[i] = b.fields[i][:0]
	}
	b.nterms, b.nbody, b.ndocs = 0, 0, 0
	if cap(b.toks) > maxReusedTerms {
		b.toks, b.tokTerm, b.termKeys, b.termWords = nil, nil, nil, nil
	}
	clear(b.termKeys[:cap(b.termKeys)])
}

func (b *docBuilder) termField(name string, opts index.FieldIndexingOptions, typ byte) *termField {
	if b.nterms == len(b.terms) {
		b.terms = append(b.terms, &termField{})
	}
	f := b.terms[b.nterms]
	b.nterms++
	f.name, f.opts, f.typ = name, opts, typ
	return f
}

// keyword adds a field whose one term is value.
func (b *docBuilder) keyword(fs []document.Field, name, value string, opts index.FieldIndexingOptions) []document.Field {
	f := b.termField(name, opts, 't')
	f.add(value)
	f.finish()
	return append(fs, f)
}

// attrNames returns the field names of attribute key: "a." + key and "n." + key.
func (b *docBuilder) attrNames(key string) (string, string) {
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

// timeLevelTerm returns the term of ms at timeLevels[i] (for the granule, with
// the level digit of severity).
func (b *docBuilder) timeLevelTerm(i int, ms int64, severity string) string {
	l := timeLevels[i]
	n := floorDiv(ms, l.ms)
	key := n
	if l.field == fieldGranule {
		key = n<<3 | int64(levelOrder[severity])
	}
	if key != b.timeKey[i] || b.timeTerm[i] == "" {
		if l.field == fieldGranule {
			b.timeTerm[i] = granuleTerm(n) + levelDigit(severity)
		} else {
			b.timeTerm[i] = levelTerm(n)
		}
		b.timeKey[i] = key
	}
	return b.timeTerm[i]
}

// document builds the Bleve document of r.
func (b *docBuilder) document(id docID, r *Record) *document.Document {
	doc := document.NewDocument(string(id[:]))
	if b.ndocs == len(b.fields) {
		b.fields = append(b.fields, nil)
	}
	fs := b.fields[b.ndocs][:0]

	fs = append(fs, b.body(r.Body))
	fs = b.keyword(fs, fieldService, r.Service, kwDVOpts)
	fs = b.keyword(fs, fieldSev, r.Severity, kwDVOpts)
	fs = b.keyword(fs, fieldSevNum, sevNumTerms[effectiveSeverity(r.SeverityNumber, r.SeverityText)], kwOpts)
	if r.ScopeName != "" {
		fs = b.keyword(fs, fieldScope, r.ScopeName, kwOpts)
	}
	if r.TraceID != "" {
		fs = b.keyword(fs, fieldTrace, r.TraceID, idOpts)
	}
	if r.SpanID != "" {
		fs = b.keyword(fs, fieldSpan, r.SpanID, idOpts)
	}
	if r.EventName != "" {
		fs = b.keyword(fs, fieldEvent, r.EventName, kwOpts)
	}
	ms := r.Time.UnixMilli()
	if ms != b.msKey || b.msTerm == "" {
		b.msKey, b.msTerm = ms, timeTerm(ms)
	}
	fs = b.keyword(fs, fieldTime, b.msTerm, timeOpts)
	for i, l := range timeLevels {
		opts := kwOpts
		if l.field == fieldGranule {
			opts = kwDVOpts
		}
		fs = b.keyword(fs, l.field, b.timeLevelTerm(i, ms, r.Severity), opts)
	}

	// Every attribute key is a term of one _k field (a key the resource and
	// the record both have is one term).
	keys := b.termField(fieldKeys, kwDVOpts, 't')
	addAttrs := func(as []Attr, skipService bool) {
		for _, a := range as {
			if skipService && a.Key == "service.name" {
				continue
			}
			if a.Key == "" || len(a.Key) > MaxKeywordLen {
				continue
			}
			keys.add(a.Key)
			attrName, numName := b.attrNames(a.Key)
			if len(a.Value) <= MaxKeywordLen {
				fs = b.keyword(fs, attrName, a.Value, kwDVOpts)
			}
			if v, ok := attrNumber(a); ok {
				fs = append(fs, b.number(numName, v))
			}
		}
	}
	addAttrs(r.Resource, true)
	addAttrs(r.ScopeAttributes, false)
	addAttrs(r.Attributes, false)
	if len(keys.keys) > 0 {
		keys.finish()
		fs = append(fs, keys)
	}

	// Room for the _id field Batch adds, so that adding it does not copy.
	fs = slices.Grow(fs, 1)
	b.fields[b.ndocs] = fs
	b.ndocs++
	doc.Fields = fs
	return doc
}

// number adds the prefix-coded terms of v (numPrecisionStep).
func (b *docBuilder) number(name string, v float64) *termField {
	f := b.termField(name, numOpts, 'n')
	i := numeric.Float64ToInt64(v)
	var ends [64 / numPrecisionStep]int
	for k := range ends {
		shift := uint(k) * numPrecisionStep
		n := len(f.buf)
		f.buf = append(f.buf, make([]byte, ((63-shift)/7)+2)...)
		numeric.MustNewPrefixCodedInt64Prealloc(i, shift, f.buf[n:])
		ends[k] = len(f.buf)
	}
	// One string for the eight map keys.
	s := string(f.buf)
	start := 0
	for _, end := range ends {
		f.keys = append(f.keys, s[start:end])
		start = end
	}
	f.finish()
	return f
}

var sevNumTerms = func() [25]string {
	var t [25]string
	for i := range t {
		t[i] = sevNumTerm(int32(i))
	}
	return t
}()

// termField is a field of whole terms, analysed as it is built: a keyword (one
// term), the attribute keys, or the prefix-coded terms of a number. It stands for
// a Bleve text field with the keyword analyzer, without the token stream that
// analyzer allocates for every field of every record.
type termField struct {
	name  string
	opts  index.FieldIndexingOptions
	typ   byte
	keys  []string
	buf   []byte // term bytes
	freqs []index.TokenFreq
	tf    index.TokenFrequencies
}

func (f *termField) add(term string) { f.keys = append(f.keys, term) }

// finish fills the term frequencies from the terms added.
func (f *termField) finish() {
	if f.tf == nil {
		f.tf = make(index.TokenFrequencies, len(f.keys))
	}
	f.freqs = slices.Grow(f.freqs[:0], len(f.keys))[:len(f.keys)]
	if f.typ != 'n' {
		// The numbers' terms are in buf already.
		f.buf = f.buf[:0]
		for _, k := range f.keys {
			f.buf = append(f.buf, k...)
		}
	}
	off := 0
	for i, k := range f.keys {
		if _, dup := f.tf[k]; dup {
			off += len(k)
			continue
		}
		tf := &f.freqs[i]
		*tf = index.TokenFreq{Term: f.buf[off : off+len(k) : off+len(k)]}
		if !f.opts.SkipFreqNorm() {
			tf.SetFrequency(1)
		}
		f.tf[k] = tf
		off += len(k)
	}
}

// release forgets the field's terms, keeping its space unless it was large.
func (f *termField) release() {
	if len(f.keys) > maxReusedTerms {
		*f = termField{}
		return
	}
	// The frequencies point only into the field's own buffers: they are
	// overwritten before they are read again, so not cleared.
	clear(f.tf)
	clear(f.keys)
	f.keys = f.keys[:0]
	f.buf = f.buf[:0]
}

func (f *termField) Name() string                                     { return f.name }
func (f *termField) ArrayPositions() []uint64                         { return nil }
func (f *termField) Options() index.FieldIndexingOptions              { return f.opts }
func (f *termField) Analyze()                                         {}
func (f *termField) NumPlainTextBytes() uint64                        { return uint64(len(f.buf)) }
func (f *termField) Size() int                                        { return 128 + 2*len(f.buf) + 48*len(f.keys) }
func (f *termField) EncodedFieldType() byte                           { return f.typ }
func (f *termField) AnalyzedLength() int                              { return len(f.keys) }
func (f *termField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

// Value is the field's first term (fields are not stored; Bleve does not read
// it).
func (f *termField) Value() []byte {
	if len(f.keys) == 0 {
		return nil
	}
	return f.buf[:len(f.keys[0]):len(f.keys[0])]
}

// bodyField is the body, analysed by tokenize straight into term frequencies.
// Words carry their positions, which phrases need, and no frequency (the field
// skips frequencies and norms: results are never scored). Whole chunks (IPs,
// paths, key=value...), which no phrase matches, carry a frequency and no
// locations: zap then writes 1-2 bytes per record for a common chunk instead of
// ~6, and "1-hit" encodes a chunk that one record has (most of them: addresses
// with ports, timestamps, ids) in the term dictionary instead of a ~40-byte
// posting list with locations.
type bodyField struct {
	text  string
	n     int
	tf    index.TokenFrequencies
	freqs []index.TokenFreq
	buf   []byte // term bytes
	locs  []index.TokenLocation
	lptrs []*index.TokenLocation
}

// body adds the body field of text.
func (b *docBuilder) body(text string) *bodyField {
	if b.nbody == len(b.bodies) {
		b.bodies = append(b.bodies, &bodyField{})
	}
	f := b.bodies[b.nbody]
	b.nbody++
	f.text = text

	b.toks = b.toks[:0]
	tokenize(text, func(t token) { b.toks = append(b.toks, t) })
	toks := b.toks
	f.n = len(toks)

	// Pass 1: the distinct terms, each token's term, each term's words.
	if len(b.termIdx) > maxReusedTerms {
		b.termIdx = map[string]int32{}
	}
	clear(b.termIdx)
	b.termKeys = b.termKeys[:0]
	b.termWords = b.termWords[:0]
	b.tokTerm = slices.Grow(b.tokTerm[:0], len(toks))[:len(toks)]
	f.freqs = slices.Grow(f.freqs[:0], len(toks))
	words, termBytes := 0, 0
	for i, t := range toks {
		k, ok := b.termIdx[t.term]
		if !ok {
			k = int32(len(b.termKeys))
			b.termIdx[t.term] = k
			b.termKeys = append(b.termKeys, t.term)
			b.termWords = append(b.termWords, 0)
			f.freqs = append(f.freqs, index.TokenFreq{})
			termBytes += len(t.term)
		}
		b.tokTerm[i] = k
		if t.word {
			b.termWords[k]++
			words++
		} else {
			// A whole chunk: wildcards and regular expressions match it,
			// phrases never do. No locations; a frequency instead, so that a
			// chunk only one record has is 1-hit encoded.
			f.freqs[k].SetFrequency(f.freqs[k].Frequency() + 1)
		}
	}

	// Pass 2: the terms' bytes and their locations, each in one array.
	f.buf = slices.Grow(f.buf[:0], termBytes)
	f.locs = slices.Grow(f.locs[:0], words)[:words]
	f.lptrs = slices.Grow(f.lptrs[:0], words)[:words]
	if f.tf == nil {
		f.tf = make(index.TokenFrequencies, len(b.termKeys))
	}
	next := 0
	for k, term := range b.termKeys {
		tf := &f.freqs[k]
		n := len(f.buf)
		f.buf = append(f.buf, term...)
		tf.Term = f.buf[n:len(f.buf):len(f.buf)]
		if w := int(b.termWords[k]); w > 0 {
			tf.Locations = f.lptrs[next : next : next+w]
			next += w
		}
		f.tf[term] = tf
	}
	l := 0
	for i, t := range toks {
		if !t.word {
			continue
		}
		tf := &f.freqs[b.tokTerm[i]]
		// Phrases need the position only; the byte offsets (for highlighting,
		// which results do not use) would cost 2–4 bytes per word on disk.
		f.locs[l] = index.TokenLocation{Position: t.pos}
		tf.Locations = append(tf.Locations, &f.locs[l])
		l++
	}
	return f
}

// release forgets the body, keeping its space unless it was large.
func (f *bodyField) release() {
	if f.n > maxReusedTerms {
		*f = bodyField{}
		return
	}
	// The frequencies and locations point only into the field's own buffers:
	// they are overwritten before they are read again, so not cleared.
	f.text = ""
	clear(f.tf)
	f.freqs = f.freqs[:0]
	f.buf = f.buf[:0]
}

func (f *bodyField) Name() string                                     { return fieldBody }
func (f *bodyField) ArrayPositions() []uint64                         { return nil }
func (f *bodyField) Options() index.FieldIndexingOptions              { return bodyOpts }
func (f *bodyField) Analyze()                                         {}
func (f *bodyField) Value() []byte                                    { return []byte(f.text) }
func (f *bodyField) NumPlainTextBytes() uint64                        { return uint64(len(f.text)) }
func (f *bodyField) Size() int                                        { return 128 + 2*len(f.text) + 96*f.n }
func (f *bodyField) EncodedFieldType() byte                           { return 't' }
func (f *bodyField) AnalyzedLength() int                              { return f.n }
func (f *bodyField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }
