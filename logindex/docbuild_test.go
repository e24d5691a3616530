package logindex

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// TestDocBuilderMatchesFreshFields builds the documents of random records in
// many batches through one long-lived docBuilder, and checks that every field
// carries exactly the terms, frequencies and locations that fields built afresh
// for each record (the way documents were built before the builder reused
// anything) carry: nothing of an earlier batch or record may leak into a later
// one.
func TestDocBuilderMatchesFreshFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	b := newDocBuilder()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for batch := range 60 {
		n := 1 + rng.IntN(40)
		recs := make([]Record, n)
		docs := make([]*document.Document, n)
		for i := range recs {
			recs[i] = randomRecord(rng, base)
			docs[i] = b.document(makeDocID(20000, int64(batch), i), &recs[i])
		}
		for i := range recs {
			id := makeDocID(20000, int64(batch), i)
			want := analyzedTerms(refDocument(id, &recs[i]))
			got := analyzedTerms(docs[i])
			if !reflect.DeepEqual(got, want) {
				for f := range want {
					if !reflect.DeepEqual(got[f], want[f]) {
						t.Errorf("batch %d record %d field %s:\n got %v\nwant %v", batch, i, f, got[f], want[f])
					}
				}
				for f := range got {
					if _, ok := want[f]; !ok {
						t.Errorf("batch %d record %d: field %s not expected", batch, i, f)
					}
				}
				t.Fatalf("record: %+v", recs[i])
			}
			if docs[i].ID() != string(id[:]) {
				t.Fatalf("document id %x, want %x", docs[i].ID(), id)
			}
		}
		// Bleve adds the _id field to every document it indexes.
		for _, d := range docs {
			d.AddIDField()
		}
		b.reset()
	}
}

type termInfo struct {
	Freq int
	Locs []index.TokenLocation
}

// analyzedTerms is what zap reads from a document: per field name (fields of one
// name merged), every term with its frequency and locations, and the options.
func analyzedTerms(d *document.Document) map[string]map[string]termInfo {
	out := map[string]map[string]termInfo{}
	d.VisitFields(func(f index.Field) {
		f.Analyze()
		key := fmt.Sprintf("%s/%d", f.Name(), f.Options())
		m := out[key]
		if m == nil {
			m = map[string]termInfo{}
			out[key] = m
		}
		for term, tf := range f.AnalyzedTokenFrequencies() {
			if string(tf.Term) != term {
				panic(fmt.Sprintf("field %s: term %q has bytes %q", f.Name(), term, tf.Term))
			}
			ti := m[term]
			ti.Freq += tf.Frequency()
			for _, l := range tf.Locations {
				ti.Locs = append(ti.Locs, *l)
			}
			m[term] = ti
		}
	})
	return out
}

var randomWords = []string{
	"error", "Connection", "refused", "from", "10.0.0.1:22", "user=alice", "/var/log/syslog",
	"ÄRGER", "İstanbul", "x", "id=7f3a-09", "GET", "/api/v1/items?id=3", "took", "12ms",
	"[main]", "\"quoted value\"", "a.b.c", "key:value", "ERR-1042", "Ünïcödé", "", "the", "the",
}

func randomRecord(rng *rand.Rand, base time.Time) Record {
	var body strings.Builder
	words := rng.IntN(30)
	if rng.IntN(20) == 0 {
		words = maxReusedTerms + rng.IntN(500) // a huge body
	}
	for i := range words {
		if i > 0 {
			body.WriteByte(" ,;"[rng.IntN(3)])
		}
		body.WriteString(randomWords[rng.IntN(len(randomWords))])
	}
	sev := levelNames[rng.IntN(len(levelNames))]
	r := Record{
		Time:           base.Add(time.Duration(rng.IntN(3*3600*1000)) * time.Millisecond),
		SeverityNumber: int32(rng.IntN(25)),
		Severity:       sev,
		Body:           body.String(),
		Service:        fmt.Sprintf("svc-%d", rng.IntN(3)),
	}
	if rng.IntN(3) == 0 {
		r.SeverityNumber = 0
		r.SeverityText = []string{"warn", "Error", "bogus", ""}[rng.IntN(4)]
	}
	if rng.IntN(2) == 0 {
		r.TraceID = fmt.Sprintf("%032x", rng.Uint64())
		r.SpanID = fmt.Sprintf("%016x", rng.Uint64())
	}
	if rng.IntN(3) == 0 {
		r.ScopeName = "scope." + randomWords[rng.IntN(len(randomWords))]
	}
	if rng.IntN(4) == 0 {
		r.EventName = "event" + fmt.Sprint(rng.IntN(3))
	}
	attrs := func() []Attr {
		var as []Attr
		for range rng.IntN(6) {
			k := []string{"host.name", "thread.id", "service.name", "", "http.status", "latency", "k.long", "é"}[rng.IntN(8)]
			a := Attr{Key: k, Type: "Str"}
			switch rng.IntN(5) {
			case 0:
				a.Value, a.Type = fmt.Sprint(rng.IntN(1000)-500), "Int"
			case 1:
				a.Value, a.Type = fmt.Sprint(rng.NormFloat64()*1e6), "Double"
			case 2:
				a.Value = strings.Repeat("v", MaxKeywordLen+rng.IntN(3)-1)
			case 3:
				a.Value = fmt.Sprintf("%.3f", rng.Float64())
			default:
				a.Value = randomWords[rng.IntN(len(randomWords))]
			}
			as = append(as, a)
		}
		return as
	}
	r.Resource, r.ScopeAttributes, r.Attributes = attrs(), attrs(), attrs()
	return r
}

