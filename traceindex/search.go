package traceindex

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Query selects traces. A trace matches when one of its spans matches Service,
// Operation, the duration bounds, ErrorsOnly and the time range, and for each
// tag some span of Service (any span without Service) in the time range carries
// it (possibly different spans for different tags).
type Query struct {
	Service   string // "" means any service
	Operation string // span name; "" means any
	// Tags are attribute equalities, looked up on spans and their resources.
	// Non-string values compare by their decimal or "true"/"false" form.
	Tags        map[string]string
	MinDuration time.Duration // 0 means no lower bound
	MaxDuration time.Duration // 0 means no upper bound
	Start, End  time.Time     // span start range; zero means unbounded
	ErrorsOnly  bool          // only spans with status code Error match
	Limit       int           // most traces returned, newest first; 0 means 20
}

// TraceSummary describes one trace found by Search.
type TraceSummary struct {
	TraceID       pcommon.TraceID
	RootService   string // of the root span, or of the earliest span without one
	RootOperation string
	HasRoot       bool // a span without a parent is stored
	Start         time.Time
	Duration      time.Duration // latest span end minus earliest start
	SpanCount     int
	ErrorCount    int
	// MatchTime is the start of the newest span that matched the query; results
	// are ordered by it, newest first.
	MatchTime time.Time
}

// MaxSearchLimit caps Query.Limit.
const MaxSearchLimit = 10_000

type candKey struct {
	part *partition
	seq  uint64
}

// Search returns summaries of the traces matching q, newest match first.
func (ix *Index) Search(ctx context.Context, q Query) ([]TraceSummary, error) {
	var res []TraceSummary
	err := ix.read(ctx, func(s *snapshot) error {
		found, err := ix.searchIn(ctx, s, q)
		if err != nil {
			return err
		}
		res = make([]TraceSummary, 0, len(found))
		for _, c := range found {
			sum, err := ix.summaryIn(s, c.id)
			if err != nil {
				return err
			}
			sum.MatchTime = time.Unix(0, c.start).UTC()
			res = append(res, sum)
		}
		return nil
	})
	return res, err
}

// SearchTraces returns the whole traces matching q, newest match first (what
// the Jaeger search endpoint returns).
func (ix *Index) SearchTraces(ctx context.Context, q Query) ([]ptrace.Traces, error) {
	var res []ptrace.Traces
	err := ix.read(ctx, func(s *snapshot) error {
		found, err := ix.searchIn(ctx, s, q)
		if err != nil {
			return err
		}
		res = make([]ptrace.Traces, 0, len(found))
		for _, c := range found {
			td, err := ix.traceIn(s, c.id)
			if err != nil {
				return err
			}
			res = append(res, td)
		}
		return nil
	})
	return res, err
}

// found is a search result: a trace and its newest matching span start.
type found struct {
	id    pcommon.TraceID
	start int64
}

// searcher is the state of one Search.
type searcher struct {
	ix          *Index
	s           *snapshot
	q           Query
	limit       int
	from, to    int64
	indexedTags []attrVal
	otherTags   []attrVal
	// tagSets[i] holds the traces whose attribute index entries carry
	// indexedTags[i] in the time window; true when the entry lies wholly inside
	// the window, so the spans need no check for that tag.
	tagSets []map[pcommon.TraceID]bool
	// lazy[i] is set when indexedTags[i] has too many index entries to gather;
	// candidates are then looked up in the attribute index one by one.
	lazy     []bool
	gathered []int // entries gathered per tag
	svcCache map[*bolt.Tx][]uint32
	cands    map[pcommon.TraceID]int64 // accepted trace -> newest matching start
	rejected map[pcommon.TraceID]struct{}
	minCand  int64 // lowest start in cands (never raised: conservative)
}

