package logindex

// The fields a query's leaves read, and matching a query against one record
// (for scans and tails).

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