// What follows is how documents were built before docBuilder, one new field
// per term source, kept as the reference the builder is checked against.

func refDocument(id docID, r *Record) *document.Document {
	doc := document.NewDocument(string(id[:]))
	kw := func(name, v string, opts index.FieldIndexingOptions) {
		doc.AddField(newRefKWField(name, v, opts))
	}
	doc.AddField(&refBodyField{text: r.Body})
	kw(fieldService, r.Service, kwDVOpts)
	kw(fieldSev, r.Severity, kwDVOpts)
	kw(fieldSevNum, sevNumTerm(effectiveSeverity(r.SeverityNumber, r.SeverityText)), kwOpts)
	if r.ScopeName != "" {
		kw(fieldScope, r.ScopeName, kwOpts)
	}
	if r.TraceID != "" {
		kw(fieldTrace, r.TraceID, idOpts)
	}
	if r.SpanID != "" {
		kw(fieldSpan, r.SpanID, idOpts)
	}
	if r.EventName != "" {
		kw(fieldEvent, r.EventName, kwOpts)
	}
	ms := r.Time.UnixMilli()
	kw(fieldTime, timeTerm(ms), timeOpts)
	for _, l := range timeLevels {
		if l.field == fieldGranule {
			kw(fieldGranule, granuleTerm(floorDiv(ms, granuleMs))+levelDigit(r.Severity), kwDVOpts)
			continue
		}
		kw(l.field, levelTerm(floorDiv(ms, l.ms)), kwOpts)
	}
	addAttrs := func(as []Attr, skipService bool) {
		for _, a := range as {
			if skipService && a.Key == "service.name" {
				continue
			}
			if a.Key == "" || len(a.Key) > MaxKeywordLen {
				continue
			}
			kw(fieldKeys, a.Key, kwDVOpts)
			if len(a.Value) <= MaxKeywordLen {
				kw(attrPrefix+a.Key, a.Value, kwDVOpts)
			}
			if f, ok := attrNumber(a); ok {
				doc.AddField(newRefNumField(numPrefix+a.Key, f))
			}
		}
	}
	addAttrs(r.Resource, true)
	addAttrs(r.ScopeAttributes, false)
	addAttrs(r.Attributes, false)
	return doc
}

type refNumField struct {
	name string
	tf   index.TokenFrequencies
	n    int
}

func newRefNumField(name string, v float64) *refNumField {
	i := numeric.Float64ToInt64(v)
	f := &refNumField{name: name, tf: make(index.TokenFrequencies, 64/numPrecisionStep)}
	for shift := uint(0); shift < 64; shift += numPrecisionStep {
		t := []byte(numeric.MustNewPrefixCodedInt64(i, shift))
		f.tf[string(t)] = &index.TokenFreq{Term: t}
		f.n++
	}
	return f
}

