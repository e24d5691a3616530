package detect

import (
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"outpost/tsdb"
)

// Filter keeps the samples of series that match any of a list of PromQL series
// selectors, so the live detector watches only those. It remembers each series'
// verdict by its TSDB ref, so a selector is matched once per series, not once
// per sample.
type Filter struct {
	sets [][]*labels.Matcher

	mu    sync.Mutex
	known map[uint64]bool // ref → matches
}

// filterMemory caps the verdicts a Filter remembers; past it they are
// forgotten and matched again.
const filterMemory = 1 << 20

// NewFilter parses selectors such as `http_server_duration_seconds_count`,
// `{job="checkout"}` or `node_cpu_seconds_total{mode!="idle"}`.
func NewFilter(selectors []string) (*Filter, error) {
	f := &Filter{known: map[uint64]bool{}}
	p := parser.NewParser(parser.Options{})
	for _, s := range selectors {
		ms, err := p.ParseMetricSelector(s)
		if err != nil {
			return nil, fmt.Errorf("invalid series selector %q: %w", s, err)
		}
		f.sets = append(f.sets, ms)
	}
	if len(f.sets) == 0 {
		return nil, fmt.Errorf("no series selector")
	}
	return f, nil
}

// Matches tells whether lset matches any selector.
func (f *Filter) Matches(lset labels.Labels) bool {
	for _, ms := range f.sets {
		ok := true
		for _, m := range ms {
			if !m.Matches(lset.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Wrap returns an observer that passes next only the samples of matching
// series.
func (f *Filter) Wrap(next tsdb.Observer) tsdb.Observer {
	return func(batch []tsdb.ObservedSample) {
		kept := batch[:0]
		f.mu.Lock()
		if len(f.known) > filterMemory {
			clear(f.known)
		}
		for _, s := range batch {
			ok, seen := f.known[s.Ref]
			if !seen {
				ok = f.Matches(s.Labels)
				f.known[s.Ref] = ok
			}
			if ok {
				kept = append(kept, s)
			}
		}
		f.mu.Unlock()
		if len(kept) > 0 {
			next(kept)
		}
	}
}

// SplitSelectors splits a comma-separated list of series selectors, keeping
// commas inside braces and quotes: `a{x="1",y="2"}, b` → `a{x="1",y="2"}`, `b`.
func SplitSelectors(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote rune
	escaped := false
	for i, c := range s {
		switch {
		case escaped:
			escaped = false
		case quote != 0:
			if c == '\\' {
				escaped = true
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '{':
			depth++
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			if t := strings.TrimSpace(s[start:i]); t != "" {
				out = append(out, t)
			}
			start = i + 1
		}
	}
	if t := strings.TrimSpace(s[start:]); t != "" {
		out = append(out, t)
	}
	return out
}
