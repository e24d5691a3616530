package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/common/model"
)

// MatchType is the operator of a Matcher: =, !=, =~ or !~.
type MatchType int

// The four operators of Alertmanager's matchers.
const (
	MatchEqual MatchType = iota
	MatchNotEqual
	MatchRegexp
	MatchNotRegexp
)

func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return "?"
}

// Matcher matches one label of an alert, as Alertmanager's matchers do: a
// regular expression is anchored at both ends, and a missing label matches as
// the empty string. Build one with NewMatcher or ParseMatchers; in JSON it has
// the Alertmanager API v2 shape {name, value, isRegex, isEqual}.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string

	re *regexp.Regexp
}

// NewMatcher returns a matcher, compiling the regular expression of =~ and !~.
func NewMatcher(t MatchType, name, value string) (Matcher, error) {
	if t < MatchEqual || t > MatchNotRegexp {
		return Matcher{}, fmt.Errorf("unknown match type %d", t)
	}
	if name == "" {
		return Matcher{}, errors.New("empty label name in matcher")
	}
	if !model.LabelName(name).IsValid() {
		return Matcher{}, fmt.Errorf("invalid label name %q in matcher", name)
	}
	m := Matcher{Type: t, Name: name, Value: value}
	if t == MatchRegexp || t == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("invalid regular expression %q: %w", value, err)
		}
		m.re = re
	}
	return m, nil
}

// Matches reports whether the label value v satisfies the matcher.
func (m Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.regexp().MatchString(v)
	case MatchNotRegexp:
		return !m.regexp().MatchString(v)
	}
	return false
}

// regexp returns the compiled expression, compiling it if the matcher was
// built without NewMatcher (a zero value filled in by hand).
func (m Matcher) regexp() *regexp.Regexp {
	if m.re != nil {
		return m.re
	}
	re, err := regexp.Compile("^(?:" + m.Value + ")$")
	if err != nil {
		return regexp.MustCompile(`^\b\B$`) // matches nothing
	}
	return re
}

// String formats the matcher as Alertmanager does: name="value", the value
// escaped as in OpenMetrics.
func (m Matcher) String() string {
	if strings.ContainsFunc(m.Name, isReserved) {
		return strconv.Quote(m.Name) + m.Type.String() + strconv.Quote(m.Value)
	}
	return m.Name + m.Type.String() + `"` + openMetricsEscape(m.Value) + `"`
}

func isReserved(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune("{}!=~,\\\"'`", r)
}

func openMetricsEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

type matcherJSON struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual *bool  `json:"isEqual,omitempty"`
}

// MarshalJSON encodes the Alertmanager API v2 shape.
func (m Matcher) MarshalJSON() ([]byte, error) {
	eq := m.Type == MatchEqual || m.Type == MatchRegexp
	return json.Marshal(matcherJSON{
		Name:    m.Name,
		Value:   m.Value,
		IsRegex: m.Type == MatchRegexp || m.Type == MatchNotRegexp,
		IsEqual: &eq,
	})
}

// UnmarshalJSON decodes the Alertmanager API v2 shape; isEqual defaults to true.
func (m *Matcher) UnmarshalJSON(b []byte) error {
	var j matcherJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	eq := j.IsEqual == nil || *j.IsEqual
	t := MatchEqual
	switch {
	case eq && j.IsRegex:
		t = MatchRegexp
	case !eq && j.IsRegex:
		t = MatchNotRegexp
	case !eq:
		t = MatchNotEqual
	}
	nm, err := NewMatcher(t, j.Name, j.Value)
	if err != nil {
		return err
	}
	*m = nm
	return nil
}

// Matchers is a list of matchers that must all match.
type Matchers []Matcher

// Matches reports whether every matcher matches lset.
func (ms Matchers) Matches(lset model.LabelSet) bool {
	for _, m := range ms {
		if !m.Matches(string(lset[model.LabelName(m.Name)])) {
			return false
		}
	}
	return true
}

// String formats the matchers as {a="b",c=~"d"}.
func (ms Matchers) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.String())
	}
	b.WriteByte('}')
	return b.String()
}

// sortMatchers orders matchers as Alertmanager does before it builds a route
// key: by name, then value, then operator.
func sortMatchers(ms Matchers) {
	slices.SortStableFunc(ms, func(a, b Matcher) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Value, b.Value); c != 0 {
			return c
		}
		return int(a.Type) - int(b.Type)
	})
}

// ParseMatchers parses Alertmanager's matcher syntax: one or more matchers
// separated by commas, optionally in braces, each `name op value` with op one
// of =, !=, =~, !~ and value double-quoted (Go escapes) or bare:
// `severity="critical"`, `{alertname=~"Disk.*", env!=dev}`.
func ParseMatchers(s string) (Matchers, error) {
	in := strings.TrimSpace(s)
	if strings.HasPrefix(in, "{") {
		if !strings.HasSuffix(in, "}") {
			return nil, fmt.Errorf("matcher %q: missing closing '}'", s)
		}
		in = strings.TrimSpace(in[1 : len(in)-1])
	}
	if in == "" {
		return nil, fmt.Errorf("matcher %q: empty", s)
	}
	var out Matchers
	for in != "" {
		m, rest, err := parseOneMatcher(in)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: %w", s, err)
		}
		out = append(out, m)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("matcher %q: expected ',' before %q", s, rest)
		}
		in = strings.TrimSpace(rest[1:])
		if in == "" {
			break // a trailing comma, as Alertmanager allows
		}
	}
	return out, nil
}

func parseOneMatcher(in string) (Matcher, string, error) {
	var name string
	if strings.HasPrefix(in, `"`) {
		q, err := strconv.QuotedPrefix(in)
		if err != nil {
			return Matcher{}, "", fmt.Errorf("bad quoted label name: %w", err)
		}
		name, _ = strconv.Unquote(q)
		in = in[len(q):]
	} else {
		i := strings.IndexAny(in, "=!~")
		if i < 0 {
			return Matcher{}, "", fmt.Errorf("no operator (=, !=, =~, !~) in %q", in)
		}
		name = strings.TrimSpace(in[:i])
		in = in[i:]
	}
	in = strings.TrimLeft(in, " \t")
	var t MatchType
	switch {
	case strings.HasPrefix(in, "=~"):
		t, in = MatchRegexp, in[2:]
	case strings.HasPrefix(in, "!~"):
		t, in = MatchNotRegexp, in[2:]
	case strings.HasPrefix(in, "!="):
		t, in = MatchNotEqual, in[2:]
	case strings.HasPrefix(in, "="):
		t, in = MatchEqual, in[1:]
	default:
		return Matcher{}, "", fmt.Errorf("no operator (=, !=, =~, !~) after label name %q", name)
	}
	in = strings.TrimLeft(in, " \t")
	var value string
	if strings.HasPrefix(in, `"`) {
		q, err := strconv.QuotedPrefix(in)
		if err != nil {
			return Matcher{}, "", fmt.Errorf("bad quoted value for label %q: %w", name, err)
		}
		value, _ = strconv.Unquote(q)
		in = in[len(q):]
	} else {
		i := strings.IndexAny(in, ",}")
		if i < 0 {
			i = len(in)
		}
		value = strings.TrimSpace(in[:i])
		if strings.ContainsAny(value, `"`) {
			return Matcher{}, "", fmt.Errorf("unbalanced quotes in value %q", value)
		}
		in = in[i:]
	}
	m, err := NewMatcher(t, name, value)
	return m, in, err
}
