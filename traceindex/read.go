package traceindex

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ErrNotFound is returned by Trace and Summary when no span of the trace is
// stored.
var ErrNotFound = errors.New("trace not found")

// ParseTraceID parses a trace id written as up to 32 hexadecimal digits; shorter
// ids (Jaeger's 64-bit ids) are padded with leading zeros.
func ParseTraceID(s string) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	if len(s) == 0 || len(s) > 32 {
		return id, fmt.Errorf("cannot parse trace id %q: want 1 to 32 hex digits", s)
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, fmt.Errorf("cannot parse trace id %q: %w", s, err)
	}
	copy(id[16-len(b):], b)
	if id.IsEmpty() {
		return id, fmt.Errorf("cannot parse trace id %q: all zero", s)
	}
	return id, nil
}

// view runs fn in a read transaction on every partition overlapping [from, to]
// (Unix ns), newest first, holding ix.mu shared. Calls that read much set
// release, to give the partitions' mapped pages back right after (release.go).
func (ix *Index) view(ctx context.Context, from, to int64, release bool, fn func(p *partition, tx *bolt.Tx) error) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	for _, p := range ix.overlapping(from, to) {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.db.View(func(tx *bolt.Tx) error { return fn(p, tx) })
		p.maybeRelease(release)
		if err != nil {
			return err
		}
	}
	return nil
}

func timeRange(from, to time.Time) (int64, int64) {
	f, t := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		f = from.UnixNano()
	}
	if !to.IsZero() {
		t = to.UnixNano()
	}
	return f, t
}

func corrupt(p *partition, bucket []byte, key []byte, err error) error {
	return &CorruptionError{Path: p.path, Bucket: string(bucket), Key: bytes.Clone(key), Err: err}
}

// snapshot is one read transaction per partition, newest partition first, all
// begun before the query runs. A query never begins a second read transaction
// on a file it already reads: with bbolt that can deadlock against a writer
// growing the file's memory map.
type snapshot struct {
	parts         []*partition
	txs           []*bolt.Tx
	buf, filtered []byte // scratch for block decoding
}

// read runs fn on a snapshot of every partition, holding ix.mu shared.
func (ix *Index) read(ctx context.Context, fn func(s *snapshot) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	s := &snapshot{}
	defer func() {
		for _, tx := range s.txs {
			tx.Rollback()
		}
		for _, p := range s.parts {
			p.maybeRelease(false) // see release.go
		}
	}()
	for i := len(ix.parts) - 1; i >= 0; i-- {
		p := ix.parts[i]
		tx, err := p.db.Begin(false)
		if err != nil {
			return fmt.Errorf("cannot read partition %q: %w", p.path, err)
		}
		s.parts = append(s.parts, p)
		s.txs = append(s.txs, tx)
	}
	return fn(s)
}

// Trace returns every stored span of trace id with its resource and scope, or
// ErrNotFound. Spans stored twice (a retried request) are returned once.
func (ix *Index) Trace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error) {
	var td ptrace.Traces
	err := ix.read(ctx, func(s *snapshot) error {
		var err error
		td, err = ix.traceIn(s, id)
		return err
	})
	return td, err
}

func (ix *Index) traceIn(s *snapshot, id pcommon.TraceID) (ptrace.Traces, error) {
	out := ptrace.NewTraces()
	seen := map[pcommon.SpanID]struct{}{}
	for i, p := range s.parts {
		tx := s.txs[i]
		blocks := tx.Bucket(bucketBlocks)
		c := tx.Bucket(bucketTraces).Cursor()
		for k, _ := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, _ = c.Next() {
			if len(k) != 24 {
				return ptrace.Traces{}, corrupt(p, bucketTraces, k, errors.New("bad key length"))
			}
			bk := k[16:]
			v := blocks.Get(bk)
			if v == nil {
				return ptrace.Traces{}, corrupt(p, bucketTraces, k, errors.New("piece of a missing block"))
			}
			var (
				td  ptrace.Traces
				err error
			)
			td, s.buf, s.filtered, err = ix.codec.traceSpans(v, id, s.buf, s.filtered)
			if err != nil {
				return ptrace.Traces{}, corrupt(p, bucketBlocks, bk, err)
			}
			appendTrace(out, td, id, seen)
		}
	}
	if out.ResourceSpans().Len() == 0 {
		return ptrace.Traces{}, ErrNotFound
	}
	return out, nil
}

// appendTrace moves the spans of trace id from td into out, skipping span ids in
// seen.
func appendTrace(out, td ptrace.Traces, id pcommon.TraceID, seen map[pcommon.SpanID]struct{}) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		var outRS ptrace.ResourceSpans
		haveRS := false
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			var outSS ptrace.ScopeSpans
			haveSS := false
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				if s.TraceID() != id {
					continue
				}
				if _, dup := seen[s.SpanID()]; dup {
					continue
				}
				seen[s.SpanID()] = struct{}{}
				if !haveRS {
					outRS = out.ResourceSpans().AppendEmpty()
					rs.Resource().MoveTo(outRS.Resource())
					outRS.SetSchemaUrl(rs.SchemaUrl())
					haveRS = true
				}
				if !haveSS {
					outSS = outRS.ScopeSpans().AppendEmpty()
					ss.Scope().MoveTo(outSS.Scope())
					outSS.SetSchemaUrl(ss.SchemaUrl())
					haveSS = true
				}
				s.MoveTo(outSS.Spans().AppendEmpty())
			}
		}
	}
}

