package logindex

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	vregexp "github.com/blevesearch/vellum/regexp"
)

// The query language: Bleve's query-string syntax with the changes log users
// expect.
//
//	connection refused        both words (terms are ANDed by default)
//	a OR b, a AND b, NOT a    boolean operators (upper case), also || && ! and -a
//	(a OR b) -c               grouping and exclusion
//	"connection refused"      phrase: the words in this order
//	10.0.0.1  /var/log        a term of several words is a phrase of them
//	fail*  ?rror              wildcards, matched against whole tokens
//	/err(or|no)[0-9]+/        regular expression, matched against whole tokens
//	service:checkout          field match: service, severity, scope, trace_id,
//	                          span_id, event, body, or any attribute key
//	user_id:42  http.method:GET    attribute match (exact, case-sensitive)
//	http.url:*checkout*       wildcard over a field's values
//	duration_ms:>250  code:<=499   numeric ranges on attributes
//	severity>=WARN  severity:error  levels by OTLP severity number
//	time:>=2026-01-02T15:04:05Z     date ranges (RFC 3339 or Unix seconds)
//	field:(a OR b)            a group applied to one field
//	\:  \"  \(                backslash escapes a special character in a term
//	*  *:*  body:*            every record, exactly like the empty query
//
// A bare * (or **, or *:*, or body:*) is not a wildcard over body tokens but
// "match all": it costs what the empty query costs and also matches records
// with an empty body. Inside a query it is dropped from an AND (error * is
// error) and makes an OR match everything. Negating it (-*, NOT *, NOT (* OR a))
// is a QueryError, since it would exclude every record. Other wildcards (fail*,
// *fail, f*l) match tokens as usual, and field:* still means the field is present.
//
// Body terms are lower-cased; field values are compared as written except
// severity, which accepts any case and common spellings (warning, err, crit...).

// QueryError is a query that cannot be parsed; Error is the parser's message.
// HTTP handlers answer it with 400 (errors.As).
type QueryError struct {
	Query string
	Pos   int // byte offset in Query
	Msg   string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("cannot parse query at position %d: %s", e.Pos, e.Msg)
}

// Limits of a query (beyond them it is a QueryError).
const (
	maxQueryLen   = 8192
	maxQueryNodes = 512
	maxQueryDepth = 32
)

type matchKind int

const (
	kindTerm     matchKind = iota // exact term (body: a word; fields: the value)
	kindPhrase                    // body: word sequence
	kindWildcard                  // pattern with * and ?
	kindRegexp                    // regular expression
	kindRange                     // comparison
	kindAll                       // matches every record
)

// fieldKind classifies a query field.
type fieldKind int

const (
	fBody fieldKind = iota
	fService
	fSeverity
	fScope
	fTrace
	fSpan
	fEvent
	fTime
	fAttr
)

type node interface{ isNode() }

type andNode struct{ kids []node }
type orNode struct{ kids []node }
type notNode struct{ kid node }

type matchNode struct {
	field fieldKind
	key   string // attribute key for fAttr
	kind  matchKind
	value string   // term, pattern source or regexp
	words []string // body phrase words
	re    *regexp.Regexp
	// ranges
	lo, hi         float64
	hasLo, hasHi   bool
	loIncl, hiIncl bool
	timeLo, timeHi int64 // ms, [lo, hi)
}

func (*andNode) isNode()   {}
func (*orNode) isNode()    {}
func (*notNode) isNode()   {}
func (*matchNode) isNode() {}

// Query is a parsed query, ready to search with or to match records against.
type Query struct {
	src  string
	root node
}

// String returns the query as it was written.
func (q *Query) String() string { return q.src }

