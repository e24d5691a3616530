package logindex

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// Matching records in their encoded form. A search that scans the records of a
// block asks of each whether it matches the query; decoding it into a Record
// and calling Query.Matches makes a string of every field and a map of the
// body's tokens. A recordMatcher answers the same question from appendRecord's
// bytes:
//
//   - It walks the record once, checking every length as decodeRecord does (so
//     that it refuses exactly the records decodeRecord refuses), and keeps the
//     fields as slices of the encoding.
//   - It evaluates the query's tree with the cheapest children of an AND or an
//     OR first: fixed fields, then attributes, then body terms and phrases,
//     then body wildcards and regular expressions.
//   - Body leaves look at a copy of the body with ASCII letters lower-cased.
//     For an ASCII body the words are its maximal runs of letters, digits and
//     '_' (but those longer than maxTokenLen), so a term or a phrase is
//     decided by a substring search and a look at the bytes around it,
//     without tokenizing. Other leaves and other bodies need the tokens, which
//     are listed at most once per record, into reused buffers. Before that, a
//     leaf that needs some ASCII strings in the body (its words, or literals
//     that every token its pattern matches contains) is rejected when the
//     copy lacks one of them, unless the body holds a rune of foldsToASCII.
//
// That test is sound because tokens are the lower case of pieces of the body,
// rune by rune, and the only non-ASCII runes whose lower case is ASCII are
// those in foldsToASCII: a body without them yields an ASCII string only from
// ASCII bytes, which lower-case bytewise.

// foldsToASCII holds the UTF-8 encodings of the non-ASCII runes whose lower
// case (unicode.ToLower) is ASCII: U+0130 LATIN CAPITAL LETTER I WITH DOT
// ABOVE and U+212A KELVIN SIGN. A test checks the list against every rune.
var foldsToASCII = [...]string{"\u0130", "\u212a"}

// recordMatcher matches records in their encoded form (appendRecord's bytes)
// against a query, with the answers decodeRecord and Query.Matches give. It
// keeps scratch space between records and is not safe for concurrent use.
type recordMatcher struct {
	root *matcherNode
	rec  encodedRecord
	body bodyView

	// Severity of the current record, computed once when a leaf needs it.
	sevDone bool
	sev     int32
	// The last severity text that needed a lookup, and its severity number.
	sevText    []byte
	sevTextNum int32
	sevTextSet bool
}

type matcherOp uint8

const (
	opLeaf matcherOp = iota
	opAnd
	opOr
	opNot
	opAll  // matches every record
	opNone // matches no record (what Matches says of a node it does not know)
)

// matcherNode is a node of the query's tree prepared for matching.
type matcherNode struct {
	op   matcherOp
	kids []*matcherNode
	m    *matchNode
	cost int // for ordering the children of AND and OR, cheapest first

	// Body leaves.
	term  []byte   // kindTerm: the word
	words [][]byte // kindPhrase: the words
	// lits are lower-case ASCII strings the leaf needs: the ASCII words of a
	// term or phrase, each of which must be a token, or literals that every
	// token a pattern matches contains. A body none of whose tokens can come
	// from non-ASCII runes matches only if its lower case contains them all.
	lits []needle
	// first is the term or the phrase's first word, for an ASCII body.
	first needle
	// asciiWords: the term or every word of the phrase is ASCII letters, digits
	// and '_', so an ASCII body decides it without tokenizing.
	asciiWords bool
	// noASCII: no ASCII token matches (a word or a required literal is not
	// ASCII), so an ASCII body never matches.
	noASCII bool
}

// newRecordMatcher prepares q for matching encoded records.
func newRecordMatcher(q *Query) *recordMatcher {
	return &recordMatcher{root: compileMatcher(q.root)}
}

