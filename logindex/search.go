package logindex

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	index "github.com/blevesearch/bleve_index_api"
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

// scope is the set of partitions a request reads, held until release, and the
// readers of their shards it opened.
type scope struct {
	parts map[int]*partition
	days  []int // the days of parts, newest first

	mu      sync.Mutex
	readers map[shardKey]*shardReader
}

type shardKey struct{ day, k int }

func (s *scope) release() {
	for _, sr := range s.readers {
		sr.r.Close()
	}
	for _, p := range s.parts {
		p.release()
	}
}

// reader returns the reader of shard k of p, opening it on first use: every
// pass of a request reads the same snapshot.
func (s *scope) reader(p *partition, k int) (*shardReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := shardKey{p.day, k}
	if sr := s.readers[key]; sr != nil {
		return sr, nil
	}
	adv, err := p.shards[k].Advanced()
	if err != nil {
		return nil, err
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, err
	}
	if s.readers == nil {
		s.readers = map[shardKey]*shardReader{}
	}
	sr := &shardReader{r: r, iid: make(index.IndexInternalID, 8), sums: p.sums[k]}
	s.readers[key] = sr
	return sr, nil
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
	sort.Slice(cands, func(i, j int) bool { return cands[i].day > cands[j].day })
	s := &scope{parts: make(map[int]*partition, len(cands))}
	for _, p := range cands {
		if !p.acquire() {
			continue
		}
		s.parts[p.day] = p
		s.days = append(s.days, p.day)
	}
	return s, nil
}

// blocks finds the blocks of every shard of the scope that may hold records
// matching pl in [lo, hi), the shards read in parallel.
func (s *scope) blocks(ctx context.Context, pl *blockPlan, lo, hi int64) ([]blockHit, error) {
	var mu sync.Mutex
	var hits []blockHit
	err := s.eachShard(ctx, func(p *partition, k int) error {
		sr, err := s.reader(p, k)
		if err != nil {
			return err
		}
		hs, err := sr.blocks(ctx, p, pl, lo, hi)
		mu.Lock()
		hits = append(hits, hs...)
		mu.Unlock()
		return err
	})
	return hits, err
}

// parallel runs fn(0) … fn(n−1) on up to GOMAXPROCS goroutines and returns the
// first error; after an error or the end of ctx, the calls not begun are
// skipped.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(i)
				}
				if err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// scanned is one matching record read from a block.
type scanned struct {
	ms int64
	id docID
	r  Record
}

// scanner matches the records of blocks against one query, on any number of
// goroutines (each takes a recordMatcher from its pool).
type scanner struct {
	matchers sync.Pool
}

func newScanner(q *Query) *scanner {
	return &scanner{matchers: sync.Pool{New: func() any { return newRecordMatcher(q) }}}
}

// scan matches every record of block h against the query and the time range
// [lo, hi) ms, calling fn (if not nil) with each match's id, time and bytes; it
// returns the number of matches and of records that could not be read.
func (sc *scanner) scan(h *blockHit, lo, hi int64, fn func(id docID, ms int64, b []byte)) (matches, unreadable int, err error) {
	m := sc.matchers.Get().(*recordMatcher)
	defer sc.matchers.Put(m)
	err = h.p.eachBlockRecord(h.id, func(i int, b []byte) error {
		t, err := recordTime(b)
		if err != nil {
			unreadable++
			return nil
		}
		ms := floorDiv(t, 1_000_000)
		if ms < lo || ms >= hi {
			return nil
		}
		ok, err := m.match(b)
		if err != nil {
			unreadable++
			return nil
		}
		if ok {
			matches++
			if fn != nil {
				fn(makeDocID(h.p.day, h.id.off(), i), ms, b)
			}
		}
		return nil
	})
	return matches, unreadable, err
}

// scanEach calls fn(i) for every i in [0, len(hits)), in parallel, the blocks
// of one frame one after another in one call sequence: a frame is then
// decompressed once (and kept in its partition's cache) rather than once per
// block. The hits must be resolved.
func scanEach(ctx context.Context, hits []blockHit, fn func(i int) error) error {
	order := make([]int, len(hits))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return bytes.Compare(hits[order[a]].id[:], hits[order[b]].id[:]) < 0 })
	var groups [][]int
	for _, i := range order {
		if g := len(groups) - 1; g >= 0 && bytes.Equal(hits[groups[g][0]].id[:8], hits[i].id[:8]) {
			groups[g] = append(groups[g], i)
			continue
		}
		groups = append(groups, []int{i})
	}
	return parallel(ctx, len(groups), func(g int) error {
		for _, i := range groups[g] {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	})
}