// ParseQuery parses a query. An empty query matches every record. The error is a
// *QueryError.
func ParseQuery(s string) (*Query, error) {
	if len(s) > maxQueryLen {
		return nil, &QueryError{Query: s, Pos: maxQueryLen, Msg: fmt.Sprintf("query is longer than %d bytes", maxQueryLen)}
	}
	if !utf8.ValidString(s) {
		return nil, &QueryError{Query: s, Msg: "query is not valid UTF-8"}
	}
	p := &parser{s: s}
	root, err := p.parseOr(nil, 0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(s) {
		return nil, p.errf("unexpected %q", string(s[p.pos]))
	}
	if root == nil {
		root = &matchNode{kind: kindAll}
	}
	return &Query{src: s, root: root}, nil
}

type parser struct {
	s     string
	pos   int
	nodes int
}

func (p *parser) errf(format string, args ...any) error {
	return &QueryError{Query: p.s, Pos: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += n
	}
}

// keyword reports whether the operator word kw starts at pos and ends there.
func (p *parser) keyword(kw string) bool {
	if !strings.HasPrefix(p.s[p.pos:], kw) {
		return false
	}
	end := p.pos + len(kw)
	if end == len(p.s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(p.s[end:])
	if kw == "||" || kw == "&&" {
		return true
	}
	return unicode.IsSpace(r) || r == '(' || r == '"'
}

// fieldCtx is the field a group like field:(a OR b) applies to; nil for the body.
type fieldCtx struct {
	name string
}

func (p *parser) parseOr(fc *fieldCtx, depth int) (node, error) {
	if depth > maxQueryDepth {
		return nil, p.errf("query nests deeper than %d", maxQueryDepth)
	}
	var kids []node
	for {
		n, err := p.parseAnd(fc, depth)
		if err != nil {
			return nil, err
		}
		if n != nil {
			kids = append(kids, n)
		}
		p.skipSpace()
		if p.keyword("OR") {
			p.pos += 2
			continue
		}
		if p.keyword("||") {
			p.pos += 2
			continue
		}
		break
	}
	for _, k := range kids {
		if isAll(k) {
			return k, nil // a OR * matches everything
		}
	}
	switch len(kids) {
	case 0:
		return nil, nil
	case 1:
		return kids[0], nil
	}
	return &orNode{kids: kids}, nil
}

func (p *parser) parseAnd(fc *fieldCtx, depth int) (node, error) {
	var kids []node
	for {
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] == ')' || p.keyword("OR") || p.keyword("||") {
			break
		}
		if p.keyword("AND") {
			p.pos += 3
			continue
		}
		if p.keyword("&&") {
			p.pos += 2
			continue
		}
		n, err := p.parseUnary(fc, depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	// a AND * is a: drop the match-alls unless nothing else is left.
	rest := kids[:0:0]
	for _, k := range kids {
		if !isAll(k) {
			rest = append(rest, k)
		}
	}
	if len(rest) == 0 && len(kids) > 0 {
		return kids[0], nil
	}
	switch len(rest) {
	case 0:
		return nil, nil
	case 1:
		return rest[0], nil
	}
	return &andNode{kids: rest}, nil
}

func (p *parser) parseUnary(fc *fieldCtx, depth int) (node, error) {
	p.skipSpace()
	start := p.pos
	neg := false
	switch {
	case p.keyword("NOT"):
		p.pos += 3
		neg = true
	case p.pos < len(p.s) && (p.s[p.pos] == '-' || p.s[p.pos] == '!') && p.pos+1 < len(p.s) && !isSpaceByte(p.s[p.pos+1]):
		p.pos++
		neg = true
	case p.pos < len(p.s) && p.s[p.pos] == '+' && p.pos+1 < len(p.s) && !isSpaceByte(p.s[p.pos+1]):
		p.pos++
	}
	if neg {
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] == ')' {
			p.pos = start
			return nil, p.errf("nothing to negate")
		}
		kid, err := p.parseUnary(fc, depth+1)
		if err != nil {
			return nil, err
		}
		if isAll(kid) {
			p.pos = start
			return nil, p.errf("cannot negate a match-all (such as -* or NOT *): it would exclude every record")
		}
		return &notNode{kid: kid}, nil
	}
	return p.parsePrimary(fc, depth)
}

// isAll reports whether n matches every record.
func isAll(n node) bool {
	m, ok := n.(*matchNode)
	return ok && m.kind == kindAll
}

// allStars reports whether a wildcard pattern is only unescaped stars.
func allStars(pat string) bool {
	return pat != "" && strings.Trim(pat, "*") == ""
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) count() error {
	p.nodes++
	if p.nodes > maxQueryNodes {
		return p.errf("query has more than %d terms", maxQueryNodes)
	}
	return nil
}

func (p *parser) parsePrimary(fc *fieldCtx, depth int) (node, error) {
	if err := p.count(); err != nil {
		return nil, err
	}
	if p.pos >= len(p.s) {
		return nil, p.errf("unexpected end of query")
	}
	if p.s[p.pos] == '(' {
		open := p.pos
		p.pos++
		n, err := p.parseOr(fc, depth+1)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			p.pos = open
			return nil, p.errf("unbalanced parenthesis")
		}
		p.pos++
		if n == nil {
			return &matchNode{kind: kindAll}, nil
		}
		return n, nil
	}
	if fc == nil {
		if name, op, ok := p.fieldPrefix(); ok {
			return p.parseFieldValue(name, op, depth)
		}
		return p.parseValue("", "", depth)
	}
	return p.parseValue(fc.name, "", depth)
}

// fieldPrefix recognises "name:" or "name>=" (and the other comparisons) at pos
// and consumes it.
func (p *parser) fieldPrefix() (name, op string, ok bool) {
	i := p.pos
	for i < len(p.s) {
		c := p.s[i]
		if c == '_' || c == '@' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') ||
			(i > p.pos && (c == '.' || c == '-' || ('0' <= c && c <= '9'))) {
			i++
			continue
		}
		break
	}
	if i == p.pos || i >= len(p.s) {
		return "", "", false
	}
	name = p.s[p.pos:i]
	rest := p.s[i:]
	switch {
	case strings.HasPrefix(rest, ":"):
		op = ":"
	case strings.HasPrefix(rest, ">="), strings.HasPrefix(rest, "<="):
		op = rest[:2]
	case strings.HasPrefix(rest, ">"), strings.HasPrefix(rest, "<"):
		op = rest[:1]
	default:
		return "", "", false
	}
	if i+len(op) >= len(p.s) || isSpaceByte(p.s[i+len(op)]) {
		return "", "", false // "word:" at the end: a term
	}
	p.pos = i + len(op)
	return name, op, true
}

func (p *parser) parseFieldValue(name, op string, depth int) (node, error) {
	if op == ":" {
		rest := p.s[p.pos:]
		switch {
		case strings.HasPrefix(rest, ">="), strings.HasPrefix(rest, "<="):
			op = rest[:2]
		case strings.HasPrefix(rest, ">"), strings.HasPrefix(rest, "<"):
			op = rest[:1]
		}
		if op != ":" {
			p.pos += len(op)
		} else if p.pos < len(p.s) && p.s[p.pos] == '(' {
			open := p.pos
			p.pos++
			n, err := p.parseOr(&fieldCtx{name: name}, depth+1)
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.pos >= len(p.s) || p.s[p.pos] != ')' {
				p.pos = open
				return nil, p.errf("unbalanced parenthesis")
			}
			p.pos++
			if n == nil {
				return nil, p.errf("empty group for field %q", name)
			}
			return n, nil
		}
	}
	if op == ":" {
		return p.parseValue(name, "", depth)
	}
	return p.parseValue(name, op, depth)
}

// parseValue reads one value (quoted, /regexp/ or a bare word) for field name ("" =
// body) with comparison op ("" = match).
func (p *parser) parseValue(name, op string, depth int) (node, error) {
	start := p.pos
	var (
		raw     string
		quoted  bool
		isRegex bool
		wild    bool
	)
	switch {
	case p.pos < len(p.s) && p.s[p.pos] == '"':
		s, err := p.readQuoted()
		if err != nil {
			return nil, err
		}
		raw, quoted = s, true
	case op == "" && p.pos < len(p.s) && p.s[p.pos] == '/' && p.regexAhead():
		s, err := p.readRegex()
		if err != nil {
			return nil, err
		}
		raw, isRegex = s, true
	default:
		s, w := p.readWord()
		if s == "" && !w {
			return nil, p.errf("expected a term")
		}
		raw, wild = s, w
	}
	fk, key := resolveField(name)
	m := &matchNode{field: fk, key: key}
	fail := func(format string, args ...any) (node, error) {
		p.pos = start
		return nil, p.errf(format, args...)
	}
	if op != "" {
		if quoted || isRegex || wild {
			return fail("a comparison needs a plain value")
		}
		return p.rangeNode(m, name, op, raw, start)
	}
	if fk == fTime {
		return fail("field %q takes a comparison such as time:>=2026-01-02T15:04:05Z", name)
	}
	switch {
	case isRegex:
		if _, err := vregexp.New(raw); err != nil {
			return fail("bad regular expression %q: %v", raw, err)
		}
		re, err := regexp.Compile("^(?:" + raw + ")$")
		if err != nil {
			return fail("bad regular expression %q: %v", raw, err)
		}
		m.kind, m.value, m.re = kindRegexp, raw, re
	case wild && fk == fBody && (allStars(raw) || (name == "" && raw == "*:*")):
		m.kind = kindAll // *, **, body:* and *:* are the empty query
	case wild:
		if allStars(raw) && fk != fBody {
			m.kind = kindWildcard
			m.value = ".*"
			m.re = regexp.MustCompile("^(?s:.*)$")
			break
		}
		if fk == fBody {
			raw = lower(raw)
		}
		if fk == fSeverity {
			raw = strings.ToUpper(raw)
		}
		pat := wildcardRegexp(raw)
		m.kind, m.value, m.re = kindWildcard, pat, regexp.MustCompile("^(?:"+pat+")$")
	case fk == fBody:
		ws := words(raw)
		switch len(ws) {
		case 0:
			return fail("%q has no letters or digits to search for", raw)
		case 1:
			m.kind, m.value = kindTerm, ws[0]
		default:
			m.kind, m.words = kindPhrase, ws
		}
	case fk == fSeverity:
		if n, err := strconv.Atoi(raw); err == nil && n >= 0 && n <= 24 {
			m.kind, m.lo, m.hi, m.hasLo, m.hasHi, m.loIncl, m.hiIncl = kindRange, float64(n), float64(n), true, true, true, true
			break
		}
		n, ok := levelNumber(raw)
		if !ok && !strings.EqualFold(raw, "UNSPECIFIED") {
			return fail("unknown severity %q (want TRACE, DEBUG, INFO, WARN, ERROR, FATAL or 0..24)", raw)
		}
		m.kind, m.value = kindTerm, levelOf(n)
	default:
		m.kind, m.value = kindTerm, raw
	}
	return m, nil
}

func (p *parser) rangeNode(m *matchNode, name, op, raw string, start int) (node, error) {
	fail := func(format string, args ...any) (node, error) {
		p.pos = start
		return nil, p.errf(format, args...)
	}
	m.kind = kindRange
	switch m.field {
	case fTime:
		t, err := parseTimeValue(raw)
		if err != nil {
			return fail("bad time %q: %v", raw, err)
		}
		ms := t.UnixMilli()
		m.timeLo, m.timeHi = minTimeMs, maxTimeMs
		switch op {
		case ">=":
			m.timeLo = ms
		case ">":
			m.timeLo = ms + 1
		case "<":
			m.timeHi = ms
		case "<=":
			m.timeHi = ms + 1
		}
		return m, nil
	case fSeverity:
		var lo, hi int32
		if n, err := strconv.Atoi(raw); err == nil && n >= 0 && n <= 24 {
			lo, hi = int32(n), int32(n)
		} else if n, ok := levelNumber(raw); ok {
			lo, hi = n, n+3
		} else {
			return fail("unknown severity %q (want TRACE, DEBUG, INFO, WARN, ERROR, FATAL or 0..24)", raw)
		}
		m.hasLo, m.hasHi, m.loIncl, m.hiIncl = true, true, true, true
		switch op {
		case ">=":
			m.lo, m.hi = float64(lo), 24
		case ">":
			m.lo, m.hi = float64(hi+1), 24
		case "<=":
			m.lo, m.hi = 1, float64(hi)
		case "<":
			m.lo, m.hi = 1, float64(lo-1)
		}
		return m, nil
	case fAttr:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fail("%s%s needs a number, not %q", name, op, raw)
		}
		switch op {
		case ">=", ">":
			m.lo, m.hasLo, m.loIncl = f, true, op == ">="
		case "<=", "<":
			m.hi, m.hasHi, m.hiIncl = f, true, op == "<="
		}
		return m, nil
	}
	return fail("field %q does not take comparisons", name)
}