func compileMatcher(n node) *matcherNode {
	switch n := n.(type) {
	case *andNode, *orNode:
		var kids []node
		op := opAnd
		if o, ok := n.(*orNode); ok {
			kids, op = o.kids, opOr
		} else {
			kids = n.(*andNode).kids
		}
		mn := &matcherNode{op: op}
		for _, k := range kids {
			c := compileMatcher(k)
			mn.kids = append(mn.kids, c)
			mn.cost = max(mn.cost, c.cost)
		}
		slices.SortStableFunc(mn.kids, func(a, b *matcherNode) int { return cmp.Compare(a.cost, b.cost) })
		return mn
	case *notNode:
		kid := compileMatcher(n.kid)
		return &matcherNode{op: opNot, kids: []*matcherNode{kid}, cost: kid.cost}
	case *matchNode:
		return compileLeaf(n)
	}
	return &matcherNode{op: opNone}
}

// Leaf costs, in the order a conjunction tries them.
const (
	costField = iota
	costAttr
	costBodyWords
	costBodyPattern
)

func compileLeaf(m *matchNode) *matcherNode {
	if m.kind == kindAll {
		return &matcherNode{op: opAll}
	}
	mn := &matcherNode{op: opLeaf, m: m, cost: costField}
	if m.field == fAttr {
		mn.cost = costAttr
	}
	if m.field != fBody {
		return mn
	}
	mn.cost = costBodyWords
	addWord := func(w string) {
		if !isASCII(w) {
			mn.noASCII = true
			mn.asciiWords = false
			return
		}
		mn.lits = append(mn.lits, newNeedle(w))
		for i := 0; i < len(w); i++ {
			if asciiClass[w[i]]&asciiWord == 0 {
				mn.asciiWords = false
			}
		}
	}
	switch m.kind {
	case kindTerm:
		mn.term = []byte(m.value)
		mn.asciiWords = true
		addWord(m.value)
	case kindPhrase:
		mn.asciiWords = true
		for _, w := range m.words {
			mn.words = append(mn.words, []byte(w))
			addWord(w)
		}
	case kindWildcard, kindRegexp:
		mn.cost = costBodyPattern
		if re, err := syntax.Parse(m.re.String(), syntax.Perl); err == nil {
			for _, l := range requiredLiterals(nil, re) {
				if isASCII(l) {
					mn.lits = append(mn.lits, newNeedle(lowerASCII(l)))
				} else {
					mn.noASCII = true
				}
			}
		}
	}
	if mn.asciiWords {
		mn.first = mn.lits[0]
	}
	return mn
}

// needle is a string to search for in a lower-cased body, with the position
// of its rarest byte (by how often bytes occur in Loghub's lines), which a
// search looks for first: looking for the first byte would stop at every
// 'e' or '0'.
type needle struct {
	b    []byte
	rare int
}

// byteCommonness orders letters, digits and '_' from the most to the least
// common in Loghub's lines, lower-cased; other bytes count as rarer still.
const byteCommonness = "e01rtoan2sicd354l768mup9hfkbgwy_xvjzq"

func newNeedle(s string) needle {
	n := needle{b: []byte(s)}
	best := -1
	for i := 0; i < len(s); i++ {
		r := strings.IndexByte(byteCommonness, s[i])
		if r < 0 {
			r = len(byteCommonness)
		}
		if r > best {
			n.rare, best = i, r
		}
	}
	return n
}

// index returns the first offset at or after off where n occurs in s, or -1.
func (n needle) index(s []byte, off int) int {
	c := n.b[n.rare]
	for i := off + n.rare; i < len(s); i++ {
		j := bytes.IndexByte(s[i:], c)
		if j < 0 {
			return -1
		}
		i += j
		start := i - n.rare
		if start+len(n.b) > len(s) {
			return -1
		}
		if string(s[start:start+len(n.b)]) == string(n.b) {
			return start
		}
	}
	return -1
}

// requiredLiterals appends the literals (not case-folded) that every string
// re matches contains.
func requiredLiterals(dst []string, re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 && len(re.Rune) > 0 {
			dst = append(dst, string(re.Rune))
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			dst = requiredLiterals(dst, s)
		}
	case syntax.OpCapture, syntax.OpPlus:
		dst = requiredLiterals(dst, re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			dst = requiredLiterals(dst, re.Sub[0])
		}
	}
	return dst
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// match reports whether the encoded record b matches the query. A record that
// decodeRecord refuses is an error, the one decodeRecord returns (it wraps
// errShortRecord).
func (m *recordMatcher) match(b []byte) (bool, error) {
	if !m.rec.parse(b) {
		var r Record
		if err := decodeRecord(b, &r); err != nil {
			return false, err
		}
		return false, fmt.Errorf("cannot decode record of %d bytes: %w", len(b), errShortRecord)
	}
	m.sevDone = false
	m.body.reset(m.rec.body)
	return m.eval(m.root), nil
}

