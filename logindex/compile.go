package logindex

import (
	"github.com/blevesearch/bleve/v2/search/query"
)

// Turning a parsed query into a Bleve query, and matching it against one record
// (for tails) with the same meaning.

func fieldName(m *matchNode) string {
	switch m.field {
	case fBody:
		return fieldBody
	case fService:
		return fieldService
	case fSeverity:
		return fieldSev
	case fScope:
		return fieldScope
	case fTrace:
		return fieldTrace
	case fSpan:
		return fieldSpan
	case fEvent:
		return fieldEvent
	case fTime:
		return fieldTime
	}
	return attrPrefix + m.key
}

func bleveQuery(n node) query.Query {
	switch n := n.(type) {
	case *andNode:
		var pos, neg []query.Query
		for _, k := range n.kids {
			if nn, ok := k.(*notNode); ok {
				neg = append(neg, bleveQuery(nn.kid))
				continue
			}
			pos = append(pos, bleveQuery(k))
		}
		if len(neg) == 0 {
			return query.NewConjunctionQuery(pos)
		}
		if len(pos) == 0 {
			pos = []query.Query{query.NewMatchAllQuery()}
		}
		return query.NewBooleanQuery([]query.Query{query.NewConjunctionQuery(pos)}, nil, neg)
	case *orNode:
		qs := make([]query.Query, len(n.kids))
		for i, k := range n.kids {
			qs[i] = bleveQuery(k)
		}
		return query.NewDisjunctionQuery(qs)
	case *notNode:
		return query.NewBooleanQuery([]query.Query{query.NewMatchAllQuery()}, nil, []query.Query{bleveQuery(n.kid)})
	case *matchNode:
		return bleveMatch(n)
	}
	return query.NewMatchNoneQuery()
}

func bleveMatch(m *matchNode) query.Query {
	field := fieldName(m)
	switch m.kind {
	case kindAll:
		return query.NewMatchAllQuery()
	case kindTerm:
		q := query.NewTermQuery(m.value)
		q.SetField(field)
		return q
	case kindPhrase:
		return query.NewPhraseQuery(m.words, field)
	case kindWildcard, kindRegexp:
		if m.kind == kindWildcard && m.value == ".*" && m.field != fBody {
			if m.field == fAttr {
				q := query.NewTermQuery(m.key) // key:* means the key is present
				q.SetField(fieldKeys)
				return q
			}
		}
		q := query.NewRegexpQuery(m.value)
		q.SetField(field)
		return q
	case kindRange:
		switch m.field {
		case fTime:
			return timeRangeQuery(m.timeLo, m.timeHi)
		case fSeverity:
			t := true
			q := query.NewTermRangeInclusiveQuery(sevNumTerm(int32(m.lo)), sevNumTerm(int32(m.hi)), &t, &t)
			q.SetField(fieldSevNum)
			return q
		case fAttr:
			var lo, hi *float64
			if m.hasLo {
				lo = &m.lo
			}
			if m.hasHi {
				hi = &m.hi
			}
			return numRangeQuery(numPrefix+m.key, lo, hi, m.loIncl, m.hiIncl)
		}
	}
	return query.NewMatchNoneQuery()
}

// timeRangeQuery matches records with time in [lo, hi) milliseconds: whole days,
// hours, 5-minute spans, 10-second granules and seconds through the level fields,
// coarsest first, and the ragged ends (less than a second each) as the records of
// their second filtered by the t field's doc values, so that a range is a few
// dozen terms whatever its length.
func timeRangeQuery(lo, hi int64) query.Query {
	if lo < minTimeMs {
		lo = minTimeMs
	}
	if hi > maxTimeMs {
		hi = maxTimeMs
	}
	if hi <= lo {
		return query.NewMatchNoneQuery()
	}
	parts := appendTimeRange(nil, lo, hi, 0)
	if len(parts) == 1 {
		return parts[0]
	}
	return query.NewDisjunctionQuery(parts)
}

func appendTimeRange(parts []query.Query, lo, hi int64, level int) []query.Query {
	if lo >= hi {
		return parts
	}
	t, f := true, false
	if level == len(timeLevels) {
		// Less than two seconds: filter the records of each second by their
		// time.
		for sec := floorDiv(lo, 1000); sec*1000 < hi; sec++ {
			parts = append(parts, &msRangeQuery{sec: sec, lo: max(lo, sec*1000), hi: min(hi, sec*1000+1000)})
		}
		return parts
	}
	w := timeLevels[level].ms
	a := -floorDiv(-lo, w) // first whole unit
	b := floorDiv(hi, w)   // units before b end by hi
	if a >= b {
		return appendTimeRange(parts, lo, hi, level+1)
	}
	// Terms are fixed-width hex (tg terms carry one more digit, which the
	// exclusive upper bound b leaves out).
	q := query.NewTermRangeInclusiveQuery(levelTerm(a), levelTerm(b), &t, &f)
	q.SetField(timeLevels[level].field)
	parts = append(parts, q)
	parts = appendTimeRange(parts, lo, a*w, level+1)
	return appendTimeRange(parts, b*w, hi, level+1)
}

