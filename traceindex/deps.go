package traceindex

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Dependency is a count of calls from spans of Parent to child spans of Child.
type Dependency struct {
	Parent, Child string
	CallCount     uint64
}

// Dependencies is the result of a dependency query.
type Dependencies struct {
	Edges []Dependency // sorted by parent then child
	// Truncated is set when the window held more than Options.MaxDependencySpans
	// spans; the edges count only the spans read.
	Truncated bool
}

// Dependencies counts, for spans starting in [from, to], the parent/child span
// pairs whose services differ, per (parent service, child service). Both spans of
// a pair must start in the window.
func (ix *Index) Dependencies(ctx context.Context, from, to time.Time) (Dependencies, error) {
	f, t := timeRange(from, to)
	type spanKey struct {
		trace pcommon.TraceID
		span  pcommon.SpanID
	}
	type child struct {
		parent spanKey
		svc    uint32
	}
	var (
		svcNames  []string
		svcIndex  = map[string]uint32{}
		spanSvc   = map[spanKey]uint32{}
		children  []child
		res       Dependencies
		buf       []byte
		readSpans int
	)
	intern := func(name []byte) uint32 {
		if i, ok := svcIndex[string(name)]; ok {
			return i
		}
		i := uint32(len(svcNames))
		svcNames = append(svcNames, string(name))
		svcIndex[string(name)] = i
		return i
	}
	errFull := errors.New("full")
	// Every block of the window is read: give the pages back at once.
	err := ix.view(ctx, f, t, true, func(p *partition, tx *bolt.Tx) error {
		lo := f
		if lo != math.MinInt64 {
			lo = max(f-p.readSpread(tx), math.MinInt64+1)
		}
		blocks := tx.Bucket(bucketBlocks)
		c := tx.Bucket(bucketBTime).Cursor()
		for k, _ := c.Seek(u64(nil, uint64(max(lo, 0)))); k != nil; k, _ = c.Next() {
			if len(k) != 16 {
				return corrupt(p, bucketBTime, k, errors.New("bad key length"))
			}
			if int64(be64(k)) > t {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			v := blocks.Get(k[8:])
			if v == nil {
				return corrupt(p, bucketBTime, k, errors.New("time entry of a missing block"))
			}
			var (
				raw []byte
				err error
			)
			_, raw, err = ix.codec.decompress(v, buf)
			buf = raw
			if err != nil {
				return corrupt(p, bucketBlocks, k[8:], err)
			}
			err = forSpanLinks(raw, func(service []byte, s *spanLink) error {
				if s.start < f || s.start > t {
					return nil
				}
				key := spanKey{s.trace, s.span}
				if _, dup := spanSvc[key]; dup {
					return nil // stored twice by a retried request
				}
				if readSpans >= ix.opts.MaxDependencySpans {
					res.Truncated = true
					return errFull
				}
				readSpans++
				svc := intern(service)
				spanSvc[key] = svc
				if !s.parent.IsEmpty() {
					children = append(children, child{spanKey{s.trace, s.parent}, svc})
				}
				return nil
			})
			if errors.Is(err, errFull) {
				return err
			}
			if err != nil {
				return corrupt(p, bucketBlocks, k[8:], err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return Dependencies{}, err
	}
	counts := map[[2]uint32]uint64{}
	for _, ch := range children {
		if ps, ok := spanSvc[ch.parent]; ok && ps != ch.svc {
			counts[[2]uint32{ps, ch.svc}]++
		}
	}
	for k, n := range counts {
		res.Edges = append(res.Edges, Dependency{Parent: svcNames[k[0]], Child: svcNames[k[1]], CallCount: n})
	}
	slices.SortFunc(res.Edges, func(a, b Dependency) int {
		if c := strings.Compare(a.Parent, b.Parent); c != 0 {
			return c
		}
		return strings.Compare(a.Child, b.Child)
	})
	return res, nil
}