// decodeMatch decodes a matching record for an answer; a record that does not
// decode was counted unreadable by scan already and cannot be a match.
func decodeMatch(b []byte, r *Record) bool { return decodeRecord(b, r) == nil }

// count returns the number of records matching pl in [lo, hi): the index's
// count of the blocks it decides, plus the matches of the others, scanned in
// parallel; and the number of records it could not read.
func (s *scope) count(ctx context.Context, pl *blockPlan, sc *scanner, lo, hi int64) (uint64, int, error) {
	var mu sync.Mutex
	var total uint64
	var todo []blockHit
	err := s.eachShard(ctx, func(p *partition, k int) error {
		sr, err := s.reader(p, k)
		if err != nil {
			return err
		}
		n, open, err := sr.count(ctx, p, pl, lo, hi)
		mu.Lock()
		total += n
		todo = append(todo, open...)
		mu.Unlock()
		return err
	})
	if err == nil {
		err = resolveAll(ctx, todo)
	}
	if err != nil {
		return 0, 0, err
	}
	counts := make([]int, len(todo))
	bad := make([]int, len(todo))
	err = scanEach(ctx, todo, func(j int) error {
		h := &todo[j]
		var err error
		counts[j], bad[j], err = sc.scan(h, lo, hi, nil)
		if errors.Is(err, ErrCorrupt) {
			// A damaged block counts what the index knows of it.
			counts[j], bad[j], err = int(h.match.lo), int(h.match.hi-h.match.lo), nil
		}
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	unreadable := 0
	for j := range todo {
		total += uint64(counts[j])
		unreadable += bad[j]
	}
	return total, unreadable, nil
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
	var after *cursor
	if req.Cursor != "" {
		c, err := decodeCursor(req.Cursor)
		if err != nil {
			return nil, &QueryError{Query: req.Query, Msg: err.Error()}
		}
		after = &c
	}
	lo, hi, _ := timeBounds(req.Start, req.End)
	res := &SearchResult{Records: []Record{}}
	s, err := ix.acquireRange(lo, hi)
	if err != nil {
		return nil, err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, ix.opts.SearchTimeout)
	defer cancel()
	pl, sc := newBlockPlan(q), newScanner(q)
	page, err := ix.page(ctx, s, pl, sc, lo, hi, after, limit, res)
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	more := len(page) > limit
	if more {
		page = page[:limit]
	}
	for _, sc := range page {
		res.Records = append(res.Records, sc.r)
	}
	if more {
		last := page[len(page)-1]
		res.NextCursor = encodeCursor(cursor{ms: last.ms, id: last.id})
	}
	total, bad, err := s.count(ctx, pl, sc, lo, hi)
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	res.Total = total
	if bad > 0 {
		ix.log.Warn("cannot read log records while counting", "records", bad)
	}
	res.Took = time.Since(began)
	res.TookMs = res.Took.Milliseconds()
	return res, nil
}

// skipDamage logs and forgets damage found reading block h (err is scanBlock's):
// the rest of an answer is still served.
func (ix *Index) skipDamage(err error, h *blockHit) error {
	if errors.Is(err, ErrCorrupt) {
		ix.log.Warn("cannot read a block of log records", "block", h.id.String(), "err", err)
		return nil
	}
	return err
}

// pageWindows are the spans, in milliseconds back from the end of the range, a
// page is looked for in before the whole range (0): if the newest minute holds
// a page, only its blocks are read and ordered.
var pageWindows = []int64{60_000, 3_600_000, 0}

// page returns the first limit+1 records matching pl in [lo, hi) after the
// cursor (nil: from the newest), newest first, counting unreadable ones in res.
func (ix *Index) page(ctx context.Context, s *scope, pl *blockPlan, sc *scanner, lo, hi int64, after *cursor, limit int, res *SearchResult) ([]scanned, error) {
	end := hi
	if after != nil {
		end = min(end, after.ms+1) // the page continues at or before the cursor's time
	}
	// The windows end at the newest record there is, not at the end asked for.
	newest := int64(math.MinInt64)
	for _, p := range s.parts {
		if _, phi, ok := p.span(); ok {
			newest = max(newest, phi)
		}
	}
	end = min(end, newest)
	if end <= lo {
		return nil, nil
	}
	var page []scanned
	for _, w := range pageWindows {
		wlo := lo
		if w > 0 && end-w > lo {
			wlo = end - w
		}
		hits, err := s.blocks(ctx, pl, wlo, end)
		if err != nil {
			return nil, err
		}
		if err := resolveAll(ctx, hits); err != nil {
			return nil, err
		}
		unreadable := 0
		if page, unreadable, err = ix.pageOf(ctx, hits, sc, wlo, end, after, limit); err != nil {
			return nil, err
		}
		if len(page) > limit || wlo == lo {
			res.Unreadable += unreadable
			return page, nil
		}
	}
	return page, nil
}

// pageOf reads hits (resolved) newest first and returns the first limit+1 of
// their records matching in [lo, hi) after the cursor, and how many records
// it could not read. A record found is final once no block left can hold a
// newer one.
func (ix *Index) pageOf(ctx context.Context, hits []blockHit, sc *scanner, lo, hi int64, after *cursor, limit int) ([]scanned, int, error) {
	order := make([]int, 0, len(hits))
	for i := range hits {
		if after == nil || hits[i].t0 <= after.ms {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool {
		ha, hb := &hits[order[a]], &hits[order[b]]
		if ha.t != hb.t {
			return ha.t > hb.t
		}
		return bytes.Compare(ha.id[:], hb.id[:]) > 0
	})
	var found []scanned // matches not yet on the page, newest first
	page := make([]scanned, 0, limit+1)
	unreadable := 0
	take := func(until int64) {
		for len(found) > 0 && found[0].ms > until && len(page) <= limit {
			page = append(page, found[0])
			found = found[1:]
		}
	}
	for _, i := range order {
		h := &hits[i]
		if take(h.t); len(page) > limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		_, bad, err := sc.scan(h, lo, hi, func(id docID, ms int64, b []byte) {
			if after != nil && !after.before(ms, id) {
				return
			}
			f := scanned{ms: ms, id: id}
			if decodeMatch(b, &f.r) {
				f.r.ID = id.String()
				found = append(found, f)
			}
		})
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				// Damage found on read: serve the rest of the page.
				ix.log.Warn("cannot read a block of log records", "block", h.id.String(), "err", err)
				unreadable += int(h.match.lo)
				continue
			}
			return nil, 0, fmt.Errorf("cannot read search hit: %w", err)
		}
		if bad > 0 {
			ix.log.Warn("cannot read log records", "block", h.id.String(), "records", bad)
			unreadable += bad
		}
		sort.Slice(found, func(a, b int) bool { return found[a].newer(&found[b]) })
	}
	take(math.MinInt64)
	return page, unreadable, nil
}

// newer reports whether a comes before b in a page: newer, or as new with the
// larger id.
func (a *scanned) newer(b *scanned) bool {
	if a.ms != b.ms {
		return a.ms > b.ms
	}
	return bytes.Compare(a.id[:], b.id[:]) > 0
}

// searchError turns the end of a search's time into a clear error and wraps
// anything else.
func searchError(q string, err error) error {
	var qe *QueryError
	if errors.As(err, &qe) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot search logs: the search took longer than its timeout: %w", err)
	}
	return fmt.Errorf("cannot search logs: %w", err)
}

