package traceindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// maxIndexedValue is the longest attribute value put into the attribute index;
// longer values are found by reading candidate traces.
const maxIndexedValue = 256

// blockBytesTarget closes a block early once its spans' estimated size reaches it.
const blockBytesTarget = 8 << 20

// Reasons a span is rejected, in the order they are reported.
const (
	rejTraceID = iota
	rejSpanID
	rejEndBeforeStart
	rejTooOld
	rejTooNew
	rejTooManyAttrs
	rejAttrTooLong
	rejTooLarge
	rejResourceAttrs
	rejExpired
	numRejections
)

var rejectionText = [numRejections]string{
	rejTraceID:        "empty or all-zero trace id",
	rejSpanID:         "empty or all-zero span id",
	rejEndBeforeStart: "end before start",
	rejTooOld:         "start time too far in the past",
	rejTooNew:         "start time too far in the future",
	rejTooManyAttrs:   "too many attributes",
	rejAttrTooLong:    "attribute key or value too long",
	rejTooLarge:       "span too large",
	rejResourceAttrs:  "resource has too many attributes or too long values",
	rejExpired:        "start time outside retained partitions",
}

type rejections [numRejections]int64

func (r *rejections) total() int64 {
	var n int64
	for _, c := range r {
		n += c
	}
	return n
}

func (r *rejections) reason() string {
	n := r.total()
	if n == 0 {
		return ""
	}
	var parts []string
	for i, c := range r {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s (%d)", rejectionText[i], c))
		}
	}
	return fmt.Sprintf("rejected %d spans: %s", n, strings.Join(parts, ", "))
}

// spanRef locates an accepted span in the request.
type spanRef struct {
	rs, ss, sp int
	start      int64
	trace      pcommon.TraceID
	size       int
}

// WriteTraces stores the valid spans of td and returns how many it rejected and
// why (OTLP partial success). It returns once the stored spans are durable: the
// spans of each partition are committed in one bbolt transaction, so a request
// within one partition is all-or-nothing. A request spanning several partitions
// commits once in each, in time order; if one fails, the parts already committed
// are deleted again before the error is returned, so an error still means
// nothing was stored. (Should that deletion fail too, the error says so; a retry
// stores no duplicates, since spans are deduplicated by span id when read.)
func (ix *Index) WriteTraces(ctx context.Context, td ptrace.Traces) (rejected int64, reason string, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	var rej rejections
	refs := ix.validate(td, &rej)

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return 0, "", ErrClosed
	}
	groups, err := ix.group(refs, &rej)
	if err != nil {
		return 0, "", err
	}
	var written []undoPart // parts committed, when the request spans partitions
	for _, g := range groups {
		var keys *[]writtenKey
		if len(groups) > 1 {
			keys = new([]writtenKey)
		}
		err := ctx.Err()
		if err == nil {
			err = ix.writePartition(g.p, td, g.refs, keys)
		}
		if err != nil {
			return 0, "", takeBack(written, err)
		}
		if keys != nil {
			written = append(written, undoPart{g.p, *keys})
		}
	}
	return rej.total(), rej.reason(), nil
}

// writtenKey is a key one request put in a partition, to delete it again.
type writtenKey struct {
	bucket, key []byte
}

// undoPart is what one request committed to one partition.
type undoPart struct {
	p    *partition
	keys []writtenKey
}

// takeBack deletes the parts of a request already committed after a later part
// failed with cause, and returns cause, joined with any failure to delete.
func takeBack(parts []undoPart, cause error) error {
	err := cause
	for _, u := range parts {
		uerr := u.p.db.Update(func(tx *bolt.Tx) error {
			for _, k := range u.keys {
				if err := tx.Bucket(k.bucket).Delete(k.key); err != nil {
					return err
				}
			}
			return nil
		})
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("cannot take back the spans already stored in partition %q (a retry stores no duplicates): %w", u.p.path, uerr))
		}
	}
	return err
}

type partGroup struct {
	p    *partition
	refs []spanRef
}