// Services lists the services with spans starting in [from, to], sorted. Zero
// times are unbounded. Precision is one partition: a service seen anywhere in an
// overlapping partition is listed.
func (ix *Index) Services(ctx context.Context, from, to time.Time) ([]string, error) {
	f, t := timeRange(from, to)
	set := map[string]struct{}{}
	err := ix.view(ctx, f, t, false, func(p *partition, tx *bolt.Tx) error {
		return tx.Bucket(bucketSvc).ForEach(func(_, v []byte) error {
			set[string(v)] = struct{}{}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	r := make([]string, 0, len(set))
	for s := range set {
		r = append(r, s)
	}
	sort.Strings(r)
	return r, nil
}

// Operation is a span name of a service with its span kind.
type Operation struct {
	Name     string
	SpanKind ptrace.SpanKind
}

// Operations lists the operations of service, sorted by name then kind. With
// kinds given, only operations of those span kinds are listed.
func (ix *Index) Operations(ctx context.Context, service string, kinds ...ptrace.SpanKind) ([]Operation, error) {
	set := map[Operation]struct{}{}
	err := ix.view(ctx, math.MinInt64, math.MaxInt64, false, func(p *partition, tx *bolt.Tx) error {
		svc, ok := lookupService(tx, service)
		if !ok {
			return nil
		}
		return forOps(p, tx, svc, func(_ uint32, kind ptrace.SpanKind, name []byte) {
			if len(kinds) == 0 || slices.Contains(kinds, kind) {
				set[Operation{Name: string(name), SpanKind: kind}] = struct{}{}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	r := make([]Operation, 0, len(set))
	for o := range set {
		r = append(r, o)
	}
	slices.SortFunc(r, func(a, b Operation) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return int(a.SpanKind) - int(b.SpanKind)
	})
	return r, nil
}

func lookupService(tx *bolt.Tx, name string) (uint32, bool) {
	c := tx.Bucket(bucketSvc).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(v) == name && len(k) == 4 {
			return be32(k), true
		}
	}
	return 0, false
}

func forOps(p *partition, tx *bolt.Tx, svc uint32, fn func(op uint32, kind ptrace.SpanKind, name []byte)) error {
	prefix := svcPrefix(svc)
	c := tx.Bucket(bucketOp).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 8 || len(v) < 1 {
			return corrupt(p, bucketOp, k, errors.New("bad key or value length"))
		}
		fn(be32(k[4:]), ptrace.SpanKind(v[0]), v[1:])
	}
	return nil
}

// Summary returns the summary of trace id, or ErrNotFound. A trace stored in one
// piece is summarised without decoding spans.
func (ix *Index) Summary(ctx context.Context, id pcommon.TraceID) (TraceSummary, error) {
	var sum TraceSummary
	err := ix.read(ctx, func(s *snapshot) error {
		var err error
		sum, err = ix.summaryIn(s, id)
		return err
	})
	return sum, err
}

func (ix *Index) summaryIn(s *snapshot, id pcommon.TraceID) (TraceSummary, error) {
	sum := TraceSummary{TraceID: id}
	var (
		pc     piece
		pieces int
		pp     *partition
		ptx    *bolt.Tx
	)
	for i, p := range s.parts {
		tx := s.txs[i]
		c := tx.Bucket(bucketTraces).Cursor()
		for k, v := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, v = c.Next() {
			var err error
			if pc, err = decodePiece(v); err != nil {
				return sum, corrupt(p, bucketTraces, k, err)
			}
			pieces++
			pp, ptx = p, tx
		}
	}
	switch pieces {
	case 0:
		return sum, ErrNotFound
	case 1:
		svc := ptx.Bucket(bucketSvc).Get(u32(nil, pc.svc))
		op := ptx.Bucket(bucketOp).Get(opPrefix(pc.svc, pc.op))
		if svc == nil || len(op) < 1 {
			return sum, corrupt(pp, bucketTraces, pieceKey(id, 0), fmt.Errorf("unknown service %d or operation %d", pc.svc, pc.op))
		}
		sum.RootService, sum.RootOperation, sum.HasRoot = string(svc), string(op[1:]), pc.root
		sum.Start = time.Unix(0, pc.minStart).UTC()
		sum.Duration = time.Duration(pc.maxEnd - pc.minStart)
		sum.SpanCount, sum.ErrorCount = int(pc.spans), int(pc.errors)
		return sum, nil
	}
	// Pieces may hold the same span twice (a retried request): count from the
	// deduplicated spans.
	td, err := ix.traceIn(s, id)
	if err != nil {
		return sum, err
	}
	return summarize(id, td), nil
}

// summarize computes the summary of trace id from its spans.
func summarize(id pcommon.TraceID, td ptrace.Traces) TraceSummary {
	s := TraceSummary{TraceID: id}
	var minStart, maxEnd, nameStart int64 = math.MaxInt64, math.MinInt64, math.MaxInt64
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := serviceName(rss.At(i).Resource())
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				start, end := int64(sp.StartTimestamp()), int64(sp.EndTimestamp())
				minStart, maxEnd = min(minStart, start), max(maxEnd, end)
				s.SpanCount++
				if sp.Status().Code() == ptrace.StatusCodeError {
					s.ErrorCount++
				}
				root := sp.ParentSpanID().IsEmpty()
				if (root && !s.HasRoot) || (root == s.HasRoot && start < nameStart) {
					s.RootService, s.RootOperation, s.HasRoot, nameStart = svc, sp.Name(), root, start
				}
			}
		}
	}
	s.Start = time.Unix(0, minStart).UTC()
	s.Duration = time.Duration(maxEnd - minStart)
	return s
}