// recordTime returns the time (Unix ns) of the encoded record b, reading only
// its version and time: the rest of the record is not checked.
func recordTime(b []byte) (int64, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return 0, fmt.Errorf("cannot decode record of %d bytes: unknown version: %w", len(b), errShortRecord)
	}
	t, n := binary.Varint(b[1:])
	if n <= 0 {
		return 0, fmt.Errorf("cannot decode time at offset 1 of %d bytes: %w", len(b), errShortRecord)
	}
	return t, nil
}

func (m *recordMatcher) eval(n *matcherNode) bool {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if !m.eval(k) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if m.eval(k) {
				return true
			}
		}
		return false
	case opNot:
		return !m.eval(n.kids[0])
	case opAll:
		return true
	case opNone:
		return false
	}
	if n.m.field == fBody {
		return m.matchBody(n)
	}
	return m.matchField(n.m)
}

// severity returns the current record's effective severity number.
func (m *recordMatcher) severity() int32 {
	if m.sevDone {
		return m.sev
	}
	m.sevDone = true
	num, text := m.rec.sevNum, m.rec.sevText
	switch {
	case num >= 1 && num <= 24:
		m.sev = int32(num)
	case m.sevTextSet && bytes.Equal(text, m.sevText):
		m.sev = m.sevTextNum
	default:
		m.sev = severityOfText(text)
		m.sevText = append(m.sevText[:0], text...)
		m.sevTextNum, m.sevTextSet = m.sev, true
	}
	return m.sev
}