func (f *refNumField) Name() string                                     { return f.name }
func (f *refNumField) ArrayPositions() []uint64                         { return nil }
func (f *refNumField) Options() index.FieldIndexingOptions              { return numOpts }
func (f *refNumField) Analyze()                                         {}
func (f *refNumField) Value() []byte                                    { return nil }
func (f *refNumField) NumPlainTextBytes() uint64                        { return 8 }
func (f *refNumField) Size() int                                        { return 64 + 48*f.n }
func (f *refNumField) EncodedFieldType() byte                           { return 'n' }
func (f *refNumField) AnalyzedLength() int                              { return f.n }
func (f *refNumField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

type refKWField struct {
	name  string
	value []byte
	opts  index.FieldIndexingOptions
	tf    index.TokenFrequencies
}

func newRefKWField(name, value string, opts index.FieldIndexingOptions) *refKWField {
	return &refKWField{name: name, value: []byte(value), opts: opts}
}

func (f *refKWField) Analyze() {
	tf := &index.TokenFreq{Term: f.value}
	if !f.opts.SkipFreqNorm() {
		tf.SetFrequency(1)
	}
	f.tf = index.TokenFrequencies{string(f.value): tf}
}

func (f *refKWField) Name() string                                     { return f.name }
func (f *refKWField) ArrayPositions() []uint64                         { return nil }
func (f *refKWField) Options() index.FieldIndexingOptions              { return f.opts }
func (f *refKWField) Value() []byte                                    { return f.value }
func (f *refKWField) NumPlainTextBytes() uint64                        { return uint64(len(f.value)) }
func (f *refKWField) Size() int                                        { return 128 + 2*len(f.value) }
func (f *refKWField) EncodedFieldType() byte                           { return 't' }
func (f *refKWField) AnalyzedLength() int                              { return 1 }
func (f *refKWField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

type refBodyField struct {
	text string
	tf   index.TokenFrequencies
	n    int
}

func (f *refBodyField) Analyze() {
	var toks []token
	tokenize(f.text, func(t token) { toks = append(toks, t) })
	f.n = len(toks)
	tf := make(index.TokenFrequencies, len(toks))
	for _, t := range toks {
		cur, ok := tf[t.term]
		if !ok {
			cur = &index.TokenFreq{Term: []byte(t.term)}
			tf[t.term] = cur
		}
		if !t.word {
			cur.SetFrequency(cur.Frequency() + 1)
			continue
		}
		cur.Locations = append(cur.Locations, &index.TokenLocation{Position: t.pos})
	}
	f.tf = tf
}

func (f *refBodyField) Name() string                                     { return fieldBody }
func (f *refBodyField) ArrayPositions() []uint64                         { return nil }
func (f *refBodyField) Options() index.FieldIndexingOptions              { return bodyOpts }
func (f *refBodyField) Value() []byte                                    { return []byte(f.text) }
func (f *refBodyField) NumPlainTextBytes() uint64                        { return uint64(len(f.text)) }
func (f *refBodyField) Size() int                                        { return 128 + 2*len(f.text) + 96*f.n }
func (f *refBodyField) EncodedFieldType() byte                           { return 't' }
func (f *refBodyField) AnalyzedLength() int                              { return f.n }
func (f *refBodyField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.tf }

// BenchmarkBuildDocuments builds and analyses the documents of 1,000 Loghub
// records with the attributes a log shipper adds, as one batch: "builder" through
// a reused docBuilder, "fresh" with new fields for every record (how documents
// were built before). Compare B/op and allocs/op.
func BenchmarkBuildDocuments(b *testing.B) {
	systems := loadLoghub(b)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	recs := make([]Record, 1000)
	for i := range recs {
		s := systems[i%len(systems)]
		line := s.lines[(i/len(systems))%len(s.lines)]
		recs[i] = Record{
			Time:           base.Add(time.Duration(i) * 43 * time.Millisecond),
			SeverityNumber: 9,
			Severity:       "INFO",
			Body:           line,
			Service:        s.name,
			Resource: []Attr{
				{Key: "service.name", Value: s.name, Type: "Str"},
				{Key: "host.name", Value: fmt.Sprintf("%s-%d", s.name, i%4), Type: "Str"},
				{Key: "deployment.environment", Value: "production", Type: "Str"},
			},
			Attributes: []Attr{
				{Key: "log.file.name", Value: s.name + ".log", Type: "Str"},
				{Key: "log.iostream", Value: "stdout", Type: "Str"},
				{Key: "thread.id", Value: fmt.Sprint(1000 + i%37), Type: "Int"},
			},
		}
	}
	b.Run("builder", func(b *testing.B) {
		db := newDocBuilder()
		b.ReportAllocs()
		for b.Loop() {
			for i := range recs {
				db.document(makeDocID(20000, 0, i), &recs[i]).AddIDField()
			}
			db.reset()
		}
	})
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range recs {
				d := refDocument(makeDocID(20000, 0, i), &recs[i])
				d.AddIDField()
				d.VisitFields(func(f index.Field) { f.Analyze() })
			}
		}
	})
}