// group assigns accepted spans to partitions, creating missing ones. The caller
// holds ix.mu shared.
func (ix *Index) group(refs []spanRef, rej *rejections) ([]partGroup, error) {
	cutoff := int64(0)
	if ix.opts.Retention > 0 {
		cutoff = ix.opts.Now().Add(-ix.opts.Retention).UnixNano()
	}
	var kept []spanRef
	for _, r := range refs {
		if r.start < cutoff {
			rej[rejExpired]++
			continue
		}
		kept = append(kept, r)
	}
	for {
		var missing int64
		found := true
		byPart := map[*partition][]spanRef{}
		for _, r := range kept {
			p := ix.findPart(r.start)
			if p == nil {
				missing, found = r.start, false
				break
			}
			byPart[p] = append(byPart[p], r)
		}
		if found {
			var gs []partGroup
			for p, rs := range byPart {
				gs = append(gs, partGroup{p: p, refs: rs})
			}
			slices.SortFunc(gs, func(a, b partGroup) int { return cmpInt64(a.p.start, b.p.start) })
			return gs, nil
		}
		if _, err := ix.partitionFor(missing); err != nil {
			return nil, err
		}
		if ix.closed {
			return nil, ErrClosed
		}
	}
}

// validate returns the spans of td to store and counts the others in rej.
func (ix *Index) validate(td ptrace.Traces, rej *rejections) []spanRef {
	o := &ix.opts
	now := o.Now().UnixNano()
	minStart, maxStart := now-int64(o.MaxPast), now+int64(o.MaxFuture)
	var refs []spanRef
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resAttrs := rs.Resource().Attributes()
		resBad := resAttrs.Len() > o.MaxAttributes
		if !resBad {
			_, tooLong := mapBytes(resAttrs, o.MaxAttributeBytes, 0)
			resBad = tooLong
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				if resBad {
					rej[rejResourceAttrs]++
					continue
				}
				why, size := ix.check(s, minStart, maxStart)
				if why >= 0 {
					rej[why]++
					continue
				}
				refs = append(refs, spanRef{rs: i, ss: j, sp: k, start: int64(s.StartTimestamp()), trace: s.TraceID(), size: size})
			}
		}
	}
	return refs
}

// check returns the rejection reason of s (or -1) and its estimated size.
func (ix *Index) check(s ptrace.Span, minStart, maxStart int64) (int, int) {
	o := &ix.opts
	if s.TraceID().IsEmpty() {
		return rejTraceID, 0
	}
	if s.SpanID().IsEmpty() {
		return rejSpanID, 0
	}
	start, end := int64(s.StartTimestamp()), int64(s.EndTimestamp())
	if end < start {
		return rejEndBeforeStart, 0
	}
	if start <= 0 || start < minStart {
		return rejTooOld, 0
	}
	if start > maxStart {
		return rejTooNew, 0
	}
	nAttrs := s.Attributes().Len()
	size := len(s.Name()) + 64
	n, tooLong := mapBytes(s.Attributes(), o.MaxAttributeBytes, 0)
	size += n
	events := s.Events()
	for i := 0; i < events.Len() && !tooLong; i++ {
		e := events.At(i)
		nAttrs += e.Attributes().Len() + 1
		n, tl := mapBytes(e.Attributes(), o.MaxAttributeBytes, 0)
		size += n + len(e.Name()) + 16
		tooLong = tl || len(e.Name()) > o.MaxAttributeBytes
	}
	links := s.Links()
	for i := 0; i < links.Len() && !tooLong; i++ {
		l := links.At(i)
		nAttrs += l.Attributes().Len() + 1
		n, tl := mapBytes(l.Attributes(), o.MaxAttributeBytes, 0)
		size += n + len(l.TraceState().AsRaw()) + 32
		tooLong = tl
	}
	switch {
	case tooLong || len(s.Name()) > o.MaxAttributeBytes || len(s.Status().Message()) > o.MaxAttributeBytes:
		return rejAttrTooLong, 0
	case nAttrs > o.MaxAttributes:
		return rejTooManyAttrs, 0
	case size > o.MaxSpanBytes:
		return rejTooLarge, 0
	}
	return -1, size
}