// searchIn finds the newest traces matching q.
func (ix *Index) searchIn(ctx context.Context, s *snapshot, q Query) ([]found, error) {
	sr := &searcher{ix: ix, s: s, q: q, limit: q.Limit, minCand: math.MaxInt64, svcCache: map[*bolt.Tx][]uint32{},
		cands: map[pcommon.TraceID]int64{}, rejected: map[pcommon.TraceID]struct{}{}}
	if sr.limit <= 0 {
		sr.limit = 20
	}
	sr.limit = min(sr.limit, MaxSearchLimit)
	sr.from, sr.to = timeRange(q.Start, q.End)
	for k, v := range q.Tags {
		if slices.Contains(ix.opts.IndexedAttributes, k) && len(v) <= maxIndexedValue {
			sr.indexedTags = append(sr.indexedTags, attrVal{k, v})
		} else {
			sr.otherTags = append(sr.otherTags, attrVal{k, v})
		}
	}
	for i, p := range s.parts {
		if p.start > sr.to || p.end <= sr.from {
			continue
		}
		if err := sr.tagEntries(p, s.txs[i]); err != nil {
			return nil, err
		}
	}
	for i, p := range s.parts {
		if p.start > sr.to || p.end <= sr.from {
			continue
		}
		// Older partitions hold only spans starting before this one's start:
		// older than every accepted candidate.
		if len(sr.cands) >= sr.limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := sr.scan(p, s.txs[i]); err != nil {
			return nil, err
		}
	}
	list := make([]found, 0, len(sr.cands))
	for id, start := range sr.cands {
		list = append(list, found{id, start})
	}
	slices.SortFunc(list, func(a, b found) int {
		if c := cmpInt64(b.start, a.start); c != 0 {
			return c
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	return list[:min(len(list), sr.limit)], nil
}

// services returns the ids of the query's services in a partition.
func (sr *searcher) services(tx *bolt.Tx) []uint32 {
	if svcs, ok := sr.svcCache[tx]; ok {
		return svcs
	}
	var svcs []uint32
	if sr.q.Service != "" {
		if svc, ok := lookupService(tx, sr.q.Service); ok {
			svcs = []uint32{svc}
		}
	} else {
		tx.Bucket(bucketSvc).ForEach(func(k, _ []byte) error {
			if len(k) == 4 {
				svcs = append(svcs, be32(k))
			}
			return nil
		})
	}
	sr.svcCache[tx] = svcs
	return svcs
}

// tagGatherBudget is how many attribute index entries of one tag a search reads
// up front; a tag with more is checked per candidate instead. A variable for
// tests.
var tagGatherBudget = 4096

// lookupTag reports whether trace id has a span of the query's services in the
// time window carrying indexedTags[i], per the attribute index: present means
// possibly (an entry of one of its blocks lists it), exact means certainly.
func (sr *searcher) lookupTag(i int, id pcommon.TraceID) (present, exact bool, err error) {
	tag := sr.indexedTags[i]
	for j, p := range sr.s.parts {
		if p.start > sr.to || p.end <= sr.from {
			continue
		}
		tx := sr.s.txs[j]
		attr, ok := lookupAttr(tx, tag.key)
		if !ok {
			continue
		}
		spread := p.readSpread(tx)
		c := tx.Bucket(bucketTraces).Cursor()
		for k, v := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, v = c.Next() {
			pc, err := decodePiece(v)
			if err != nil || len(k) != 24 {
				return false, false, corrupt(p, bucketTraces, k, fmt.Errorf("bad piece: %v", err))
			}
			seq := be64(k[16:])
			// An entry naming this piece's block has its base between the
			// block's earliest start (no earlier than the piece's minus the
			// spread) and the tagged span's start.
			lo := max(pc.minStart-spread, 0)
			if sr.from != math.MinInt64 {
				lo = max(lo, sr.from-spread)
			}
			hi := min(pc.maxEnd, sr.to)
			for _, svc := range sr.services(tx) {
				prefix := attrPrefix(svc, attr, tag.value)
				ac := tx.Bucket(bucketAttrIdx).Cursor()
				for ak, av := ac.Seek(withTimeSeq(bytes.Clone(prefix), lo, 0)); ak != nil && bytes.HasPrefix(ak, prefix); ak, av = ac.Next() {
					if len(ak) != len(prefix)+16 {
						continue
					}
					base, eseq, _ := splitTimeSeq(ak)
					if base > hi {
						break
					}
					if eseq != seq {
						continue
					}
					found := false
					if err := scanOrds(av, func(o uint32) { found = found || o == pc.ord }); err != nil {
						return false, false, corrupt(p, bucketAttrIdx, ak, err)
					}
					if found {
						present = true
						exact = exact || (base >= sr.from && base <= sr.to-spread)
					}
				}
			}
		}
	}
	return present, exact, nil
}

// blockTraces resolves (block, ordinal) to trace ids within one partition.
type blockTraces struct {
	p    *partition
	tx   *bolt.Tx
	hdrs map[uint64]blockHeader
}

func (bt *blockTraces) id(seq uint64, ord uint32) (pcommon.TraceID, error) {
	h, ok := bt.hdrs[seq]
	if !ok {
		bk := seqKey(seq)
		v := bt.tx.Bucket(bucketBlocks).Get(bk)
		if v == nil {
			return pcommon.TraceID{}, corrupt(bt.p, bucketBlocks, bk, errors.New("index entry of a missing block"))
		}
		var err error
		if h, err = parseBlockHeader(v, maxBlockRaw); err != nil {
			return pcommon.TraceID{}, corrupt(bt.p, bucketBlocks, bk, err)
		}
		bt.hdrs[seq] = h
	}
	id, ok := h.traceID(ord)
	if !ok {
		return id, corrupt(bt.p, bucketBlocks, seqKey(seq), fmt.Errorf("index refers to trace %d of %d", ord, h.traces()))
	}
	return id, nil
}

// tagEntries adds the traces of one partition's attribute index entries for
// the indexed tags to sr.tagSets.
func (sr *searcher) tagEntries(p *partition, tx *bolt.Tx) error {
	if sr.tagSets == nil {
		sr.tagSets = make([]map[pcommon.TraceID]bool, len(sr.indexedTags))
		for i := range sr.tagSets {
			sr.tagSets[i] = map[pcommon.TraceID]bool{}
		}
		sr.lazy = make([]bool, len(sr.indexedTags))
		sr.gathered = make([]int, len(sr.indexedTags))
	}
	if len(sr.indexedTags) == 0 {
		return nil
	}
	spread := p.readSpread(tx)
	lo := sr.from
	if lo != math.MinInt64 {
		lo = max(sr.from-spread, math.MinInt64+1)
	}
	bt := &blockTraces{p: p, tx: tx, hdrs: map[uint64]blockHeader{}}
	svcs := sr.services(tx)
	for i, tag := range sr.indexedTags {
		attr, ok := lookupAttr(tx, tag.key)
		if !ok || sr.lazy[i] {
			continue
		}
		for _, svc := range svcs {
			ic := &idxCursor{c: tx.Bucket(bucketAttrIdx).Cursor(), prefix: attrPrefix(svc, attr, tag.value), bucket: bucketAttrIdx}
			for ok := ic.seek(lo, sr.to); ok && !sr.lazy[i]; ok = ic.prev(lo, sr.to) {
				if sr.gathered[i]++; sr.gathered[i] > tagGatherBudget {
					sr.lazy[i], sr.tagSets[i] = true, nil
					break
				}
				exact := ic.base >= sr.from && ic.base <= sr.to-spread
				var ierr error
				err := scanOrds(ic.v, func(ord uint32) {
					id, err := bt.id(ic.seq, ord)
					if err != nil {
						ierr = err
						return
					}
					sr.tagSets[i][id] = sr.tagSets[i][id] || exact
				})
				if err != nil {
					return corrupt(p, bucketAttrIdx, ic.k, err)
				}
				if ierr != nil {
					return ierr
				}
			}
		}
	}
	return nil
}

// scan walks one partition's index ranges for the query newest first, merged
// by base time, and stops once no older entry can change the newest sr.limit
// accepted traces.
func (sr *searcher) scan(p *partition, tx *bolt.Tx) error {
	q := sr.q
	spread := p.readSpread(tx)
	lo := sr.from
	if lo != math.MinInt64 {
		lo = max(sr.from-spread, math.MinInt64+1)
	}
	minDur, maxDur := int64(q.MinDuration), int64(math.MaxInt64)
	if q.MaxDuration > 0 {
		maxDur = int64(q.MaxDuration)
	}
	match := func(start, dur int64, isErr bool) bool {
		return start >= sr.from && start <= sr.to && dur >= minDur && dur <= maxDur && (isErr || !q.ErrorsOnly)
	}
	var cursors idxHeap
	for _, svc := range sr.services(tx) {
		add := func(bucket, prefix []byte) {
			ic := &idxCursor{c: tx.Bucket(bucket).Cursor(), prefix: prefix, bucket: bucket}
			if ic.seek(lo, sr.to) {
				cursors = append(cursors, ic)
			}
		}
		switch {
		case q.Operation != "":
			forOps(p, tx, svc, func(op uint32, _ ptrace.SpanKind, name []byte) {
				if string(name) == q.Operation {
					add(bucketOpIdx, opPrefix(svc, op))
				}
			})
		case q.ErrorsOnly:
			add(bucketErrIdx, svcPrefix(svc))
		default:
			forOps(p, tx, svc, func(op uint32, _ ptrace.SpanKind, _ []byte) {
				add(bucketOpIdx, opPrefix(svc, op))
			})
		}
	}
	heap.Init(&cursors)
	bt := &blockTraces{p: p, tx: tx, hdrs: map[uint64]blockHeader{}}
	for cursors.Len() > 0 && len(sr.cands)+len(sr.rejected) < sr.ix.opts.MaxSearchCandidates {
		ic := cursors[0]
		if len(sr.cands) >= sr.limit && sr.minCand > ic.base+spread {
			break // every later entry has only spans older than all candidates
		}
		var ierr error
		err := scanPosting(ic.v, ic.base, match, func(ord uint32, start int64) bool {
			id, err := bt.id(ic.seq, ord)
			if err != nil {
				ierr = err
				return false
			}
			ok, err := sr.accept(id)
			if err != nil {
				ierr = err
				return false
			}
			if ok {
				if old, seen := sr.cands[id]; !seen || start > old {
					sr.cands[id] = start
				}
				sr.minCand = min(sr.minCand, start)
			}
			return true
		})
		if err != nil {
			return corrupt(p, ic.bucket, ic.k, err)
		}
		if ierr != nil {
			return ierr
		}
		if ic.prev(lo, sr.to) {
			heap.Fix(&cursors, 0)
		} else {
			heap.Pop(&cursors)
		}
	}
	return nil
}

// accept reports whether trace id passes the tag filters, checking its spans
// when the indexes cannot tell; the verdict is remembered.
func (sr *searcher) accept(id pcommon.TraceID) (bool, error) {
	if _, ok := sr.cands[id]; ok {
		return true, nil
	}
	if _, ok := sr.rejected[id]; ok {
		return false, nil
	}
	check := len(sr.otherTags) > 0
	for i, set := range sr.tagSets {
		exact, in := set[id]
		if sr.lazy[i] {
			var err error
			if in, exact, err = sr.lookupTag(i, id); err != nil {
				return false, err
			}
		}
		if !in {
			sr.rejected[id] = struct{}{}
			return false, nil
		}
		check = check || !exact
	}
	if check {
		td, err := sr.ix.traceIn(sr.s, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, err
		}
		if err != nil || !hasTags(td, sr.q.Service, sr.from, sr.to, append(slices.Clone(sr.indexedTags), sr.otherTags...)) {
			sr.rejected[id] = struct{}{}
			return false, nil
		}
	}
	return true, nil
}

func lookupAttr(tx *bolt.Tx, key string) (uint32, bool) {
	c := tx.Bucket(bucketAttr).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(v) == key && len(k) == 4 {
			return be32(k), true
		}
	}
	return 0, false
}

// readSpread is the partition's largest block spread as committed in tx.
func (p *partition) readSpread(tx *bolt.Tx) int64 {
	if v := tx.Bucket(bucketMeta).Get(metaSpread); len(v) == 8 {
		return int64(be64(v))
	}
	return 0
}

// hasTags reports whether, for every tag, a span of service (any span if
// service is "") starting in [from, to] carries it, on the span or its resource.
func hasTags(td ptrace.Traces, service string, from, to int64, tags []attrVal) bool {
	found := make([]bool, len(tags))
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if service != "" && serviceName(rs.Resource()) != service {
			continue
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				if st := int64(s.StartTimestamp()); st < from || st > to {
					continue
				}
				for t, tag := range tags {
					if found[t] {
						continue
					}
					v, ok := s.Attributes().Get(tag.key)
					if !ok {
						v, ok = rs.Resource().Attributes().Get(tag.key)
					}
					if ok {
						if str, ok := attrString(v); ok && str == tag.value {
							found[t] = true
						}
					}
				}
			}
		}
	}
	for _, f := range found {
		if !f {
			return false
		}
	}
	return true
}

