package logindex

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// SearchRequest asks for the newest records matching Query in [Start, End).
type SearchRequest struct {
	// Query is in the language of ParseQuery; empty matches everything.
	Query string
	// Start and End bound the record time, Start inclusive, End exclusive. A zero
	// Start means no lower bound, a zero End no upper bound.
	Start, End time.Time
	// Limit is the most records returned. Zero means 100; it is capped at
	// Options.MaxLimit.
	Limit int
	// Cursor continues a previous search: pass its NextCursor with the same Query,
	// Start and End. Empty means the first page.
	Cursor string
}

// SearchResult is one page of records, newest first.
type SearchResult struct {
	// Total is the exact number of records matching the query and time range (all
	// pages together).
	Total uint64 `json:"total"`
	// Records are the page's records, newest first (ties by id, newest first).
	Records []Record `json:"records"`
	// NextCursor fetches the following page; empty on the last page.
	NextCursor string `json:"next_cursor"`
	// Unreadable counts the page's records left out because their part of the
	// record log is damaged (logged as warnings).
	Unreadable int `json:"unreadable,omitempty"`
	// Took is how long the search took; TookMs is the same in milliseconds.
	Took   time.Duration `json:"-"`
	TookMs int64         `json:"took_ms"`
}

// timeBounds converts [start, end) to milliseconds; zero times are open ends.
func timeBounds(start, end time.Time) (lo, hi int64, bounded bool) {
	lo, hi = minTimeMs, maxTimeMs
	ms := func(t time.Time) int64 {
		v := t.UnixMilli()
		if t.After(time.UnixMilli(v)) {
			v++ // round sub-millisecond times up
		}
		return min(max(v, minTimeMs), maxTimeMs)
	}
	if !start.IsZero() {
		lo, bounded = ms(start), true
	}
	if !end.IsZero() {
		hi, bounded = ms(end), true
	}
	return lo, hi, bounded
}

// scope is the set of partitions a request reads, held until release.
type scope struct {
	parts map[int]*partition
	alias bleve.IndexAlias
	days  []int // the days of parts, newest first
}

func (s *scope) release() {
	for _, p := range s.parts {
		p.release()
	}
}

// acquireRange takes the partitions whose days overlap [lo, hi) ms.
func (ix *Index) acquireRange(lo, hi int64) (*scope, error) {
	ix.closeMu.RLock()
	closed := ix.closed
	ix.closeMu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	ix.mu.RLock()
	var cands []*partition
	for day, p := range ix.parts {
		ds := int64(day) * 86_400_000
		if ds+86_400_000 > lo && ds < hi {
			cands = append(cands, p)
		}
	}
	ix.mu.RUnlock()
	sort.Slice(cands, func(i, j int) bool { return cands[i].day < cands[j].day })
	s := &scope{parts: make(map[int]*partition, len(cands))}
	var idx []bleve.Index
	for _, p := range cands {
		if !p.acquire() {
			continue
		}
		s.parts[p.day] = p
		s.days = append([]int{p.day}, s.days...)
		idx = append(idx, p.shards...)
	}
	if len(idx) > 0 {
		s.alias = bleve.NewIndexAlias(idx...)
	}
	return s, nil
}

// fullQuery is the Bleve query for q restricted to [lo, hi).
func fullQuery(q *Query, lo, hi int64, bounded bool) query.Query {
	bq := bleveQuery(q.root)
	if !bounded {
		return bq
	}
	return query.NewConjunctionQuery([]query.Query{bq, timeRangeQuery(lo, hi)})
}