// mapBytes estimates the encoded size of m and reports whether one of its keys or
// values is longer than max bytes.
func mapBytes(m pcommon.Map, max, depth int) (int, bool) {
	n, tooLong := 0, false
	m.Range(func(k string, v pcommon.Value) bool {
		vn, tl := valueBytes(v, max, depth+1)
		n += len(k) + vn + 4
		tooLong = tl || len(k) > max
		return !tooLong
	})
	return n, tooLong
}

func valueBytes(v pcommon.Value, max, depth int) (int, bool) {
	if depth > 16 {
		return 0, true
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return len(v.Str()), len(v.Str()) > max
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len(), v.Bytes().Len() > max
	case pcommon.ValueTypeMap:
		return mapBytes(v.Map(), max, depth)
	case pcommon.ValueTypeSlice:
		n, sl := 0, v.Slice()
		for i := 0; i < sl.Len(); i++ {
			vn, tl := valueBytes(sl.At(i), max, depth+1)
			n += vn + 2
			if tl || n > max {
				return n, true
			}
		}
		return n, false
	}
	return 9, false
}

// attrString is the indexed form of an attribute value; ok is false for types
// that are not indexed (bytes, maps, slices, empty).
func attrString(v pcommon.Value) (string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str(), true
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10), true
	case pcommon.ValueTypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64), true
	case pcommon.ValueTypeBool:
		return strconv.FormatBool(v.Bool()), true
	}
	return "", false
}

// serviceName is a resource's service.name, or "unknown_service" as the
// OpenTelemetry specification says.
func serviceName(res pcommon.Resource) string {
	if v, ok := res.Attributes().Get("service.name"); ok && v.Str() != "" {
		return v.Str()
	}
	return "unknown_service"
}

// spanMeta is what the indexes need of one span of a block.
type spanMeta struct {
	ord        uint32
	svc        string
	kind       ptrace.SpanKind
	name       string
	start, end int64
	root, err  bool
	attrs      []attrVal
}

type attrVal struct {
	key, value string
}

// pendingBlock is one encoded block waiting for its transaction.
type pendingBlock struct {
	value              []byte
	ids                []pcommon.TraceID
	spans              []spanMeta
	minStart, maxStart int64
}

// writePartition stores refs (spans of td) in p in one transaction. A non-nil
// keys receives every key written, once committed.
func (ix *Index) writePartition(p *partition, td ptrace.Traces, refs []spanRef, keys *[]writtenKey) error {
	// Keep resource and scope order; within a scope, order by trace then start so
	// a trace's spans sit together and compress well.
	slices.SortStableFunc(refs, func(a, b spanRef) int {
		if a.rs != b.rs {
			return a.rs - b.rs
		}
		if a.ss != b.ss {
			return a.ss - b.ss
		}
		if c := bytes.Compare(a.trace[:], b.trace[:]); c != 0 {
			return c
		}
		return cmpInt64(a.start, b.start)
	})
	var blocks []pendingBlock
	for len(refs) > 0 {
		n, size := 0, 0
		for n < len(refs) && n < ix.opts.MaxBlockSpans && (n == 0 || size < blockBytesTarget) {
			size += refs[n].size
			n++
		}
		b, err := ix.buildBlock(td, refs[:n])
		if err != nil {
			return err
		}
		blocks = append(blocks, b)
		refs = refs[n:]
	}

	return p.submit(&commitJob{blocks: blocks, done: make(chan error, 1), keys: keys})
}

// commitJob is one request's blocks waiting for a group commit.
type commitJob struct {
	blocks []pendingBlock
	done   chan error
	keys   *[]writtenKey // if set, receives the keys written
}

// errTakeOver tells a queued writer to commit the queue itself.
var errTakeOver = errors.New("take over the commit")