// cursor is where a page ended: the time and id of its last record.
type cursor struct {
	ms int64
	id docID
}

// before reports whether a record (ms, id) comes after the cursor in page
// order.
func (c *cursor) before(ms int64, id docID) bool {
	if ms != c.ms {
		return ms < c.ms
	}
	return bytes.Compare(id[:], c.id[:]) < 0
}

const cursorVersion = 2

func encodeCursor(c cursor) string {
	b := []byte{cursorVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(c.ms))
	b = append(b, c.id[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 1+8+len(docID{}) || b[0] != cursorVersion {
		return cursor{}, fmt.Errorf("bad cursor %q", truncate(s, 40))
	}
	c := cursor{ms: int64(binary.BigEndian.Uint64(b[1:]))}
	copy(c.id[:], b[9:])
	return c, nil
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
	ctx, cancel := context.WithTimeout(ctx, ix.opts.SearchTimeout)
	defer cancel()
	bucket := func(ms int64) int { return int(floorDiv(ms-first, stepMs)) }
	counts := make([]map[string]uint64, nb) // per bucket, by level
	add := func(i int, level string, n uint64) {
		if counts[i] == nil {
			counts[i] = map[string]uint64{}
		}
		counts[i][level] += n
	}
	// A block whose matches the index counts in every bucket its records
	// fall in needs no reading; the others are scanned.
	pl := newBlockPlan(q)
	var mu sync.Mutex
	var hits []blockHit
	err = s.eachShard(ctx, func(p *partition, k int) error {
		sr, err := s.reader(p, k)
		if err != nil {
			return err
		}
		if isAll(q.root) {
			// Every record: from the level sums of the time terms.
			open, err := sr.histogramAll(ctx, p, lo, hi, first, stepMs, func(b int, level string, n uint64) {
				mu.Lock()
				defer mu.Unlock()
				add(b, level, n)
			})
			mu.Lock()
			defer mu.Unlock()
			hits = append(hits, open...)
			return err
		}
		var br blockRefs
		if err := sr.eachBlock(ctx, p, pl, lo, hi, br.add); err != nil || len(br.docs) == 0 {
			return err
		}
		counted, scan, err := sr.bucketCounts(ctx, p, &br, lo, hi, first, stepMs)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range counted {
			add(c.bucket, c.level, uint64(c.n))
		}
		for _, i := range scan {
			hits = append(hits, br.hit(p, sr, i))
		}
		return nil
	})
	if err == nil {
		err = resolveAll(ctx, hits)
	}
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	sc := newScanner(q)
	scans := make([][]uint32, len(hits)) // per scanned block, the matches' buckets
	err = scanEach(ctx, hits, func(j int) error {
		_, _, err := sc.scan(&hits[j], lo, hi, func(_ docID, ms int64, _ []byte) {
			scans[j] = append(scans[j], uint32(bucket(ms)))
		})
		return ix.skipDamage(err, &hits[j])
	})
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	for j, bs := range scans {
		for _, b := range bs {
			add(int(b), hits[j].level, 1)
		}
	}
	seen := map[string]bool{}
	for i, m := range counts {
		for level, n := range m {
			if !seen[level] {
				seen[level] = true
				h.Levels = append(h.Levels, level)
			}
			h.Buckets[i].Counts[level] += n
			h.Buckets[i].Total += n
			h.Total += n
		}
	}
	sort.Slice(h.Levels, func(i, j int) bool { return levelOrder[h.Levels[i]] < levelOrder[h.Levels[j]] })
	return h, nil
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
	// Estimated says that some counts are estimates: more records than
	// Options.FacetScanRecords were to be read, and for the blocks not read
	// each key's and value's count in the block is taken in proportion to the
	// block's matches. Which blocks are read follows their order in the
	// index, which Bleve's merges change, so estimates of the same request
	// may differ a little.
	Estimated bool `json:"estimated"`
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

// facetSampleRun is how many blocks in a row facets read when they read a
// sample of the partly matching blocks.
const facetSampleRun = 16

// facetShard is what facets keep of one shard's blocks between passes.
type facetShard struct {
	p     *partition
	sr    *shardReader
	whole []uint64 // the blocks all of whose records match
	// The blocks only some of whose records match, in document order, and of
	// those the ones estimated from the index with the share of their records
	// that match.
	partial blockRefs
	est     []uint64
	share   []float64 // the middle of the bounds of their matches over their size
	matches []float64 // … the middle itself, or 0 when the index counts it
}

// Facets returns the most common services, severities and attribute keys (with
// their most common values) of the records matching the request.
//
// The index counts the services and levels of the blocks whose matches it
// counts, and the keys and values of the blocks whose records all match. The
// other blocks are read, up to Options.FacetScanRecords records; beyond that a
// sample of them spread over the range is read, and the rest estimated.
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
	lo, hi, _ := timeBounds(req.Start, req.End)
	f := &Facets{Service: []FacetValue{}, Severity: []FacetValue{}, Attributes: []AttributeFacet{}}
	s, err := ix.acquireRange(lo, hi)
	if err != nil {
		return nil, err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, ix.opts.SearchTimeout)
	defer cancel()
	pl := newBlockPlan(q)
	sc := newScanner(q)

	// Services, levels and keys from the index.
	var mu sync.Mutex
	shards := map[shardKey]*facetShard{}
	var total float64
	keyCounts := map[string]float64{}
	services, levels := map[string]float64{}, map[string]float64{}
	merge := func(into, from map[string]float64) {
		for v, n := range from {
			into[v] += n
		}
	}
	// count adds the matches of the blocks docs of sr (counts) to the total,
	// services and levels, and the keys of the blocks keyDocs (times weights;
	// nil: 1) to the keys.
	count := func(sr *shardReader, docs []uint64, counts []float64, keyDocs []uint64, weights []float64) error {
		svc, err := sr.countBy(ctx, fieldService, nil, docs, counts)
		if err != nil {
			return err
		}
		lvl, err := sr.countBy(ctx, fieldSev, levelNames[:], docs, counts)
		if err != nil {
			return err
		}
		kc, err := sr.fieldCounts(ctx, fieldKeys, keyDocs, weights)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range counts {
			total += n
		}
		merge(keyCounts, kc)
		merge(services, svc)
		merge(levels, lvl)
		return nil
	}
	err = s.eachShard(ctx, func(p *partition, k int) error {
		sr, err := s.reader(p, k)
		if err != nil {
			return err
		}
		fs := &facetShard{p: p, sr: sr}
		var exact []uint64 // the blocks whose matches the index counts, and their counts
		var counts []float64
		err = sr.eachBlock(ctx, p, pl, lo, hi, func(doc uint64, size int32, query, match bounds) {
			if match.exact() {
				exact = append(exact, doc)
				counts = append(counts, float64(match.lo))
			}
			if match.lo == size {
				fs.whole = append(fs.whole, doc)
			} else {
				fs.partial.add(doc, size, query, match)
			}
		})
		if err != nil {
			return err
		}
		mu.Lock()
		shards[shardKey{p.day, k}] = fs
		mu.Unlock()
		return count(sr, exact, counts, fs.whole, nil)
	})
	if err != nil {
		return nil, searchError(req.Query, err)
	}

	// The blocks to read: all of those only some of whose records match, or
	// every k-th run of facetSampleRun of them (shards in a fixed order,
	// blocks in document order) when they hold more than FacetScanRecords
	// records. Blocks next to each other in a shard mostly come from one
	// frame, which is then decompressed once for the whole run.
	var order []*facetShard
	var partialRecords int64
	for _, day := range s.days {
		for k := range s.parts[day].shards {
			if fs := shards[shardKey{day, k}]; fs != nil {
				order = append(order, fs)
				for _, size := range fs.partial.size {
					partialRecords += int64(size)
				}
			}
		}
	}
	stride := max(1, int(-floorDiv(-partialRecords, int64(ix.opts.FacetScanRecords))))
	var hits []blockHit
	n := 0
	for _, fs := range order {
		for i, doc := range fs.partial.docs {
			if (n/facetSampleRun)%stride == 0 {
				hits = append(hits, fs.partial.hit(fs.p, fs.sr, i))
			} else {
				match := fs.partial.match[i]
				m := float64(match.lo+match.hi) / 2
				fs.est = append(fs.est, doc)
				fs.share = append(fs.share, m/float64(fs.partial.size[i]))
				if match.exact() {
					m = 0 // counted with the services and levels above
				}
				fs.matches = append(fs.matches, m)
				f.Estimated = true
			}
			n++
		}
	}
	if err := resolveAll(ctx, hits); err != nil {
		return nil, searchError(req.Query, err)
	}

	// Read them once, counting keys and every key's values.
	type scanCounts struct {
		n      uint64
		keys   map[string]uint64
		values map[Attr]uint64
	}
	counted := make([]scanCounts, len(hits))
	err = scanEach(ctx, hits, func(j int) error {
		c := scanCounts{keys: map[string]uint64{}, values: map[Attr]uint64{}}
		var seenKeys []string // a record counts once per key and per value, as the index counts it
		var seen []Attr
		var r Record
		_, _, err := sc.scan(&hits[j], lo, hi, func(_ docID, _ int64, b []byte) {
			c.n++
			if !decodeMatch(b, &r) {
				return
			}
			seenKeys, seen = seenKeys[:0], seen[:0]
			eachAttr(&r, func(a Attr) {
				if a.Key == "" || len(a.Key) > MaxKeywordLen {
					return
				}
				if !slices.Contains(seenKeys, a.Key) {
					seenKeys = append(seenKeys, a.Key)
					c.keys[a.Key]++
				}
				kv := Attr{Key: a.Key, Value: a.Value}
				if len(a.Value) <= MaxKeywordLen && !slices.Contains(seen, kv) {
					seen = append(seen, kv)
					c.values[kv]++
				}
			})
		})
		counted[j] = c
		return ix.skipDamage(err, &hits[j])
	})
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	for j, c := range counted {
		h := &hits[j]
		if !h.match.exact() {
			services[h.service] += float64(c.n)
			levels[h.level] += float64(c.n)
			total += float64(c.n)
		}
		for key, n := range c.keys {
			keyCounts[key] += float64(n)
		}
	}

	// The blocks not read: their matches (the middle of their bounds) by
	// service and level, and their keys in proportion.
	err = s.eachShard(ctx, func(p *partition, k int) error {
		fs := shards[shardKey{p.day, k}]
		if fs == nil || len(fs.est) == 0 {
			return nil
		}
		return count(fs.sr, fs.est, fs.matches, fs.est, fs.share)
	})
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	f.Total = uint64(math.Round(total))
	f.Service = topValues(services, size)
	f.Severity = topValues(levels, len(levelOrder))
	top := topValues(keyCounts, keys)
	if len(top) == 0 {
		return f, nil
	}

	// The values of the most common keys, the same way.
	values := make([]map[string]float64, len(top))
	for i := range values {
		values[i] = map[string]float64{}
	}
	err = s.eachShard(ctx, func(p *partition, k int) error {
		fs := shards[shardKey{p.day, k}]
		if fs == nil {
			return nil
		}
		vcs := make([]map[string]float64, 0, 2*len(top))
		for _, kv := range top {
			whole, err := fs.sr.fieldCounts(ctx, attrPrefix+kv.Value, fs.whole, nil)
			if err != nil {
				return err
			}
			est, err := fs.sr.fieldCounts(ctx, attrPrefix+kv.Value, fs.est, fs.share)
			if err != nil {
				return err
			}
			vcs = append(vcs, whole, est)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, vc := range vcs {
			merge(values[i/2], vc)
		}
		return nil
	})
	if err != nil {
		return nil, searchError(req.Query, err)
	}
	for _, c := range counted {
		for a, n := range c.values {
			for i, kv := range top {
				if a.Key == kv.Value {
					values[i][a.Value] += float64(n)
				}
			}
		}
	}
	for i, kv := range top {
		f.Attributes = append(f.Attributes, AttributeFacet{Key: kv.Value, Count: kv.Count, Values: topValues(values[i], size)})
	}
	return f, nil
}

// eachShard calls fn for every shard of the scope, in parallel.
func (s *scope) eachShard(ctx context.Context, fn func(p *partition, k int) error) error {
	type job struct {
		p *partition
		k int
	}
	var jobs []job
	for _, day := range s.days {
		p := s.parts[day]
		for k := range p.shards {
			jobs = append(jobs, job{p, k})
		}
	}
	return parallel(ctx, len(jobs), func(i int) error { return fn(jobs[i].p, jobs[i].k) })
}

// topValues returns the n values with the largest counts (rounded to whole
// records), ties by value.
func topValues(counts map[string]float64, n int) []FacetValue {
	out := make([]FacetValue, 0, len(counts))
	for v, c := range counts {
		if c := uint64(math.Round(c)); c > 0 {
			out = append(out, FacetValue{Value: v, Count: c})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
