package logindex

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// TestFoldsToASCII checks foldsToASCII against every non-ASCII rune.
func TestFoldsToASCII(t *testing.T) {
	var want []string
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if unicode.ToLower(r) < utf8.RuneSelf {
			want = append(want, string(r))
		}
	}
	if !slices.Equal(foldsToASCII[:], want) {
		t.Fatalf("foldsToASCII = %q, want %q", foldsToASCII, want)
	}
}

func TestASCIILower(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		s := make([]byte, rng.IntN(40))
		for i := range s {
			s[i] = byte(rng.IntN(256))
			if rng.IntN(2) == 0 {
				s[i] &= 0x7f
			}
		}
		want := make([]byte, len(s))
		ascii := true
		for i, c := range s {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			want[i] = c
			ascii = ascii && c < utf8.RuneSelf
		}
		got := make([]byte, len(s))
		if isASCII := asciiLower(got, s); string(got) != string(want) || isASCII != ascii {
			t.Fatalf("asciiLower(%q) = %q, %v; want %q, %v", s, got, isASCII, want, ascii)
		}
	}
}

// matcherPieces are the pieces random bodies are made of: ASCII words and
// delimiters, non-ASCII letters (some of whose lower case is ASCII), invalid
// UTF-8 and words longer than maxTokenLen.
var matcherPieces = []string{
	"error", "Error", "ERROR", "connection", "refused", "user", "root", "kelvin", "istanbul", "a", "b", "x_1", "42", "10",
	" ", " ", " ", "\t", "\n", ".", ":", "=", "-", "/", "\"", "'", "(", ")", "[", "]", ",", ";", "|", "!", "?", "@", "*",
	"\u212aelvin", "\u0130stanbul", "\u0130", "\u212a", "ÄRGER", "ärger", "é", "ß", "ſ", "ı", "日本", "\u00a0", "\u2003", "\u0085",
	"\x00", "\x7f", "\xff", "\xc3", "\xe2\x84", "\xc4", "\ufffd", strings.Repeat("w", maxTokenLen), strings.Repeat("w", maxTokenLen+1),
	"10.0.0.1:22", "user=alice", "key:Value", "/var/log/syslog", "id=7f3a-09", "ERR-1042",
}

// asciiPieces are the matcherPieces that are ASCII.
var asciiPieces = func() (out []string) {
	for _, p := range matcherPieces {
		if isASCII(p) {
			out = append(out, p)
		}
	}
	return out
}()