// Search returns the newest records matching the request. A bad query or cursor
// returns a *QueryError; a search running longer than Options.SearchTimeout is
// cancelled.
func (ix *Index) Search(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	began := time.Now()
	q, err := ParseQuery(req.Query)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, ix.opts.MaxLimit)
	var after []string
	if req.Cursor != "" {
		if after, err = decodeCursor(req.Cursor); err != nil {
			return nil, &QueryError{Query: req.Query, Msg: err.Error()}
		}
	}
	lo, hi, bounded := timeBounds(req.Start, req.End)
	res := &SearchResult{Records: []Record{}}
	s, err := ix.acquireRange(lo, hi)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if s.alias == nil {
		res.Took = time.Since(began)
		res.TookMs = res.Took.Milliseconds()
		return res, nil
	}
	fq := fullQuery(q, lo, hi, bounded)
	ctx, cancel := context.WithTimeout(ctx, ix.opts.SearchTimeout)
	defer cancel()
	var hits search.DocumentMatchCollection
	if expands(q.root) {
		// Wildcards and regular expressions cost their expansion each time
		// they run: one search for the total and the page.
		br, err := s.alias.SearchInContext(ctx, pageRequest(fq, limit+1, after))
		if err != nil {
			return nil, searchError(req.Query, err)
		}
		res.Total, hits = br.Total, br.Hits
	} else if hits, err = s.page(ctx, q, lo, hi, bounded, limit, after, res); err != nil {
		return nil, searchError(req.Query, err)
	}
	more := len(hits) > limit
	if more {
		hits = hits[:limit]
	}
	res.Records = make([]Record, 0, len(hits))
	for _, h := range hits {
		id, ok := docIDFromBytes(h.ID)
		if !ok {
			return nil, fmt.Errorf("cannot read search hit: bad document id of %d bytes", len(h.ID))
		}
		p := s.parts[id.day()]
		if p == nil {
			return nil, fmt.Errorf("cannot read record %s: partition %s is not open", id, dayDirName(id.day()))
		}
		var r Record
		if err := p.record(id, &r); err != nil {
			if errors.Is(err, ErrCorrupt) {
				// Damage found on read: serve the rest of the page.
				ix.log.Warn("cannot read a log record", "id", id.String(), "err", err)
				res.Unreadable++
				continue
			}
			return nil, fmt.Errorf("cannot read search hit: %w", err)
		}
		res.Records = append(res.Records, r)
	}
	if more && len(hits) > 0 {
		res.NextCursor = encodeCursor(hits[len(hits)-1].Sort)
	}
	res.Took = time.Since(began)
	res.TookMs = res.Took.Milliseconds()
	return res, nil
}

// page counts the records matching q in [lo, hi) (bounded: the range is a
// filter) into res.Total and returns the first limit+1 of them, newest first,
// after the cursor values after.
func (s *scope) page(ctx context.Context, q *Query, lo, hi int64, bounded bool, limit int, after []string, res *SearchResult) (search.DocumentMatchCollection, error) {
	// The total, without sorting (Bleve then reads no doc values), and without
	// the time range on the partitions the range covers whole.
	var err error
	if res.Total, err = s.count(ctx, q, fullQuery(q, lo, hi, bounded), lo, hi, bounded); err != nil {
		return nil, err
	}
	var hits search.DocumentMatchCollection
	// The page, newest partition first: partitions hold disjoint days, so once
	// the newer ones filled the page, older ones cannot change it. Within a
	// partition, the newest minute, then hour, of the range is tried before the
	// whole: if it fills the page, only its matches are sorted.
	end := hi
	if len(after) > 0 {
		if ms, err := strconv.ParseInt(after[0], 16, 64); err == nil {
			end = min(end, ms+1) // the page continues at or before the cursor's time
		}
	}
	for _, day := range s.days {
		if len(hits) > limit || res.Total == 0 {
			break
		}
		p := s.parts[day]
		var target bleve.Index = p.shards[0]
		if len(p.shards) > 1 {
			target = bleve.NewIndexAlias(p.shards...)
		}
		plo := max(lo, int64(day)*86_400_000)
		phi := min(end, int64(day+1)*86_400_000)
		if plo >= phi {
			continue
		}
		need := limit + 1 - len(hits)
		for _, w := range pageWindows {
			wlo := plo
			if w > 0 && phi-w > plo {
				wlo = phi - w
			}
			br, err := target.SearchInContext(ctx, pageRequest(fullQuery(q, wlo, phi, true), need, after))
			if err != nil {
				return nil, err
			}
			if len(br.Hits) >= need || wlo == plo {
				hits = append(hits, br.Hits...)
				break
			}
		}
	}
	return hits, nil
}