// severityOfText returns effectiveSeverity(0, string(text)), without
// allocating when text is ASCII.
func severityOfText(text []byte) int32 {
	if !isASCIIBytes(text) {
		return effectiveSeverity(0, string(text))
	}
	// For ASCII, bytes.TrimSpace and an ASCII upper case are what levelNumber
	// does; no level name is longer than 16 bytes.
	text = bytes.TrimSpace(text)
	var buf [16]byte
	if len(text) > len(buf) {
		return 0
	}
	for i, c := range text {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	n, _ := levelNumber(string(buf[:len(text)]))
	return n
}

func testValue(q *matchNode, v []byte) bool {
	if q.kind == kindTerm {
		return string(v) == q.value
	}
	return q.re.Match(v)
}

// matchField matches a leaf on any field but the body, as matchLeaf does.
func (m *recordMatcher) matchField(q *matchNode) bool {
	r := &m.rec
	if q.kind == kindRange {
		switch q.field {
		case fTime:
			ms := floorDiv(r.time, 1e6)
			return ms >= q.timeLo && ms < q.timeHi
		case fSeverity:
			n := float64(m.severity())
			return n >= q.lo && n <= q.hi
		case fAttr:
			return r.eachAttr(func(k, v, typ []byte) bool {
				if string(k) != q.key {
					return false
				}
				a := Attr{Value: string(v), Type: string(typ)}
				f, ok := attrNumber(a)
				if !ok {
					return false
				}
				if q.hasLo && (f < q.lo || (f == q.lo && !q.loIncl)) {
					return false
				}
				if q.hasHi && (f > q.hi || (f == q.hi && !q.hiIncl)) {
					return false
				}
				return true
			})
		}
		return false
	}
	if q.field == fAttr && q.kind == kindWildcard && q.value == ".*" {
		return r.eachAttr(func(k, _, _ []byte) bool {
			return string(k) == q.key && len(k) > 0 && len(k) <= MaxKeywordLen
		})
	}
	switch q.field {
	case fService:
		return testValue(q, r.service)
	case fSeverity:
		lv := levelOf(m.severity())
		if q.kind == kindTerm {
			return lv == q.value
		}
		return q.re.MatchString(lv)
	case fScope:
		return len(r.scopeName) > 0 && testValue(q, r.scopeName)
	case fTrace:
		return len(r.traceID) > 0 && testValue(q, r.traceID)
	case fSpan:
		return len(r.spanID) > 0 && testValue(q, r.spanID)
	case fEvent:
		return len(r.eventName) > 0 && testValue(q, r.eventName)
	case fAttr:
		return r.eachAttr(func(k, v, _ []byte) bool {
			return string(k) == q.key && len(v) <= MaxKeywordLen && len(k) <= MaxKeywordLen && testValue(q, v)
		})
	}
	return false
}

// matchBody matches a body leaf, as matchLeaf does over the body's tokens.
func (m *recordMatcher) matchBody(n *matcherNode) bool {
	bv := &m.body
	bv.prepare()
	switch bv.class {
	case bodyASCII:
		if n.noASCII {
			return false
		}
		if n.asciiWords {
			if n.m.kind == kindTerm {
				return hasWord(bv.low, n.first)
			}
			return hasPhrase(bv.low, n.first, n.words)
		}
		if !containsAll(bv.low, n.lits) {
			return false
		}
	case bodyFoldable:
		if !containsAll(bv.low, n.lits) {
			return false
		}
	}
	bv.tokenize()
	switch n.m.kind {
	case kindTerm:
		for i := range bv.toks {
			if bytes.Equal(bv.term(i), n.term) {
				return true
			}
		}
	case kindPhrase:
		return bv.containsSeq(n.words)
	case kindWildcard, kindRegexp:
		for i := range bv.toks {
			if t := bv.term(i); containsAll(t, n.lits) && n.m.re.Match(t) {
				return true
			}
		}
	}
	return false
}

// containsAll reports whether s contains every one of lits.
func containsAll(s []byte, lits []needle) bool {
	for _, l := range lits {
		if l.index(s, 0) < 0 {
			return false
		}
	}
	return true
}

func isASCIIWordByte(c byte) bool { return c < utf8.RuneSelf && asciiClass[c]&asciiWord != 0 }

// hasWord reports whether the lower-cased ASCII body low has the word w (ASCII
// letters, digits and '_') as a whole word.
func hasWord(low []byte, w needle) bool {
	for off := 0; ; {
		i := w.index(low, off)
		if i < 0 {
			return false
		}
		end := i + len(w.b)
		if (i == 0 || !isASCIIWordByte(low[i-1])) && (end == len(low) || !isASCIIWordByte(low[end])) {
			return true
		}
		off = i + 1
	}
}

// hasPhrase reports whether the lower-cased ASCII body low has the words ws
// one after the other in its list of words (runs of ASCII letters, digits and
// '_', but those longer than maxTokenLen, which the tokenizer leaves out).
func hasPhrase(low []byte, first needle, ws [][]byte) bool {
	for off := 0; ; {
		i := first.index(low, off)
		if i < 0 {
			return false
		}
		off = i + 1
		end := i + len(first.b)
		if (i > 0 && isASCIIWordByte(low[i-1])) || (end < len(low) && isASCIIWordByte(low[end])) {
			continue
		}
		j, k := end, 1
		for k < len(ws) {
			for j < len(low) && !isASCIIWordByte(low[j]) {
				j++
			}
			s := j
			for j < len(low) && isASCIIWordByte(low[j]) {
				j++
			}
			if s == j {
				break // no more words
			}
			if j-s > maxTokenLen {
				continue
			}
			if !bytes.Equal(low[s:j], ws[k]) {
				break
			}
			k++
		}
		if k == len(ws) {
			return true
		}
	}
}

// encodedRecord holds the fields of an encoded record as slices of its bytes.
type encodedRecord struct {
	time      int64
	sevNum    uint64
	sevText   []byte
	body      []byte
	traceID   []byte
	spanID    []byte
	eventName []byte
	service   []byte
	scopeName []byte
	// The attributes as encoded after their count.
	resource, scopeAttrs, attrs []byte
}

// The record walk. Each step takes the offset to read at and returns the
// offset after what it read, or -1 where decodeRecord would fail; a step at
// offset -1 returns -1, so a walk checks for failure once, at its end. One-byte
// varints, nearly every length, are read without a call.

func uvarintAt(b []byte, off int) (uint64, int) {
	if uint(off) < uint(len(b)) && b[off] < 0x80 {
		return uint64(b[off]), off + 1
	}
	return uvarintSlow(b, off)
}

func uvarintSlow(b []byte, off int) (uint64, int) {
	if off < 0 {
		return 0, -1
	}
	v, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return 0, -1
	}
	return v, off + n
}