// idxCursor walks one index range (a key prefix) backwards in time.
type idxCursor struct {
	c      *bolt.Cursor
	prefix []byte
	bucket []byte
	k, v   []byte
	base   int64
	seq    uint64
}

// seek positions the cursor at the newest entry with base time in [lo, hi].
func (ic *idxCursor) seek(lo, hi int64) bool {
	k, v := ic.c.Seek(withTimeSeq(bytes.Clone(ic.prefix), hi, math.MaxUint64))
	if k == nil {
		k, v = ic.c.Last()
	}
	return ic.settle(k, v, lo, hi)
}

// prev moves to the next older entry in [lo, hi].
func (ic *idxCursor) prev(lo, hi int64) bool {
	k, v := ic.c.Prev()
	return ic.settle(k, v, lo, hi)
}

func (ic *idxCursor) settle(k, v []byte, lo, hi int64) bool {
	for ; k != nil; k, v = ic.c.Prev() {
		if !bytes.HasPrefix(k, ic.prefix) || len(k) != len(ic.prefix)+16 {
			if bytes.Compare(k, ic.prefix) < 0 {
				return false
			}
			continue
		}
		base, seq, _ := splitTimeSeq(k)
		if base > hi {
			continue
		}
		if base < lo {
			return false
		}
		ic.k, ic.v, ic.base, ic.seq = k, v, base, seq
		return true
	}
	return false
}

// idxHeap orders cursors newest entry first.
type idxHeap []*idxCursor

func (h idxHeap) Len() int           { return len(h) }
func (h idxHeap) Less(i, j int) bool { return h[i].base > h[j].base }
func (h idxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idxHeap) Push(x any)        { *h = append(*h, x.(*idxCursor)) }
func (h *idxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