const (
	minTimeMs = 0
	maxTimeMs = 1 << 47
)

// ParseTime parses a time as the Prometheus HTTP API does, for start and end
// parameters: RFC 3339 (with or without fractional seconds) or Unix seconds
// (possibly fractional). A date (2006-01-02) is also accepted.
func ParseTime(s string) (time.Time, error) {
	return parseTimeValue(s)
}

func parseTimeValue(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e12 {
			return time.Time{}, fmt.Errorf("out of range")
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339, a date or Unix seconds")
}

// regexAhead reports whether a /.../ regular expression starts at pos: the word
// has exactly two unescaped slashes, the second one ending it. /var/log is a term.
func (p *parser) regexAhead() bool {
	i := p.pos + 1
	for i < len(p.s) {
		switch c := p.s[i]; {
		case c == '\\':
			i += 2
			continue
		case c == '/':
			return i+1 >= len(p.s) || isSpaceByte(p.s[i+1]) || p.s[i+1] == ')'
		}
		i++
	}
	return false
}

func (p *parser) readRegex() (string, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '\\' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '/' {
			b.WriteByte('/')
			p.pos += 2
			continue
		}
		if c == '/' {
			p.pos++
			return b.String(), nil
		}
		b.WriteByte(c)
		p.pos++
	}
	p.pos = start
	return "", p.errf("unterminated regular expression")
}

