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
	known verdicts
}

// verdicts remembers whether each series matched, by TSDB ref: two bits per ref
// in pages of verdictPageRefs refs. The refs of one batch are mostly
// consecutive, so most lookups hit the page of the previous one and hash
// nothing.
type verdicts struct{ pageMap[verdictPage] }

const (
	verdictPageBits = 12
	verdictPageRefs = 1 << verdictPageBits
	// filterMemory caps the pages a Filter keeps (1 KiB each, 16 million refs
	// in all); past it the verdicts are forgotten and matched again.
	filterMemory = 1 << 12
)

type verdictPage struct {
	known, match [verdictPageRefs / 64]uint64
}

// get returns the verdict on ref, and whether there is one.
func (v *verdicts) get(ref uint64) (match, known bool) {
	p := v.find(ref >> verdictPageBits)
	if p == nil {
		return false, false
	}
	i, bit := ref%verdictPageRefs/64, uint64(1)<<(ref%64)
	return p.match[i]&bit != 0, p.known[i]&bit != 0
}

// set records the verdict on ref.
func (v *verdicts) set(ref uint64, match bool) {
	k := ref >> verdictPageBits
	if v.find(k) == nil && len(v.pages) >= filterMemory {
		v.reset()
	}
	p := v.make(k)
	i, bit := ref%verdictPageRefs/64, uint64(1)<<(ref%64)
	p.known[i] |= bit
	if match {
		p.match[i] |= bit
	}
}

// NewFilter parses selectors such as `http_server_duration_seconds_count`,
// `{job="checkout"}` or `node_cpu_seconds_total{mode!="idle"}`.
func NewFilter(selectors []string) (*Filter, error) {
	f := &Filter{}
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
// series. A batch with none is handed back (tsdb.RecycleObserved) for a later
// one, as next would have done.
func (f *Filter) Wrap(next tsdb.Observer) tsdb.Observer {
	return func(batch []tsdb.ObservedSample) {
		kept := batch[:0]
		f.mu.Lock()
		for _, s := range batch {
			ok, seen := f.known.get(s.Ref)
			if !seen {
				ok = f.Matches(s.Labels)
				f.known.set(s.Ref, ok)
			}
			if ok {
				kept = append(kept, s)
			}
		}
		f.mu.Unlock()
		if len(kept) == 0 {
			tsdb.RecycleObserved(batch)
			return
		}
		next(kept)
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