// submit queues job and returns once it is committed. If no commit is running,
// the caller commits everything queued in one transaction; writers arriving
// meanwhile queue up, and the first of them commits the next batch, so every
// writer waits for at most two transactions. Each request is still
// all-or-nothing: a failed transaction fails every request in it.
func (p *partition) submit(job *commitJob) error {
	p.cmu.Lock()
	p.queue = append(p.queue, job)
	if p.committing {
		p.cmu.Unlock()
		if err := <-job.done; err != errTakeOver {
			return err
		}
		p.cmu.Lock() // this writer commits now; committing stays set
	} else {
		p.committing = true
	}
	batch := p.queue
	p.queue = nil
	p.cmu.Unlock()

	err := p.commit(batch)
	for _, j := range batch {
		if j != job {
			j.done <- err
		}
	}
	p.cmu.Lock()
	if len(p.queue) > 0 {
		p.queue[0].done <- errTakeOver
	} else {
		p.committing = false
	}
	p.cmu.Unlock()
	return err
}

// commit writes the blocks of batch in one transaction. Only the committer
// calls it.
func (p *partition) commit(batch []*commitJob) error {
	var names *nameTx
	spread := p.spread
	var nodes int64
	err := p.db.Update(func(tx *bolt.Tx) error {
		defer func() {
			st := tx.Stats()
			nodes = st.GetNodeCount()
		}()
		names = &nameTx{p: p, tx: tx}
		for _, job := range batch {
			for i := range job.blocks {
				b := &job.blocks[i]
				if err := putBlock(tx, names, b, job.keys); err != nil {
					return err
				}
				spread = max(spread, b.maxStart-b.minStart)
			}
		}
		if spread != p.spread {
			return tx.Bucket(bucketMeta).Put(metaSpread, u64(nil, uint64(spread)))
		}
		return nil
	})
	// Give the mapped pages back once commits have read the node budget, or a
	// while after the last time (release.go).
	p.touched += nodes
	if p.maybeRelease(p.touched >= p.releaseNodes) {
		p.touched = 0
	}
	if err != nil {
		return fmt.Errorf("cannot write spans to partition %q: %w", p.path, err)
	}
	names.commit()
	p.spread = spread
	return nil
}

// buildBlock copies refs into a new Traces, encodes it and collects index data.
func (ix *Index) buildBlock(td ptrace.Traces, refs []spanRef) (pendingBlock, error) {
	out := ptrace.NewTraces()
	var b pendingBlock
	ords := map[pcommon.TraceID]uint32{}
	var (
		curRS, curSS = -1, -1
		outRS        ptrace.ResourceSpans
		outSS        ptrace.ScopeSpans
		svc          string
	)
	b.minStart, b.maxStart = refs[0].start, refs[0].start
	for _, r := range refs {
		rs := td.ResourceSpans().At(r.rs)
		if r.rs != curRS {
			curRS, curSS = r.rs, -1
			outRS = out.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(outRS.Resource())
			outRS.SetSchemaUrl(rs.SchemaUrl())
			svc = serviceName(rs.Resource())
		}
		ss := rs.ScopeSpans().At(r.ss)
		if r.ss != curSS {
			curSS = r.ss
			outSS = outRS.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(outSS.Scope())
			outSS.SetSchemaUrl(ss.SchemaUrl())
		}
		s := ss.Spans().At(r.sp)
		s.CopyTo(outSS.Spans().AppendEmpty())

		ord, ok := ords[r.trace]
		if !ok {
			ord = uint32(len(b.ids))
			ords[r.trace] = ord
			b.ids = append(b.ids, r.trace)
		}
		m := spanMeta{
			ord: ord, svc: svc, kind: s.Kind(), name: s.Name(),
			start: int64(s.StartTimestamp()), end: int64(s.EndTimestamp()),
			root: s.ParentSpanID().IsEmpty(),
			err:  s.Status().Code() == ptrace.StatusCodeError,
		}
		for _, key := range ix.opts.IndexedAttributes {
			v, ok := s.Attributes().Get(key)
			if !ok {
				v, ok = rs.Resource().Attributes().Get(key)
			}
			if !ok {
				continue
			}
			if str, ok := attrString(v); ok && len(str) <= maxIndexedValue {
				m.attrs = append(m.attrs, attrVal{key: key, value: str})
			}
		}
		b.spans = append(b.spans, m)
		b.minStart = min(b.minStart, m.start)
		b.maxStart = max(b.maxStart, m.start)
	}
	v, err := ix.codec.appendBlock(nil, b.ids, out)
	if err != nil {
		return b, err
	}
	b.value = v
	return b, nil
}