// pageRequest asks for the first size matches of q, newest first, after the
// cursor values after.
func pageRequest(q query.Query, size int, after []string) *bleve.SearchRequest {
	sr := bleve.NewSearchRequestOptions(q, size, 0, false)
	sr.SortByCustom(search.SortOrder{
		&search.SortField{Field: fieldTime, Desc: true, Type: search.SortFieldAsString, Missing: search.SortFieldMissingLast},
		&search.SortDocID{Desc: true},
	})
	sr.Score = "none"
	sr.SearchAfter = after
	return sr
}

// count counts the records matching q in [lo, hi) (fq is q restricted to the
// range). A partition whose records the range covers whole is counted with q
// alone; one it covers mostly, as q less q over the rest of its records' span;
// the others with fq. Term ranges over most of a day cost more than over its few remaining
// hours.
func (s *scope) count(ctx context.Context, q *Query, fq query.Query, lo, hi int64, bounded bool) (uint64, error) {
	bq := bleveQuery(q.root)
	var cut, whole, rest []bleve.Index
	var restRanges []query.Query
	type seen struct {
		p      *partition
		lo, hi int64
	}
	var checked []seen
	for _, p := range s.parts {
		pl, ph, ok := p.span()
		in := min(hi, ph) - max(lo, pl) // how much of the span the range covers
		switch {
		case !bounded || (ok && lo <= pl && hi >= ph):
			whole = append(whole, p.shards...)
			checked = append(checked, seen{p, pl, ph})
		case ok && in > 0 && (ph-pl)-in < in:
			whole = append(whole, p.shards...)
			rest = append(rest, p.shards...)
			if pl < lo {
				restRanges = append(restRanges, timeRangeQuery(pl, lo))
			}
			if hi < ph {
				restRanges = append(restRanges, timeRangeQuery(hi, ph))
			}
			checked = append(checked, seen{p, pl, ph})
		default:
			cut = append(cut, p.shards...)
		}
	}
	countIn := func(idx []bleve.Index, q query.Query) (uint64, error) {
		if len(idx) == 0 {
			return 0, nil
		}
		r := bleve.NewSearchRequestOptions(q, 0, 0, false)
		r.Score = "none"
		br, err := bleve.NewIndexAlias(idx...).SearchInContext(ctx, r)
		if err != nil {
			return 0, err
		}
		return br.Total, nil
	}
	nCut, err := countIn(cut, fq)
	if err != nil {
		return 0, err
	}
	nWhole, err := countIn(whole, bq)
	if err != nil {
		return 0, err
	}
	var nRest uint64
	if len(restRanges) > 0 {
		// Each range lies in its own partition's day: no other partition has
		// records there.
		if nRest, err = countIn(rest, query.NewConjunctionQuery([]query.Query{bq, query.NewDisjunctionQuery(restRanges)})); err != nil {
			return 0, err
		}
	}
	changed := nRest > nWhole
	for _, c := range checked {
		if pl, ph, _ := c.p.span(); bounded && (pl != c.lo || ph != c.hi) {
			changed = true
		}
	}
	if changed {
		// Records arrived meanwhile and widened a span: count with the range
		// everywhere.
		r := bleve.NewSearchRequestOptions(fq, 0, 0, false)
		r.Score = "none"
		br, err := s.alias.SearchInContext(ctx, r)
		if err != nil {
			return 0, err
		}
		return br.Total, nil
	}
	return nCut + nWhole - nRest, nil
}

// expands reports whether n has a wildcard or regular expression, which Bleve
// expands to every matching term each time the query runs: worth running once.
func expands(n node) bool {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			if expands(k) {
				return true
			}
		}
	case *orNode:
		for _, k := range n.kids {
			if expands(k) {
				return true
			}
		}
	case *notNode:
		return expands(n.kid)
	case *matchNode:
		return n.kind == kindWildcard || n.kind == kindRegexp
	}
	return false
}

// pageWindows are the spans, in milliseconds back from the end of the range, a
// page is looked for in before the whole range (0).
var pageWindows = []int64{60_000, 3_600_000, 0}

