package logindex

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// TestFrameBlocks checks the grouping of a frame's records into blocks: every
// record in exactly one block, in frame order; a block's records share service
// and level; no block over blockRecords; groups in the order they first appear,
// each group's blocks full but for its last; the same blocks for the same
// records, whatever the splitter held before.
func TestFrameBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var g, fresh frameBlocks
	for round := range 200 {
		n := 1 + rng.IntN(1200)
		if round%10 == 0 {
			n = 1 + rng.IntN(3)
		}
		services := 1 + rng.IntN(6)
		recs := make([]Record, n)
		for i := range recs {
			recs[i].Service = fmt.Sprintf("svc-%d", rng.IntN(services))
			recs[i].Severity = levelNames[rng.IntN(3)]
		}
		blocks := g.split(recs)
		seen := make([]bool, n)
		var order [][2]string
		pos := map[[2]string]int{}
		for bi, blk := range blocks {
			if len(blk) == 0 || len(blk) > blockRecords {
				t.Fatalf("round %d: block %d has %d records", round, bi, len(blk))
			}
			key := [2]string{recs[blk[0]].Service, recs[blk[0]].Severity}
			if _, ok := pos[key]; !ok {
				pos[key] = len(order)
				order = append(order, key)
			} else if order[len(order)-1] != key {
				t.Fatalf("round %d: blocks of group %v not together", round, key)
			}
			for j, i := range blk {
				if j > 0 && i <= blk[j-1] {
					t.Fatalf("round %d: block %d not in frame order: %v", round, bi, blk)
				}
				if seen[i] {
					t.Fatalf("round %d: record %d in two blocks", round, i)
				}
				seen[i] = true
				if k := [2]string{recs[i].Service, recs[i].Severity}; k != key {
					t.Fatalf("round %d: block %d mixes %v and %v", round, bi, key, k)
				}
			}
			if bi+1 < len(blocks) && len(blk) < blockRecords {
				if next := blocks[bi+1]; recs[next[0]].Service == key[0] && recs[next[0]].Severity == key[1] {
					t.Fatalf("round %d: block %d of %d records is followed by one of its group", round, bi, len(blk))
				}
			}
		}
		for i, ok := range seen {
			if !ok {
				t.Fatalf("round %d: record %d in no block", round, i)
			}
		}
		// Groups in order of first appearance.
		first := map[[2]string]int{}
		for i := range recs {
			k := [2]string{recs[i].Service, recs[i].Severity}
			if _, ok := first[k]; !ok {
				first[k] = i
			}
		}
		for i := 1; i < len(order); i++ {
			if first[order[i-1]] > first[order[i]] {
				t.Fatalf("round %d: group %v before %v", round, order[i-1], order[i])
			}
		}
		fresh = frameBlocks{}
		if want := fresh.split(recs); !reflect.DeepEqual(blocks, want) {
			t.Fatalf("round %d: a reused splitter gave other blocks than a new one", round)
		}
		// The same blocks from the records as the record log holds them.
		enc := make([][]byte, n)
		for i := range recs {
			r := recs[i]
			r.SeverityNumber = int32(rng.IntN(26))
			r.SeverityText = []string{"", "warn", "Error", "bogus", "FATAL"}[rng.IntN(5)]
			enc[i] = appendRecord(nil, &r)
			if err := decodeRecord(enc[i], &recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		want := append([][]int32(nil), g.split(recs)...)
		got, err := fresh.splitEncoded(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: encoded records give blocks %v, decoded ones %v", round, got, want)
		}
	}
}

// TestBlockDocumentCountsRecords builds the block documents of random frames
// through one long-lived blockBuilder and checks every field against the
// documents of the block's records built one by one the way format 2 indexes a
// record (refDocument): a block has each term its records have, with the number
// of its records that have it as frequency, and nothing else. The time fields
// differ by design: the block has its first and last time (t0, t) instead of
// each record's, no seconds (ts), and granules without the level digit. Nothing
// of an earlier block or batch may leak into a later one.
func TestBlockDocumentCountsRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 19))
	b := newBlockBuilder()
	var g frameBlocks
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for batch := range 40 {
		var docs []*document.Document
		var want []map[string]map[string]int
		var digitTokens []refDigitTokens
		for frame := range 1 + rng.IntN(3) {
			recs := make([]Record, 1+rng.IntN(700))
			for i := range recs {
				recs[i] = randomRecord(rng, base)
			}
			for k, members := range g.split(recs) {
				id := makeDocID(20000, int64(batch*10+frame), k)
				docs = append(docs, b.document(id, recs, members))
				want = append(want, refBlockTerms(recs, members))
				dt := refDigitTokens{set: map[string]bool{}}
				for _, m := range members {
					tokenize(recs[m].Body, func(t token) {
						if t.word && strings.ContainsAny(t.term, "0123456789") {
							dt.n++
							dt.set[t.term] = true
						}
					})
				}
				digitTokens = append(digitTokens, dt)
			}
		}
		for i, d := range docs {
			got := map[string]map[string]int{}
			var filter []byte
			d.VisitFields(func(f index.Field) {
				if f.Name() == fieldBloom {
					if f.Options() != index.StoreField || filter != nil {
						t.Fatalf("batch %d block %d: filter field with options %v (or twice)", batch, i, f.Options())
					}
					filter = f.Value()
					return
				}
				wantOpts := blockOpts
				switch f.Name() {
				case fieldService, fieldSev, fieldTime, fieldTimeFirst:
					wantOpts = blockDVOpts
				}
				if f.Options() != wantOpts {
					t.Fatalf("batch %d block %d: field %s has options %v, want %v", batch, i, f.Name(), f.Options(), wantOpts)
				}
				if got[f.Name()] != nil {
					t.Fatalf("batch %d block %d: field %s twice", batch, i, f.Name())
				}
				m := map[string]int{}
				for term, tf := range f.AnalyzedTokenFrequencies() {
					if string(tf.Term) != term {
						t.Fatalf("field %s: term %q has bytes %q", f.Name(), term, tf.Term)
					}
					if len(tf.Locations) != 0 {
						t.Fatalf("field %s: term %q has locations", f.Name(), term)
					}
					m[term] = tf.Frequency()
				}
				got[f.Name()] = m
			})
			if !reflect.DeepEqual(got, want[i]) {
				for f := range want[i] {
					if !reflect.DeepEqual(got[f], want[i][f]) {
						t.Errorf("batch %d block %d field %s:\n got %v\nwant %v", batch, i, f, got[f], want[i][f])
					}
				}
				for f := range got {
					if _, ok := want[i][f]; !ok {
						t.Errorf("batch %d block %d: field %s not expected", batch, i, f)
					}
				}
				t.FailNow()
			}
			// The filter: one byte per occurrence of a token with a digit (at
			// least 8), holding every such token; none without them.
			if wantLen := max(8, digitTokens[i].n); digitTokens[i].n == 0 && filter != nil || digitTokens[i].n > 0 && len(filter) != wantLen {
				t.Fatalf("batch %d block %d: filter of %d bytes for %d tokens with a digit", batch, i, len(filter), digitTokens[i].n)
			}
			for tok := range digitTokens[i].set {
				if !bloomHas(filter, tokenHash(tok)) {
					t.Fatalf("batch %d block %d: the filter lacks %q", batch, i, tok)
				}
			}
		}
		for _, d := range docs {
			d.AddIDField()
		}
		b.reset()
	}
}