type opKey struct{ svc, op uint32 }

type attrKey struct {
	svc, attr uint32
	value     string
}

// putBlock writes one block and its index entries, appending each key written
// to keys when it is not nil.
func putBlock(tx *bolt.Tx, names *nameTx, b *pendingBlock, keys *[]writtenKey) error {
	put := func(bk *bolt.Bucket, name, k, v []byte) error {
		if err := bk.Put(k, v); err != nil {
			return err
		}
		if keys != nil {
			*keys = append(*keys, writtenKey{name, bytes.Clone(k)})
		}
		return nil
	}
	blocks := tx.Bucket(bucketBlocks)
	blocks.FillPercent = fillAppend
	seq, err := blocks.NextSequence()
	if err != nil {
		return err
	}
	if err := put(blocks, bucketBlocks, seqKey(seq), b.value); err != nil {
		return err
	}
	btime := tx.Bucket(bucketBTime)
	btime.FillPercent = fillAppend
	if err := put(btime, bucketBTime, btimeKey(b.minStart, seq), u64(nil, uint64(b.maxStart))); err != nil {
		return err
	}

	pieces := make([]piece, len(b.ids))
	ops := map[opKey]*postingBuilder{}
	errs := map[uint32]*postingBuilder{}
	attrs := map[attrKey]*ordsBuilder{}
	for _, m := range b.spans {
		svc, err := names.service(m.svc)
		if err != nil {
			return err
		}
		op, err := names.op(svc, m.kind, m.name)
		if err != nil {
			return err
		}
		pc := &pieces[m.ord]
		if pc.spans == 0 {
			*pc = piece{ord: m.ord, minStart: m.start, maxEnd: m.end, svc: svc, op: op, root: m.root, firstStart: m.start}
		} else {
			pc.minStart = min(pc.minStart, m.start)
			pc.maxEnd = max(pc.maxEnd, m.end)
			if (m.root && !pc.root) || (m.root == pc.root && m.start < pc.firstStart) {
				pc.svc, pc.op, pc.root, pc.firstStart = svc, op, m.root, m.start
			}
		}
		pc.spans++
		ps := postingSpan{start: m.start, dur: m.end - m.start, err: m.err}
		if m.err {
			pc.errors++
			getPosting(errs, svc).add(m.ord, ps)
		}
		getPosting(ops, opKey{svc, op}).add(m.ord, ps)
		for _, a := range m.attrs {
			id, err := names.attr(a.key)
			if err != nil {
				return err
			}
			k := attrKey{svc: svc, attr: id, value: a.value}
			ob := attrs[k]
			if ob == nil {
				ob = &ordsBuilder{base: m.start}
				attrs[k] = ob
			}
			ob.add(m.ord, m.start)
		}
	}

	traces := tx.Bucket(bucketTraces)
	for i := range pieces {
		if err := put(traces, bucketTraces, pieceKey(b.ids[i], seq), appendPiece(nil, &pieces[i])); err != nil {
			return err
		}
	}
	opIdx := tx.Bucket(bucketOpIdx)
	opIdx.FillPercent = fillAppend
	for k, pb := range ops {
		if err := put(opIdx, bucketOpIdx, withTimeSeq(opPrefix(k.svc, k.op), pb.base, seq), pb.encode()); err != nil {
			return err
		}
	}
	errIdx := tx.Bucket(bucketErrIdx)
	errIdx.FillPercent = fillAppend
	for svc, pb := range errs {
		if err := put(errIdx, bucketErrIdx, withTimeSeq(svcPrefix(svc), pb.base, seq), pb.encode()); err != nil {
			return err
		}
	}
	attrIdx := tx.Bucket(bucketAttrIdx)
	attrIdx.FillPercent = fillAppend
	for k, ob := range attrs {
		if err := put(attrIdx, bucketAttrIdx, withTimeSeq(attrPrefix(k.svc, k.attr, k.value), ob.base, seq), appendOrds(nil, ob.ords)); err != nil {
			return err
		}
	}
	return nil
}