// searchError turns Bleve's refusal of a too-broad query into a *QueryError and
// wraps anything else.
func searchError(q string, err error) error {
	if strings.Contains(err.Error(), "TooManyClauses") {
		return &QueryError{Query: q, Msg: fmt.Sprintf("the query is too broad: a wildcard, regular expression or range matches more than %d terms", MaxQueryTerms)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot search logs: the search took longer than its timeout: %w", err)
	}
	return fmt.Errorf("cannot search logs: %w", err)
}

const cursorVersion = 1

// encodeCursor encodes the sort values of the last hit of a page.
func encodeCursor(vals []string) string {
	b := []byte{cursorVersion}
	for _, v := range vals {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != cursorVersion {
		return nil, fmt.Errorf("bad cursor %q", truncate(s, 40))
	}
	var out []string
	b = b[1:]
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, fmt.Errorf("bad cursor %q", truncate(s, 40))
		}
		out = append(out, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("bad cursor %q", truncate(s, 40))
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// HistogramRequest asks for counts of matching records per time bucket.
type HistogramRequest struct {
	Query string
	// Start and End bound the time range [Start, End); both are required.
	Start, End time.Time
	// Step is the bucket width. It is rounded up to a multiple of 10 seconds, and
	// widened when the range would need more than MaxBuckets buckets. Zero means
	// about 60 buckets.
	Step time.Duration
}

// MaxBuckets is the most buckets a histogram has.
const MaxBuckets = 1000

// Histogram holds counts per bucket and severity level.
type Histogram struct {
	// Step is the bucket width used. Buckets start at multiples of Step since the
	// Unix epoch; the first and last may be cut by the requested range.
	Step time.Duration `json:"step"`
	// Levels are the severity levels that have counts, most severe last.
	Levels []string `json:"levels"`
	// Buckets cover the range in time order, empty buckets included.
	Buckets []Bucket `json:"buckets"`
	// Total is the number of matching records in the range.
	Total uint64 `json:"total"`
}

// Bucket is one histogram bucket.
type Bucket struct {
	Start  time.Time         `json:"start"`
	Total  uint64            `json:"total"`
	Counts map[string]uint64 `json:"counts"` // by severity level; absent levels are zero
}

var levelOrder = map[string]int{"UNSPECIFIED": 0, "TRACE": 1, "DEBUG": 2, "INFO": 3, "WARN": 4, "ERROR": 5, "FATAL": 6}

// Histogram counts the records matching the request per time bucket, split by
// severity level.
func (ix *Index) Histogram(ctx context.Context, req HistogramRequest) (*Histogram, error) {
	q, err := ParseQuery(req.Query)
	if err != nil {
		return nil, err
	}
	if req.Start.IsZero() || req.End.IsZero() || !req.End.After(req.Start) {
		return nil, &QueryError{Query: req.Query, Msg: "a histogram needs a start before its end"}
	}
	lo, hi, _ := timeBounds(req.Start, req.End)
	span := hi - lo
	stepMs := req.Step.Milliseconds()
	if stepMs <= 0 {
		stepMs = span / 60
	}
	if min := -floorDiv(-span, MaxBuckets); stepMs < min {
		stepMs = min
	}
	stepMs = -floorDiv(-stepMs, granuleMs) * granuleMs
	if stepMs <= 0 {
		stepMs = granuleMs
	}
	first := floorDiv(lo, stepMs) * stepMs
	nb := int(-floorDiv(-(hi - first), stepMs))
	h := &Histogram{Step: time.Duration(stepMs) * time.Millisecond, Levels: []string{}, Buckets: make([]Bucket, nb)}
	for i := range h.Buckets {
		h.Buckets[i] = Bucket{Start: time.UnixMilli(first + int64(i)*stepMs).UTC(), Counts: map[string]uint64{}}
	}
	s, err := ix.acquireRange(lo, hi)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if s.alias == nil {
		return h, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ix.opts.SearchTimeout)
	defer cancel()
	// One pass: the tg field's terms are granule and level together.
	granules := int(-floorDiv(-(hi-lo), granuleMs)) + 1
	sr := bleve.NewSearchRequestOptions(fullQuery(q, lo, hi, true), 0, 0, false)
	sr.Score = "none"
	sr.AddFacet("tg", bleve.NewFacetRequest(fieldGranule, granules*len(levelNames)))
	br, err := s.alias.SearchInContext(ctx, sr)
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	h.Total = br.Total
	seen := map[string]bool{}
	for _, gt := range facetTerms(br, "tg") {
		g, level, ok := parseGranuleTerm(gt.Term)
		if !ok {
			continue
		}
		i := int(floorDiv(g*granuleMs-first, stepMs))
		if i < 0 || i >= nb {
			continue
		}
		if !seen[level] {
			seen[level] = true
			h.Levels = append(h.Levels, level)
		}
		h.Buckets[i].Counts[level] += uint64(gt.Count)
		h.Buckets[i].Total += uint64(gt.Count)
	}
	sort.Slice(h.Levels, func(i, j int) bool { return levelOrder[h.Levels[i]] < levelOrder[h.Levels[j]] })
	return h, nil
}

func facetTerms(br *bleve.SearchResult, name string) []*search.TermFacet {
	fr, ok := br.Facets[name]
	if !ok || fr == nil || fr.Terms == nil {
		return nil
	}
	return fr.Terms.Terms()
}

// FacetsRequest asks for the most common values of the fields of matching records.
type FacetsRequest struct {
	Query      string
	Start, End time.Time // as in SearchRequest
	// Size is how many values are returned per field. Zero means 10; at most 100.
	Size int
	// Keys is how many of the most common attribute keys get value lists. Zero
	// means 5; at most 20.
	Keys int
}

// Facets are value counts over the matching records.
type Facets struct {
	Total      uint64           `json:"total"`
	Service    []FacetValue     `json:"service"`
	Severity   []FacetValue     `json:"severity"`
	Attributes []AttributeFacet `json:"attributes"`
}

// FacetValue is a value and how many matching records have it.
type FacetValue struct {
	Value string `json:"value"`
	Count uint64 `json:"count"`
}

// AttributeFacet is an attribute key, how many matching records have it, and its
// most common values.
type AttributeFacet struct {
	Key    string       `json:"key"`
	Count  uint64       `json:"count"`
	Values []FacetValue `json:"values"`
}

// Facets returns the most common services, severities and attribute keys (with
// their most common values) of the records matching the request.
func (ix *Index) Facets(ctx context.Context, req FacetsRequest) (*Facets, error) {
	q, err := ParseQuery(req.Query)
	if err != nil {
		return nil, err
	}
	size := req.Size
	if size <= 0 {
		size = 10
	}
	size = min(size, 100)
	keys := req.Keys
	if keys <= 0 {
		keys = 5
	}
	keys = min(keys, 20)
	lo, hi, bounded := timeBounds(req.Start, req.End)
	f := &Facets{Service: []FacetValue{}, Severity: []FacetValue{}, Attributes: []AttributeFacet{}}
	s, err := ix.acquireRange(lo, hi)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if s.alias == nil {
		return f, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ix.opts.SearchTimeout)
	defer cancel()
	base := fullQuery(q, lo, hi, bounded)
	sr := bleve.NewSearchRequestOptions(base, 0, 0, false)
	sr.Score = "none"
	sr.AddFacet("svc", bleve.NewFacetRequest(fieldService, size))
	sr.AddFacet("sev", bleve.NewFacetRequest(fieldSev, len(levelOrder)))
	sr.AddFacet("keys", bleve.NewFacetRequest(fieldKeys, keys))
	br, err := s.alias.SearchInContext(ctx, sr)
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	f.Total = br.Total
	f.Service = facetValues(br, "svc")
	f.Severity = facetValues(br, "sev")
	kts := facetTerms(br, "keys")
	if len(kts) == 0 {
		return f, nil
	}
	sr = bleve.NewSearchRequestOptions(base, 0, 0, false)
	sr.Score = "none"
	for i, kt := range kts {
		sr.AddFacet(fmt.Sprintf("k%d", i), bleve.NewFacetRequest(attrPrefix+kt.Term, size))
	}
	br, err = s.alias.SearchInContext(ctx, sr)
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	for i, kt := range kts {
		f.Attributes = append(f.Attributes, AttributeFacet{Key: kt.Term, Count: uint64(kt.Count), Values: facetValues(br, fmt.Sprintf("k%d", i))})
	}
	return f, nil
}

func facetValues(br *bleve.SearchResult, name string) []FacetValue {
	out := []FacetValue{}
	for _, t := range facetTerms(br, name) {
		out = append(out, FacetValue{Value: t.Term, Count: uint64(t.Count)})
	}
	return out
}