// refDigitTokens are the body words with a digit of a block's records: how
// many occurrences, and which.
type refDigitTokens struct {
	n   int
	set map[string]bool
}

// refBucket is the bh term of a body word with a digit, worked out from
// FORMAT.md: FNV-1a, SplitMix64's finalizer, the top 12 bits in hex.
func refBucket(tok string) string {
	f := fnv.New64a()
	f.Write([]byte(tok))
	h := f.Sum64()
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	h ^= h >> 31
	return fmt.Sprintf("%03x", h>>52)
}

// refBlockTerms is what the block of recs' members should hold, from each
// member's terms (refRecordTerms).
func refBlockTerms(recs []Record, members []int32) map[string]map[string]int {
	out := map[string]map[string]int{}
	add := func(field, term string, n int) {
		m := out[field]
		if m == nil {
			m = map[string]int{}
			out[field] = m
		}
		m[term] += n
	}
	lo, hi := recs[members[0]].Time.UnixMilli(), recs[members[0]].Time.UnixMilli()
	for _, i := range members {
		r := &recs[i]
		lo, hi = min(lo, r.Time.UnixMilli()), max(hi, r.Time.UnixMilli())
		for f, ts := range refRecordTerms(r) {
			for term := range ts {
				add(f, term, 1)
			}
		}
	}
	first := &recs[members[0]]
	add(fieldService, first.Service, len(members))
	add(fieldSev, first.Severity, len(members))
	add(fieldTimeFirst, timeTerm(lo), 1)
	add(fieldTime, timeTerm(hi), 1)
	return out
}

