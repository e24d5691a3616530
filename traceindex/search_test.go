package traceindex

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestSearchMatchesBruteForce stores random traces scattered over requests and
// hourly partitions and checks random queries against a direct evaluation of
// Query's definition over the spans.
func TestSearchMatchesBruteForce(t *testing.T) {
	for _, blockSpans := range []int{4, 64} {
		t.Run(fmt.Sprint(blockSpans), func(t *testing.T) { testSearchMatchesBruteForce(t, blockSpans) })
	}
	// Tags checked per candidate instead of gathered up front.
	defer func(b int) { tagGatherBudget = b }(tagGatherBudget)
	tagGatherBudget = 1
	for _, blockSpans := range []int{4, 64} {
		t.Run(fmt.Sprint("lazy-", blockSpans), func(t *testing.T) { testSearchMatchesBruteForce(t, blockSpans) })
	}
}

func testSearchMatchesBruteForce(t *testing.T, blockSpans int) {
	r := rand.New(rand.NewPCG(11, uint64(blockSpans)))
	ix := openTest(t, &Options{PartitionDuration: time.Hour, MaxBlockSpans: blockSpans})
	ctx := context.Background()

	svcs := []string{"a", "b", "c"}
	ops := []string{"x", "y", "z"}
	var spans []sp
	for n := 1; n <= 80; n++ {
		base := t0.Add(-90*time.Minute - time.Duration(r.Int64N(int64(10*time.Hour))))
		k := 1 + r.IntN(6)
		for i := 1; i <= k; i++ {
			s := sp{trace: n, span: i, svc: svcs[r.IntN(3)], name: ops[r.IntN(3)],
				start: base.Add(time.Duration(r.Int64N(int64(90 * time.Minute)))),
				dur:   time.Duration(r.IntN(100)) * time.Millisecond, err: r.IntN(10) == 0,
				attrs: map[string]any{}}
			if i > 1 {
				s.parent = 1 + r.IntN(i-1)
			}
			if r.IntN(10) < 7 {
				s.attrs["http.route"] = fmt.Sprintf("/%d", r.IntN(3))
			}
			if r.IntN(2) == 0 {
				s.attrs["user.tier"] = []string{"free", "gold"}[r.IntN(2)]
			}
			spans = append(spans, s)
		}
	}
	shuffled := slices.Clone(spans)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for len(shuffled) > 0 {
		n := min(len(shuffled), 1+r.IntN(3*blockSpans))
		mustWrite(t, ix, build(shuffled[:n]...))
		shuffled = shuffled[n:]
	}

	pick := func(p float64, vals ...string) string {
		if r.Float64() < p {
			return vals[r.IntN(len(vals))]
		}
		return ""
	}
	for qn := 0; qn < 400; qn++ {
		q := Query{
			Service:    pick(0.7, "a", "b", "c", "nope"),
			Operation:  pick(0.3, "x", "y", "z"),
			ErrorsOnly: r.IntN(5) == 0,
			Limit:      1 + r.IntN(90),
		}
		if r.IntN(3) == 0 {
			q.MinDuration = time.Duration(r.IntN(100)) * time.Millisecond
		}
		if r.IntN(3) == 0 {
			q.MaxDuration = time.Duration(1+r.IntN(100)) * time.Millisecond
		}
		if r.IntN(2) == 0 {
			q.Start = t0.Add(-time.Duration(r.Int64N(int64(11 * time.Hour))))
			q.End = q.Start.Add(time.Duration(r.Int64N(int64(5 * time.Hour))))
		}
		if r.IntN(3) == 0 {
			q.Tags = map[string]string{}
			if r.IntN(2) == 0 {
				q.Tags["http.route"] = fmt.Sprintf("/%d", r.IntN(3))
			}
			if r.IntN(2) == 0 {
				q.Tags["user.tier"] = []string{"free", "gold"}[r.IntN(2)]
			}
		}
		got, err := ix.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteForce(spans, q)
		var gotIDs []pcommon.TraceID
		for _, s := range got {
			gotIDs = append(gotIDs, s.TraceID)
		}
		if !slices.Equal(gotIDs, want) {
			t.Fatalf("query %d %+v:\n got %v\nwant %v", qn, q, gotIDs, want)
		}
	}
}

func bruteForce(spans []sp, q Query) []pcommon.TraceID {
	from, to := timeRange(q.Start, q.End)
	maxDur := time.Duration(1<<63 - 1)
	if q.MaxDuration > 0 {
		maxDur = q.MaxDuration
	}
	type hit struct {
		id    pcommon.TraceID
		start int64
	}
	best := map[int]int64{}
	tags := map[int]map[string]bool{}
	for _, s := range spans {
		st := s.start.UnixNano()
		inTime := st >= from && st <= to
		svcOK := q.Service == "" || s.svc == q.Service
		if svcOK && inTime && (q.Operation == "" || s.name == q.Operation) &&
			s.dur >= q.MinDuration && s.dur <= maxDur && (s.err || !q.ErrorsOnly) {
			if old, ok := best[s.trace]; !ok || st > old {
				best[s.trace] = st
			}
		}
		if svcOK && inTime {
			for k, v := range q.Tags {
				if s.attrs[k] == v {
					if tags[s.trace] == nil {
						tags[s.trace] = map[string]bool{}
					}
					tags[s.trace][k] = true
				}
			}
		}
	}
	var hits []hit
	for n, st := range best {
		if len(tags[n]) == len(q.Tags) {
			hits = append(hits, hit{tid(n), st})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmpInt64(b.start, a.start); c != 0 {
			return c
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	var ids []pcommon.TraceID
	for i := 0; i < len(hits) && i < limit; i++ {
		ids = append(ids, hits[i].id)
	}
	return ids
}