// postingBuilder collects one posting value; spans arrive grouped by trace
// within a scope, but a trace may recur in a later scope.
type postingBuilder struct {
	base   int64
	traces []postingTrace
	index  map[uint32]int
}

func getPosting[K comparable](m map[K]*postingBuilder, k K) *postingBuilder {
	pb := m[k]
	if pb == nil {
		pb = &postingBuilder{index: map[uint32]int{}}
		m[k] = pb
	}
	return pb
}

func (pb *postingBuilder) add(ord uint32, s postingSpan) {
	if len(pb.traces) == 0 || s.start < pb.base {
		pb.base = s.start
	}
	i, ok := pb.index[ord]
	if !ok {
		i = len(pb.traces)
		pb.index[ord] = i
		pb.traces = append(pb.traces, postingTrace{ord: ord})
	}
	pb.traces[i].spans = append(pb.traces[i].spans, s)
}

func (pb *postingBuilder) encode() []byte { return appendPosting(nil, pb.base, pb.traces) }

type ordsBuilder struct {
	base int64
	ords []uint32
}

func (ob *ordsBuilder) add(ord uint32, start int64) {
	ob.base = min(ob.base, start)
	if !slices.Contains(ob.ords, ord) {
		ob.ords = append(ob.ords, ord)
	}
}

// nameTx assigns dictionary ids inside one write transaction; commit publishes
// them to the partition's caches after the transaction committed.
type nameTx struct {
	p     *partition
	tx    *bolt.Tx
	svcs  map[string]uint32
	ops   map[opName]uint32
	attrs map[string]uint32
}

func (n *nameTx) service(name string) (uint32, error) {
	if id, ok := n.p.svcIDs[name]; ok {
		return id, nil
	}
	if id, ok := n.svcs[name]; ok {
		return id, nil
	}
	b := n.tx.Bucket(bucketSvc)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	id := uint32(seq)
	if err := b.Put(u32(nil, id), []byte(name)); err != nil {
		return 0, err
	}
	if n.svcs == nil {
		n.svcs = map[string]uint32{}
	}
	n.svcs[name] = id
	return id, nil
}

func (n *nameTx) op(svc uint32, kind ptrace.SpanKind, name string) (uint32, error) {
	k := opName{svc: svc, kind: kind, name: name}
	if id, ok := n.p.opIDs[k]; ok {
		return id, nil
	}
	if id, ok := n.ops[k]; ok {
		return id, nil
	}
	b := n.tx.Bucket(bucketOp)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	id := uint32(seq)
	if err := b.Put(opPrefix(svc, id), append([]byte{byte(kind)}, name...)); err != nil {
		return 0, err
	}
	if n.ops == nil {
		n.ops = map[opName]uint32{}
	}
	n.ops[k] = id
	return id, nil
}

func (n *nameTx) attr(key string) (uint32, error) {
	if id, ok := n.p.attrIDs[key]; ok {
		return id, nil
	}
	if id, ok := n.attrs[key]; ok {
		return id, nil
	}
	b := n.tx.Bucket(bucketAttr)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	id := uint32(seq)
	if err := b.Put(u32(nil, id), []byte(key)); err != nil {
		return 0, err
	}
	if n.attrs == nil {
		n.attrs = map[string]uint32{}
	}
	n.attrs[key] = id
	return id, nil
}

func (n *nameTx) commit() {
	for k, v := range n.svcs {
		n.p.svcIDs[k] = v
	}
	for k, v := range n.ops {
		n.p.opIDs[k] = v
	}
	for k, v := range n.attrs {
		n.p.attrIDs[k] = v
	}
}