// refRecordTerms is every term of one record by field, but the block-level
// fields (service, level, time bounds), worked out plainly from FORMAT.md.
func refRecordTerms(r *Record) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(field, term string) {
		if out[field] == nil {
			out[field] = map[string]bool{}
		}
		out[field][term] = true
	}
	var words []string
	tokenize(r.Body, func(t token) {
		if strings.ContainsAny(t.term, "0123456789") {
			if t.word { // chunks with a digit are not indexed
				add(fieldHashed, refBucket(t.term))
			}
		} else {
			add(fieldBody, t.term)
		}
		if t.word {
			words = append(words, t.term)
		}
	})
	// A pair word has no digit and a byte other than '_'.
	pairing := regexp.MustCompile(`^[^0-9]*[^0-9_][^0-9]*$`)
	for i := 1; i < len(words); i++ {
		if pairing.MatchString(words[i-1]) && pairing.MatchString(words[i]) {
			add("b2", words[i-1]+" "+words[i])
		}
	}
	add(fieldSevNum, fmt.Sprintf("%02d", effectiveSeverity(r.SeverityNumber, r.SeverityText)))
	for field, v := range map[string]string{fieldScope: r.ScopeName, fieldTrace: r.TraceID, fieldSpan: r.SpanID, fieldEvent: r.EventName} {
		if v != "" {
			add(field, v)
		}
	}
	ms := r.Time.UnixMilli()
	add("td", fmt.Sprintf("%010x", ms/86_400_000))
	add("th", fmt.Sprintf("%010x", ms/3_600_000))
	add("t5", fmt.Sprintf("%010x", ms/300_000))
	add("tg", fmt.Sprintf("%010x", ms/10_000))
	attrs := func(as []Attr, skipService bool) {
		for _, a := range as {
			if skipService && a.Key == "service.name" || a.Key == "" || len(a.Key) > MaxKeywordLen {
				continue
			}
			add(fieldKeys, a.Key)
			if len(a.Value) <= MaxKeywordLen {
				add("a."+a.Key, a.Value)
			}
			if v, ok := attrNumber(a); ok {
				for shift := uint(0); shift < 64; shift += 8 {
					add("n."+a.Key, string(numeric.MustNewPrefixCodedInt64(numeric.Float64ToInt64(v), shift)))
				}
			}
		}
	}
	attrs(r.Resource, true)
	attrs(r.ScopeAttributes, false)
	attrs(r.Attributes, false)
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
		words = maxReusedBlockTerms + rng.IntN(500) // a huge body
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

// BenchmarkBuildBlocks builds the block documents of frames of 1,000 Loghub
// records with a shipper's attributes, 16 services interleaved as a collector
// batches them, through one builder reset between batches as the indexer does.
func BenchmarkBuildBlocks(b *testing.B) {
	systems := loadLoghub(b)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]Record, 1000)
	for i := range recs {
		s := systems[i%len(systems)]
		line := s.lines[(i/len(systems))%len(s.lines)]
		recs[i] = Record{
			Time: base.Add(time.Duration(i) * 40 * time.Millisecond), Service: s.name, Severity: levelOf(int32(loghubLevel(line))),
			SeverityNumber: int32(loghubLevel(line)), Body: line,
			Resource:   []Attr{{Key: "service.name", Value: s.name}, {Key: "host.name", Value: s.name + "-1"}, {Key: "deployment.environment", Value: "prod"}},
			Attributes: []Attr{{Key: "log.file.name", Value: s.name + ".log"}, {Key: "log.iostream", Value: "stdout"}, {Key: "thread.id", Value: fmt.Sprint(i % 16), Type: "Int"}},
		}
	}
	bb := newBlockBuilder()
	var g frameBlocks
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for k, members := range g.split(recs) {
			bb.document(makeDocID(1, 0, k), recs, members)
		}
		bb.reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