func (p *parser) readQuoted() (string, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '\\' && p.pos+1 < len(p.s) {
			b.WriteByte(p.s[p.pos+1])
			p.pos += 2
			continue
		}
		if c == '"' {
			p.pos++
			return b.String(), nil
		}
		b.WriteByte(c)
		p.pos++
	}
	p.pos = start
	return "", p.errf("unterminated quoted phrase")
}

// readWord reads a bare word up to white space, '(' , ')' or '"'. Backslash
// escapes the next character. wild reports an unescaped * or ?; the returned word
// then keeps escaped wildcard characters as \* and \?.
func (p *parser) readWord() (word string, wild bool) {
	var b strings.Builder
	for p.pos < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.pos:])
		if unicode.IsSpace(r) || r == '(' || r == ')' || r == '"' {
			break
		}
		if r == '\\' && p.pos+1 < len(p.s) {
			r2, n2 := utf8.DecodeRuneInString(p.s[p.pos+1:])
			if r2 == '*' || r2 == '?' || r2 == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r2)
			p.pos += 1 + n2
			continue
		}
		if r == '*' || r == '?' {
			wild = true
		}
		b.WriteRune(r)
		p.pos += n
	}
	w := b.String()
	if !wild {
		w = strings.NewReplacer(`\*`, "*", `\?`, "?", `\\`, `\`).Replace(w)
	}
	return w, wild
}

// wildcardRegexp turns a pattern with * and ? (and \* \? \\ escapes) into a
// regular expression that vellum and Go both accept.
func wildcardRegexp(pat string) string {
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			b.WriteString(regexp.QuoteMeta(pat[i+1 : i+2]))
			i++
		case c == '*':
			b.WriteString(".*")
		case c == '?':
			b.WriteString(".")
		default:
			r, n := utf8.DecodeRuneInString(pat[i:])
			b.WriteString(regexp.QuoteMeta(string(r)))
			i += n - 1
		}
	}
	return b.String()
}

func resolveField(name string) (fieldKind, string) {
	switch name {
	case "", "body", "_msg", "message":
		return fBody, ""
	case "service", "service.name":
		return fService, ""
	case "severity", "level":
		return fSeverity, ""
	case "scope":
		return fScope, ""
	case "trace_id", "traceid", "trace":
		return fTrace, ""
	case "span_id", "spanid":
		return fSpan, ""
	case "event", "event_name":
		return fEvent, ""
	case "time", "timestamp", "_time":
		return fTime, ""
	}
	return fAttr, name
}