func varintAt(b []byte, off int) (int64, int) {
	if off < 0 {
		return 0, -1
	}
	v, n := binary.Varint(b[off:])
	if n <= 0 {
		return 0, -1
	}
	return v, off + n
}

func strAt(b []byte, off int) ([]byte, int) {
	if uint(off) < uint(len(b)) {
		if end := off + 1 + int(b[off]); b[off] < 0x80 && end <= len(b) {
			return b[off+1 : end], end
		}
	}
	return strSlow(b, off)
}

func strSlow(b []byte, off int) ([]byte, int) {
	n, off := uvarintSlow(b, off)
	if off < 0 || n > uint64(len(b)-off) {
		return nil, -1
	}
	return b[off : off+int(n)], off + int(n)
}

// attrsAt reads a count and that many attributes and returns their encoding
// after the count.
func attrsAt(b []byte, off int) ([]byte, int) {
	n, off := uvarintAt(b, off)
	if off < 0 || n == 0 {
		return nil, off
	}
	if n > uint64(len(b)-off) {
		return nil, -1
	}
	start := off
	for i := 3 * n; i > 0; i-- { // key, value and type of each
		if off < len(b) && b[off] < 0x80 {
			off += 1 + int(b[off])
			if off > len(b) {
				return nil, -1
			}
			continue
		}
		if _, off = strSlow(b, off); off < 0 {
			return nil, -1
		}
	}
	return b[start:off], off
}

// parse reads b into e and reports whether decodeRecord would decode it.
func (e *encodedRecord) parse(b []byte) bool {
	if len(b) == 0 || b[0] != recordVersion {
		return false
	}
	off := 1
	e.time, off = varintAt(b, off)
	_, off = varintAt(b, off) // observed time
	e.sevNum, off = uvarintAt(b, off)
	if e.sevNum > math.MaxInt32 {
		return false
	}
	e.sevText, off = strAt(b, off)
	_, off = strAt(b, off) // body type
	e.body, off = strAt(b, off)
	e.traceID, off = strAt(b, off)
	e.spanID, off = strAt(b, off)
	_, off = uvarintAt(b, off) // flags
	e.eventName, off = strAt(b, off)
	e.service, off = strAt(b, off)
	e.resource, off = attrsAt(b, off)
	_, off = strAt(b, off) // resource schema URL
	e.scopeName, off = strAt(b, off)
	_, off = strAt(b, off) // scope version
	e.scopeAttrs, off = attrsAt(b, off)
	_, off = strAt(b, off) // scope schema URL
	e.attrs, off = attrsAt(b, off)
	_, off = uvarintAt(b, off) // dropped attributes count
	return off == len(b)
}

// eachAttr calls fn for every indexed attribute (as eachAttr does for a
// Record) until it returns true, and reports whether one did.
func (e *encodedRecord) eachAttr(fn func(key, value, typ []byte) bool) bool {
	return attrsAny(e.resource, true, fn) || attrsAny(e.scopeAttrs, false, fn) || attrsAny(e.attrs, false, fn)
}

// attrsAny walks attributes that parse has checked.
func attrsAny(b []byte, resource bool, fn func(key, value, typ []byte) bool) bool {
	for off := 0; off < len(b); {
		var k, v, t []byte
		k, off = strAt(b, off)
		v, off = strAt(b, off)
		t, off = strAt(b, off)
		if resource && string(k) == "service.name" {
			continue
		}
		if fn(k, v, t) {
			return true
		}
	}
	return false
}

// Body classes, by what a lower-cased copy of the body can tell.
const (
	bodyUnknown  = iota
	bodyASCII    // ASCII only: words are runs of ASCII word bytes
	bodyFoldable // not ASCII, but no rune in it lower-cases to ASCII
	bodyOther
)