// recordView is a record prepared for matching: its body tokens, computed once.
type recordView struct {
	r      *Record
	tokens map[string]struct{}
	words  []string
}

func (v *recordView) analyze() {
	if v.tokens != nil {
		return
	}
	v.tokens = make(map[string]struct{})
	tokenize(v.r.Body, func(t token) {
		v.tokens[t.term] = struct{}{}
		if t.word {
			v.words = append(v.words, t.term)
		}
	})
}

// Matches reports whether r matches the query, with the same meaning a search
// gives it.
func (q *Query) Matches(r *Record) bool {
	v := recordView{r: r}
	return matchNodeRec(q.root, &v)
}

func matchNodeRec(n node, v *recordView) bool {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			if !matchNodeRec(k, v) {
				return false
			}
		}
		return true
	case *orNode:
		for _, k := range n.kids {
			if matchNodeRec(k, v) {
				return true
			}
		}
		return false
	case *notNode:
		return !matchNodeRec(n.kid, v)
	case *matchNode:
		return matchLeaf(n, v)
	}
	return false
}

func matchLeaf(m *matchNode, v *recordView) bool {
	r := v.r
	if m.kind == kindAll {
		return true
	}
	if m.field == fBody {
		v.analyze()
		switch m.kind {
		case kindTerm:
			_, ok := v.tokens[m.value]
			return ok
		case kindPhrase:
			return containsSeq(v.words, m.words)
		case kindWildcard, kindRegexp:
			for t := range v.tokens {
				if m.re.MatchString(t) {
					return true
				}
			}
		}
		return false
	}
	if m.kind == kindRange {
		switch m.field {
		case fTime:
			ms := r.Time.UnixMilli()
			return ms >= m.timeLo && ms < m.timeHi
		case fSeverity:
			n := float64(effectiveSeverity(r.SeverityNumber, r.SeverityText))
			return n >= m.lo && n <= m.hi
		case fAttr:
			found := false
			eachAttr(r, func(a Attr) {
				if found || a.Key != m.key {
					return
				}
				f, ok := attrNumber(a)
				if !ok {
					return
				}
				if m.hasLo && (f < m.lo || (f == m.lo && !m.loIncl)) {
					return
				}
				if m.hasHi && (f > m.hi || (f == m.hi && !m.hiIncl)) {
					return
				}
				found = true
			})
			return found
		}
		return false
	}
	if m.field == fAttr && m.kind == kindWildcard && m.value == ".*" {
		found := false
		eachAttr(r, func(a Attr) { found = found || (a.Key == m.key && a.Key != "" && len(a.Key) <= MaxKeywordLen) })
		return found
	}
	test := func(s string) bool {
		if m.kind == kindTerm {
			return s == m.value
		}
		return m.re.MatchString(s)
	}
	switch m.field {
	case fService:
		return test(r.Service)
	case fSeverity:
		return test(r.Severity)
	case fScope:
		return r.ScopeName != "" && test(r.ScopeName)
	case fTrace:
		return r.TraceID != "" && test(r.TraceID)
	case fSpan:
		return r.SpanID != "" && test(r.SpanID)
	case fEvent:
		return r.EventName != "" && test(r.EventName)
	case fAttr:
		found := false
		eachAttr(r, func(a Attr) {
			if !found && a.Key == m.key && len(a.Value) <= MaxKeywordLen && len(a.Key) <= MaxKeywordLen && test(a.Value) {
				found = true
			}
		})
		return found
	}
	return false
}

// eachAttr calls fn for every indexed attribute of r (resource attributes but
// service.name, scope attributes, record attributes).
func eachAttr(r *Record, fn func(Attr)) {
	for _, a := range r.Resource {
		if a.Key != "service.name" {
			fn(a)
		}
	}
	for _, a := range r.ScopeAttributes {
		fn(a)
	}
	for _, a := range r.Attributes {
		fn(a)
	}
}

func containsSeq(hay, needle []string) bool {
	if len(needle) == 0 {
		return true
	}
outer:
	for i := 0; i+len(needle) <= len(hay); i++ {
		for j, w := range needle {
			if hay[i+j] != w {
				continue outer
			}
		}
		return true
	}
	return false
}