// randomMatcherBody returns a body of random pieces, all ASCII one time in
// three (such bodies take the matcher's ASCII paths).
func randomMatcherBody(rng *rand.Rand) string {
	pieces := matcherPieces
	if rng.IntN(3) == 0 {
		pieces = asciiPieces
	}
	var b strings.Builder
	for range rng.IntN(25) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
		if rng.IntN(3) > 0 {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// TestMatcherTokenizeMatchesTokenize compares bodyView.tokenize with tokenize:
// the same terms, in the same order, and the same words.
func TestMatcherTokenizeMatchesTokenize(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var bodies []string
	for range 20000 {
		bodies = append(bodies, randomMatcherBody(rng))
	}
	for _, s := range loadLoghubIfPresent(t) {
		bodies = append(bodies, s.lines...)
	}
	var bv bodyView
	for _, s := range bodies {
		var want, wantWords []string
		tokenize(s, func(tk token) {
			want = append(want, tk.term)
			if tk.word {
				wantWords = append(wantWords, tk.term)
			}
		})
		bv.reset([]byte(s))
		bv.prepare()
		bv.tokenize()
		var got, gotWords []string
		for i := range bv.toks {
			got = append(got, string(bv.term(i)))
		}
		for _, i := range bv.words {
			gotWords = append(gotWords, string(bv.term(int(i))))
		}
		if !slices.Equal(got, want) || !slices.Equal(gotWords, wantWords) {
			t.Fatalf("tokens of %q:\n got %q words %q\nwant %q words %q", s, got, gotWords, want, wantWords)
		}
	}
}

// loadLoghubIfPresent is loadLoghub, or nothing when the samples are missing.
func loadLoghubIfPresent(t testing.TB) []loghubSystem {
	if files, _ := filepath.Glob(filepath.Join(loghubDir, "*", "*_2k.log")); len(files) == 0 {
		return nil
	}
	return loadLoghub(t)
}

var matcherBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// loghubRecords returns records built from every step-th Loghub line as a
// replay builds them: the line as the body, the system as the service, the
// level the line names, and resource and record attributes.
func loghubRecords(systems []loghubSystem, step int, rng *rand.Rand) []Record {
	var out []Record
	for _, s := range systems {
		for i := 0; i < len(s.lines); i += step {
			line := s.lines[i]
			sev := int32(loghubLevel(line))
			r := Record{
				Time:           matcherBase.Add(time.Duration(len(out)) * 43 * time.Millisecond),
				SeverityNumber: sev,
				Body:           line,
				BodyType:       "Str",
				Service:        s.name,
				Resource: []Attr{
					{Key: "service.name", Value: s.name, Type: "Str"},
					{Key: "host.name", Value: fmt.Sprintf("%s-%d", s.name, i%4), Type: "Str"},
				},
				Attributes: []Attr{
					{Key: "log.file.name", Value: s.name + ".log", Type: "Str"},
					{Key: "thread.id", Value: fmt.Sprint(1000 + i%37), Type: "Int"},
				},
			}
			if rng != nil {
				if rng.IntN(4) == 0 && sev != 0 {
					r.SeverityNumber, r.SeverityText = 0, []string{"info", "WARNING", " error ", "Fatal", "notice"}[rng.IntN(5)]
				}
				if rng.IntN(3) == 0 {
					r.TraceID = fmt.Sprintf("%032x", rng.Uint64())
					r.SpanID = fmt.Sprintf("%016x", rng.Uint64())
				}
				if rng.IntN(3) == 0 {
					r.Attributes = append(r.Attributes, Attr{Key: "latency_ms", Value: fmt.Sprint(rng.Float64() * 1000), Type: "Double"})
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// randomMatcherRecord returns a record with random content in every field the
// query language reads, edge cases included.
func randomMatcherRecord(rng *rand.Rand) Record {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	r := Record{
		Time:           matcherBase.Add(time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour),
		SeverityNumber: int32(rng.IntN(30)),
		Body:           randomMatcherBody(rng),
		BodyType:       pick("Str", "Map", ""),
		Service:        pick("checkout", "Checkout", "svc-1", "", "unknown_service", "\u212aelvin", "a\xffb"),
	}
	switch rng.IntN(10) {
	case 0:
		r.Time = time.Unix(0, rng.Int64N(1e12)-5e11) // around the epoch, negative too
	case 1:
		r.Time = time.Unix(0, rng.Int64()) // far
	}
	if rng.IntN(3) == 0 {
		r.SeverityNumber = 0
		r.SeverityText = pick("warn", "Error", " error ", "ınfo", "Warning", "bogus", "", "CRIT", "e", "\u00a0info", strings.Repeat("x", 40))
	} else if rng.IntN(5) == 0 {
		r.SeverityText = pick("warn", "debug", "")
	}
	if rng.IntN(20) == 0 {
		r.SeverityNumber = -1 // encodes as more than math.MaxInt32: decodeRecord refuses it
	}
	if rng.IntN(2) == 0 {
		r.TraceID = fmt.Sprintf("%032x", rng.Uint64())
		r.SpanID = fmt.Sprintf("%016x", rng.Uint64())
	}
	if rng.IntN(2) == 0 {
		r.ScopeName = pick("io.app", "scope.error", "", "ä.scope")
		r.ScopeVersion = "1.0"
	}
	if rng.IntN(3) == 0 {
		r.EventName = pick("login", "event.1", "")
	}
	attrs := func() []Attr {
		var as []Attr
		for range rng.IntN(5) {
			a := Attr{Key: pick("host.name", "thread.id", "service.name", "", "http.status", "latency", "é", strings.Repeat("k", MaxKeywordLen+1)), Type: "Str"}
			switch rng.IntN(6) {
			case 0:
				a.Value, a.Type = fmt.Sprint(rng.IntN(1000)-500), "Int"
			case 1:
				a.Value, a.Type = fmt.Sprint(rng.NormFloat64()*1e3), "Double"
			case 2:
				a.Value = pick(" 42", "42 ", "0x1p3", "1e400", "+Inf", "NaN", "-.5", ".5", "1_000", "", "7", strings.Repeat("9", 33))
			case 3:
				a.Value, a.Type = fmt.Sprint(rng.IntN(10)), pick("Bool", "Bytes", "Int")
			case 4:
				a.Value = strings.Repeat("v", MaxKeywordLen+rng.IntN(3)-1)
			default:
				a.Value = pick("error", "alpha", "Alpha", "a b", "10.0.0.1", "ä")
			}
			as = append(as, a)
		}
		return as
	}
	r.Resource, r.ScopeAttributes, r.Attributes = attrs(), attrs(), attrs()
	return r
}

// quoteQuery quotes s as a query phrase or field value.
func quoteQuery(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// matcherQueries builds queries from the content of recs: terms, phrases,
// wildcards and regular expressions over body words and tokens, field and
// attribute matches, key:*, numeric, severity and time ranges, and boolean
// combinations of them.
func matcherQueries(rng *rand.Rand, recs []Record, n int) []string {
	rec := func() *Record { return &recs[rng.IntN(len(recs))] }
	word := func() string {
		for range 10 {
			if ws := words(rec().Body); len(ws) > 0 {
				return ws[rng.IntN(len(ws))]
			}
		}
		return "error"
	}
	anyToken := func() string {
		for range 10 {
			var ts []string
			tokenize(rec().Body, func(tk token) { ts = append(ts, tk.term) })
			if len(ts) > 0 {
				return ts[rng.IntN(len(ts))]
			}
		}
		return "error"
	}
	attr := func() Attr {
		for range 10 {
			r := rec()
			as := slices.Concat(r.Resource, r.ScopeAttributes, r.Attributes)
			if len(as) > 0 {
				return as[rng.IntN(len(as))]
			}
		}
		return Attr{Key: "thread.id", Value: "1001"}
	}
	cut := func(w string) string {
		rs := []rune(w)
		return string(rs[:rng.IntN(len(rs)+1)])
	}
	levels := []string{"TRACE", "debug", "Info", "WARN", "warning", "error", "ERR", "fatal", "crit", "UNSPECIFIED", "0", "3", "13", "24"}
	var leaf func() string
	leaf = func() string {
		switch rng.IntN(24) {
		case 0, 1, 2:
			return word()
		case 3:
			return strings.ToUpper(word())
		case 4, 5:
			ws := words(rec().Body)
			if len(ws) < 2 {
				return word()
			}
			i := rng.IntN(len(ws) - 1)
			k := min(len(ws), i+2+rng.IntN(3))
			return quoteQuery(strings.Join(ws[i:k], " "))
		case 6:
			return quoteQuery(word() + " " + word())
		case 7:
			return cut(word()) + "*"
		case 8:
			w := []rune(word())
			w[rng.IntN(len(w))] = '?'
			return "*" + string(w)
		case 9:
			return "/" + strings.ReplaceAll(regexp.QuoteMeta(cut(anyToken())), "/", `\/`) + ".*/"
		case 10:
			return "/" + pick(rng, "[0-9]+", "blk_-?[0-9]+", "e.*r", "(?i)ERROR", "[a-z]+_[0-9]+", "k.*", "i.*", ".*\u212a.*",
				"(error|refused).*", "(conn|us)e.*", "err(or|no)?", "x_[0-9]{1,2}", "w{256}", "(ab)+c?", "[^ ]*=.*") + "/"
		case 11:
			return quoteQuery(anyToken())
		case 12:
			if t := anyToken(); !strings.ContainsAny(t, ` "()\`) {
				return t
			}
			return word()
		case 13:
			r := rec()
			return pick(rng, "service:", "service.name:") + pick(rng, quoteQuery(r.Service), cut(r.Service)+"*", quoteQuery(strings.ToUpper(r.Service)))
		case 14:
			return pick(rng, "severity:", "level:", "severity>=", "severity>", "severity<", "severity<=") + levels[rng.IntN(len(levels))]
		case 15:
			r := rec()
			switch rng.IntN(4) {
			case 0:
				return "scope:" + quoteQuery(r.ScopeName)
			case 1:
				return "trace_id:" + quoteQuery(r.TraceID)
			case 2:
				return "span_id:" + quoteQuery(r.SpanID)
			}
			return "event:" + quoteQuery(r.EventName)
		case 16:
			return pick(rng, "scope:*", "trace_id:*", "event:*", "span_id:*", "service:*", "severity:*", "severity:E*", "scope:io*", "trace_id:/[0-7].*/")
		case 17, 18:
			a := attr()
			if a.Key == "" || strings.ContainsAny(a.Key, " :") {
				return "thread.id:1001"
			}
			return a.Key + ":" + pick(rng, quoteQuery(a.Value), "*", cut(a.Value)+"*", "/"+regexp.QuoteMeta(cut(a.Value))+".*/")
		case 19, 20:
			a := attr()
			if a.Key == "" || strings.ContainsAny(a.Key, " :") {
				a.Key = "latency"
			}
			v := a.Value
			if _, err := fmt.Sscan(v, new(float64)); err != nil || strings.ContainsAny(v, " ") {
				v = fmt.Sprint(rng.IntN(1000) - 500)
			}
			return a.Key + pick(rng, ":>", ":>=", ":<", ":<=", ">", ">=", "<", "<=") + v
		case 21:
			r := rec()
			ts := r.Time.Add(time.Duration(rng.IntN(3)-1) * time.Millisecond)
			return "time:" + pick(rng, ">", ">=", "<", "<=") + ts.Format(time.RFC3339Nano)
		case 22:
			w := strings.Repeat("w", maxTokenLen)
			return pick(rng, "*", "body:*", quoteQuery("error "+w+" refused"), quoteQuery("error refused"), quoteQuery("a "+w), w, "\u212a*", "\u0130*", "kelvin", "istanbul", "i", "k", `"kelvin istanbul"`, "ärger", "ÄRGER", "ſ", "s")
		}
		return fmt.Sprintf("%s %s", word(), word())
	}
	var expr func(depth int) string
	expr = func(depth int) string {
		if depth > 2 || rng.IntN(3) == 0 {
			return leaf()
		}
		a, b := expr(depth+1), expr(depth+1)
		switch rng.IntN(7) {
		case 0:
			return a + " " + b
		case 1:
			return a + " OR " + b
		case 2:
			return a + " -" + b
		case 3:
			return "NOT " + a
		case 4:
			return "(" + a + " OR " + b + ") " + expr(depth+1)
		case 5:
			return a + " AND (" + b + " OR NOT " + expr(depth+1) + ")"
		}
		return a + " && !" + b
	}
	var out []string
	for len(out) < n {
		s := leaf()
		if len(out) >= n/2 {
			s = expr(0)
		}
		if _, err := ParseQuery(s); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func pick(rng *rand.Rand, s ...string) string { return s[rng.IntN(len(s))] }

// checkMatcher compares the matcher with decodeRecord and Query.Matches on b:
// both refuse it, or both give the same answer.
func checkMatcher(t testing.TB, q *Query, m *recordMatcher, b []byte) (matched bool) {
	t.Helper()
	var r Record
	return checkDecoded(t, q, m, b, &r, decodeRecord(b, &r))
}

// checkDecoded is checkMatcher with b decoded already: r and derr are what
// decodeRecord gave.
func checkDecoded(t testing.TB, q *Query, m *recordMatcher, b []byte, r *Record, derr error) (matched bool) {
	t.Helper()
	got, err := m.match(b)
	if derr != nil || err != nil {
		if derr == nil || err == nil || err.Error() != derr.Error() || !errors.Is(err, errShortRecord) {
			t.Fatalf("query %q, record %q: matcher error %v, decodeRecord error %v", q, b, err, derr)
		}
		return false
	}
	if want := q.Matches(r); got != want {
		t.Fatalf("query %q, record %+v: matcher %v, Matches %v", q, r, got, want)
	}
	return got
}

// TestRecordMatcherMatchesDecodeAndMatches checks that the matcher answers as
// decodeRecord and Query.Matches do, for queries built from the records'
// content, over Loghub lines and random records, and over damaged encodings.
func TestRecordMatcherMatchesDecodeAndMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	step, nRandom, nQueries := 8, 2000, 400
	if testing.Short() {
		step, nRandom, nQueries = 40, 500, 150
	}
	recs := loghubRecords(loadLoghubIfPresent(t), step, rng)
	for range nRandom {
		recs = append(recs, randomMatcherRecord(rng))
	}
	encoded := make([][]byte, len(recs))
	decoded := make([]Record, len(recs))
	derrs := make([]error, len(recs))
	for i := range recs {
		encoded[i] = appendRecord(nil, &recs[i])
		derrs[i] = decodeRecord(encoded[i], &decoded[i])
	}
	queries := matcherQueries(rng, recs, nQueries)
	var classes [4]int
	for i := range recs {
		bv := bodyView{}
		bv.reset([]byte(recs[i].Body))
		bv.prepare()
		classes[bv.class]++
	}
	total, matched := 0, 0
	matchingQueries := 0
	for _, s := range queries {
		q, err := ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		m := newRecordMatcher(q)
		n := 0
		for i, b := range encoded {
			if checkDecoded(t, q, m, b, &decoded[i], derrs[i]) {
				n++
			}
		}
		total += len(encoded)
		matched += n
		if n > 0 && n < len(encoded) {
			matchingQueries++
		}
	}
	t.Logf("bodies: %d ASCII, %d not ASCII without runes lowering to ASCII, %d with them", classes[bodyASCII], classes[bodyFoldable], classes[bodyOther])
	t.Logf("%d records, %d queries (%d matching some records but not all), %d of %d pairs matched", len(recs), len(queries), matchingQueries, matched, total)
	if matchingQueries < len(queries)/4 {
		t.Fatalf("only %d of %d queries tell records apart", matchingQueries, len(queries))
	}

	// Damaged encodings: truncated, a byte changed, a byte appended.
	for _, s := range queries[:min(len(queries), 40)] {
		q, _ := ParseQuery(s)
		m := newRecordMatcher(q)
		for range 300 {
			b := slices.Clone(encoded[rng.IntN(len(encoded))])
			switch rng.IntN(3) {
			case 0:
				b = b[:rng.IntN(len(b)+1)]
			case 1:
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			default:
				b = append(b, byte(rng.IntN(256)))
			}
			checkMatcher(t, q, m, b)
		}
	}
}

func TestRecordTime(t *testing.T) {
	for _, ns := range []int64{0, 1, -1, 1772366400123456789, math.MinInt64, math.MaxInt64} {
		r := Record{Time: time.Unix(0, ns), Body: "x"}
		b := appendRecord(nil, &r)
		got, err := recordTime(b)
		if err != nil || got != ns {
			t.Errorf("recordTime of a record at %d = %d, %v", ns, got, err)
		}
	}
	for _, b := range [][]byte{nil, {2, 0}, {recordVersion}, {recordVersion, 0x80}} {
		var r Record
		derr := decodeRecord(b, &r)
		_, err := recordTime(b)
		if err == nil || err.Error() != derr.Error() || !errors.Is(err, errShortRecord) {
			t.Errorf("recordTime(%q): error %v, decodeRecord error %v", b, err, derr)
		}
	}
}

// TestRecordMatcherAllocs checks that matching records allocates nothing once
// the matcher's buffers have grown: Loghub lines as a replay builds them, and
// records with non-ASCII bodies and severity texts. (A severity text that is
// not ASCII, or a numeric attribute value that strconv refuses, allocates.)
func TestRecordMatcherAllocs(t *testing.T) {
	recs := []Record{
		{Time: matcherBase, SeverityNumber: 17, Body: "Connection refused from 10.0.0.1:22 user=Alice [main] took 12ms", Service: "sshd",
			Attributes: []Attr{{Key: "thread.id", Value: "42", Type: "Int"}, {Key: "host.name", Value: "h1", Type: "Str"}, {Key: "latency", Value: "-0.5e3", Type: "Double"}}},
		{Time: matcherBase, SeverityText: "Warning", Body: "ÄRGER mit \u212aelvin: invalid user root \xff", Service: "app", ScopeName: "io.app",
			Resource: []Attr{{Key: "service.name", Value: "app", Type: "Str"}, {Key: "thread.id", Value: " 7 ", Type: "Str"}}},
		{Time: matcherBase, SeverityText: " error ", Body: "İstanbul ärger 日本 connection refused", Service: "app", TraceID: "0af7651916cd43dd8448eb211c80319c"},
	}
	recs = append(recs, loghubRecords(loadLoghubIfPresent(t), 97, rand.New(rand.NewPCG(5, 6)))...)
	var encoded [][]byte
	for i := range recs {
		if b := appendRecord(nil, &recs[i]); decodeRecord(b, new(Record)) == nil {
			encoded = append(encoded, b)
		}
	}
	for _, s := range []string{"refused", "kelvin", `"invalid user root"`, `"connection refused"`, "fail* OR conn*", "/[0-9]+ms/",
		"service:sshd user", "severity>=WARN", "severity:warn", "thread.id:>=40 host.name:h*", "thread.id:42", "host.name:*",
		"time:>=2026-03-01T12:00:00Z", "ärger -root", "trace_id:* OR scope:io.app"} {
		q, err := ParseQuery(s)
		if err != nil {
			t.Fatal(err)
		}
		m := newRecordMatcher(q)
		for _, b := range encoded {
			m.match(b) // grow the buffers
		}
		if n := testing.AllocsPerRun(20, func() {
			for _, b := range encoded {
				m.match(b)
			}
		}); n != 0 {
			t.Errorf("%q: %v allocations per run", s, n)
		}
	}
}

// FuzzRecordMatcher compares the matcher with decodeRecord and Query.Matches on
// arbitrary bytes and queries.
func FuzzRecordMatcher(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	recs := []Record{
		{Time: matcherBase, SeverityNumber: 9, Body: "Connection refused from 10.0.0.1:22 user=alice", Service: "checkout", TraceID: "0af7651916cd43dd8448eb211c80319c",
			Attributes: []Attr{{Key: "user_id", Value: "42", Type: "Str"}, {Key: "duration_ms", Value: "250", Type: "Int"}}},
		{Time: matcherBase, SeverityText: "warn", Body: "\u212aelvin \u0130stanbul ärger \xff", Service: "s", ScopeName: "io.app", EventName: "login"},
	}
	for range 4 {
		recs = append(recs, randomMatcherRecord(rng))
	}
	queries := append(slices.Clone(fuzzSeeds), "kelvin", "istanbul", `"refused from"`, "conn*", "user_id:>40", "severity:warn", "event:login")
	for i, s := range queries {
		f.Add(appendRecord(nil, &recs[i%len(recs)]), s)
	}
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			return
		}
		checkMatcher(t, q, newRecordMatcher(q), b)
	})
}

// BenchmarkRecordMatcher compares decodeRecord and Query.Matches with the
// matcher over records built from Loghub lines as a replay builds them, and
// reports the time per record.
func BenchmarkRecordMatcher(b *testing.B) {
	recs := loghubRecords(loadLoghub(b), 8, nil)
	encoded := make([][]byte, len(recs))
	for i := range recs {
		encoded[i] = appendRecord(nil, &recs[i])
	}
	for _, bq := range []struct{ name, q string }{
		{"rare", "exception"},
		{"common", "info"},
		{"phrase", `"connection closed"`},
		{"service_word", "service:openssh failed"},
		{"severity", "severity>=ERROR"},
		{"wildcard", "fail*"},
	} {
		q, err := ParseQuery(bq.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bq.name+"/decode+Matches", func(b *testing.B) {
			var r Record
			for b.Loop() {
				for _, e := range encoded {
					if err := decodeRecord(e, &r); err != nil {
						b.Fatal(err)
					}
					q.Matches(&r)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(encoded)), "ns/record")
		})
		b.Run(bq.name+"/matcher", func(b *testing.B) {
			m := newRecordMatcher(q)
			for b.Loop() {
				for _, e := range encoded {
					if _, err := m.match(e); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(encoded)), "ns/record")
		})
	}
}