// bodyView is the current record's body prepared for body leaves: its ASCII
// lower case, computed on first use, and its tokens, computed when a leaf
// needs them.
type bodyView struct {
	raw   []byte
	class int
	low   []byte // raw with ASCII letters lower-cased
	// Tokens, once tokenized.
	tokenized bool
	toks      []tokenRef
	words     []int32 // indices in toks of the words, in order
	buf       []byte  // lower-cased terms of pieces that are not ASCII
}

// tokenRef is one token: bytes off:end of low, or of buf when inBuf.
type tokenRef struct {
	off, end int32
	inBuf    bool
}

func (bv *bodyView) reset(raw []byte) {
	bv.raw = raw
	bv.class = bodyUnknown
	bv.tokenized = false
}

func (bv *bodyView) prepare() {
	if bv.class != bodyUnknown {
		return
	}
	bv.low = slices.Grow(bv.low[:0], len(bv.raw))[:len(bv.raw)]
	if asciiLower(bv.low, bv.raw) {
		bv.class = bodyASCII
		return
	}
	bv.class = bodyFoldable
	for _, s := range foldsToASCII {
		if bytes.Contains(bv.raw, []byte(s)) {
			bv.class = bodyOther
		}
	}
}

// asciiLower writes s to dst with ASCII letters lower-cased (other bytes as
// they are) and reports whether s is ASCII. dst is at least as long as s.
func asciiLower(dst, s []byte) bool {
	const hi = 0x8080808080808080
	var all uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		all |= x
		// Per byte c (its low 7 bits h): h+0x3f has bit 7 set when h >= 'A',
		// h+0x25 when h > 'Z'; neither carries into the next byte.
		h := x &^ hi
		upper := (h + 0x3f3f3f3f3f3f3f3f) &^ (h + 0x2525252525252525) &^ x & hi
		binary.LittleEndian.PutUint64(dst[i:], x|upper>>2)
	}
	for ; i < len(s); i++ {
		c := s[i]
		all |= uint64(c)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return all&hi == 0
}

func (bv *bodyView) term(i int) []byte {
	t := bv.toks[i]
	if t.inBuf {
		return bv.buf[t.off:t.end]
	}
	return bv.low[t.off:t.end]
}

func (bv *bodyView) containsSeq(ws [][]byte) bool {
outer:
	for i := 0; i+len(ws) <= len(bv.words); i++ {
		for j, w := range ws {
			if !bytes.Equal(bv.term(int(bv.words[i+j])), w) {
				continue outer
			}
		}
		return true
	}
	return false
}

// tokenize lists the body's tokens as tokenize (analyzer.go) emits them,
// positions aside.
func (bv *bodyView) tokenize() {
	if bv.tokenized {
		return
	}
	bv.tokenized = true
	bv.toks, bv.words, bv.buf = bv.toks[:0], bv.words[:0], bv.buf[:0]
	// The bytes are only read while the spans are listed: a string that
	// shares them costs no copy.
	tokenSpans(unsafe.String(unsafe.SliceData(bv.raw), len(bv.raw)), bv.span)
}

// span lists one token of tokenSpans.
func (bv *bodyView) span(start, end, _ int, word bool) {
	if word {
		bv.words = append(bv.words, int32(len(bv.toks)))
	}
	bv.add(start, end)
}

// add lists the lower case of raw[off:end] as a token: bytes of low when they
// are ASCII, else lower-cased rune by rune into buf, as lower does.
func (bv *bodyView) add(off, end int) {
	if bv.class == bodyASCII || isASCIIBytes(bv.raw[off:end]) {
		bv.toks = append(bv.toks, tokenRef{off: int32(off), end: int32(end)})
		return
	}
	start := len(bv.buf)
	for i := off; i < end; {
		c := bv.raw[i]
		if c < utf8.RuneSelf {
			bv.buf = append(bv.buf, bv.low[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(bv.raw[i:end])
		bv.buf = utf8.AppendRune(bv.buf, unicode.ToLower(r))
		i += n
	}
	bv.toks = append(bv.toks, tokenRef{off: int32(start), end: int32(len(bv.buf)), inBuf: true})
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
