package traceindex

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestTraceSplitAcrossRequestsAndPartitions(t *testing.T) {
	ix := openTest(t, &Options{PartitionDuration: time.Hour})
	ctx := context.Background()
	boundary := t0.Truncate(time.Hour) // 12:00, a partition boundary
	// Trace 1: root and children arrive in three requests minutes apart, the
	// last one after the root's partition ended.
	mustWrite(t, ix, build(
		sp{trace: 1, span: 2, parent: 1, svc: "api", name: "GET /x", kind: ptrace.SpanKindClient, start: boundary.Add(-3 * time.Minute), dur: time.Millisecond},
		sp{trace: 2, span: 1, svc: "other", name: "noise", start: boundary.Add(-3 * time.Minute), dur: time.Millisecond},
	))
	mustWrite(t, ix, build(
		sp{trace: 1, span: 1, svc: "api", name: "root", kind: ptrace.SpanKindServer, start: boundary.Add(-4 * time.Minute), dur: 5 * time.Minute},
	))
	mustWrite(t, ix, build(
		sp{trace: 1, span: 3, parent: 2, svc: "db", name: "SELECT", kind: ptrace.SpanKindServer, start: boundary.Add(30 * time.Second), dur: time.Second, err: true},
		sp{trace: 1, span: 4, parent: 1, svc: "api", name: "GET /y", kind: ptrace.SpanKindClient, start: boundary.Add(-time.Second), dur: 2 * time.Second},
	))
	parts, err := ix.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("got %d partitions, want 2", len(parts))
	}
	td, err := ix.Trace(ctx, tid(1))
	if err != nil {
		t.Fatal(err)
	}
	got := spanIDs(td)
	want := map[pcommon.SpanID]string{sid(1): "api", sid(2): "api", sid(3): "db", sid(4): "api"}
	if len(got) != len(want) || td.SpanCount() != 4 {
		t.Fatalf("got spans %v (%d), want %v", got, td.SpanCount(), want)
	}
	for id, svc := range want {
		if got[id] != svc {
			t.Errorf("span %v: service %q, want %q", id, got[id], svc)
		}
	}
	// Resource and scope survive.
	rs := td.ResourceSpans().At(0)
	if h, _ := rs.Resource().Attributes().Get("host.name"); !strings.HasPrefix(h.Str(), "host-") {
		t.Errorf("resource lost: %v", rs.Resource().Attributes().AsRaw())
	}
	if rs.ScopeSpans().At(0).Scope().Name() != "test" {
		t.Errorf("scope lost")
	}

	s, err := ix.Summary(ctx, tid(1))
	if err != nil {
		t.Fatal(err)
	}
	wantSum := TraceSummary{TraceID: tid(1), RootService: "api", RootOperation: "root", HasRoot: true,
		Start: boundary.Add(-4 * time.Minute), Duration: 5 * time.Minute, SpanCount: 4, ErrorCount: 1}
	if s != wantSum {
		t.Errorf("summary\n got %+v\nwant %+v", s, wantSum)
	}

	// A retried request stores nothing twice.
	mustWrite(t, ix, build(
		sp{trace: 1, span: 3, parent: 2, svc: "db", name: "SELECT", kind: ptrace.SpanKindServer, start: boundary.Add(30 * time.Second), dur: time.Second, err: true},
	))
	if td, _ := ix.Trace(ctx, tid(1)); td.SpanCount() != 4 {
		t.Errorf("after retry: %d spans, want 4", td.SpanCount())
	}
	if _, err := ix.Trace(ctx, tid(99)); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing trace: err %v, want ErrNotFound", err)
	}

	// Everything survives a reopen.
	dir := filepath.Dir(parts[0].Path)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix2, err := Open(dir, &Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	if td, err := ix2.Trace(ctx, tid(1)); err != nil || td.SpanCount() != 4 {
		t.Fatalf("after reopen: %d spans, err %v", td.SpanCount(), err)
	}
	// New names after reopen get fresh ids, old names keep theirs.
	mustWrite(t, ix2, build(
		sp{trace: 5, span: 1, svc: "api", name: "root", start: boundary.Add(time.Minute), dur: time.Millisecond},
		sp{trace: 5, span: 2, parent: 1, svc: "cache", name: "GET", start: boundary.Add(time.Minute), dur: time.Millisecond},
	))
	svcs, err := ix2.Services(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svcs, []string{"api", "cache", "db", "other"}) {
		t.Errorf("services %v", svcs)
	}
	if err := ix2.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestServicesAndOperations(t *testing.T) {
	ix := openTest(t, nil)
	ctx := context.Background()
	at := t0.Add(-time.Hour)
	mustWrite(t, ix, build(
		sp{trace: 1, span: 1, svc: "web", name: "GET /", kind: ptrace.SpanKindServer, start: at, dur: time.Millisecond},
		sp{trace: 1, span: 2, parent: 1, svc: "web", name: "SELECT", kind: ptrace.SpanKindClient, start: at, dur: time.Millisecond},
		sp{trace: 1, span: 3, parent: 1, svc: "web", name: "render", kind: ptrace.SpanKindInternal, start: at, dur: time.Millisecond},
		sp{trace: 1, span: 4, parent: 2, svc: "db", name: "SELECT", kind: ptrace.SpanKindServer, start: at, dur: time.Millisecond},
	))
	svcs, err := ix.Services(ctx, time.Time{}, time.Time{})
	if err != nil || !slices.Equal(svcs, []string{"db", "web"}) {
		t.Fatalf("services %v, err %v", svcs, err)
	}
	ops, err := ix.Operations(ctx, "web")
	want := []Operation{{"GET /", ptrace.SpanKindServer}, {"SELECT", ptrace.SpanKindClient}, {"render", ptrace.SpanKindInternal}}
	if err != nil || !slices.Equal(ops, want) {
		t.Fatalf("operations %v, err %v", ops, err)
	}
	ops, err = ix.Operations(ctx, "web", ptrace.SpanKindServer, ptrace.SpanKindInternal)
	want = []Operation{{"GET /", ptrace.SpanKindServer}, {"render", ptrace.SpanKindInternal}}
	if err != nil || !slices.Equal(ops, want) {
		t.Fatalf("operations by kind %v, err %v", ops, err)
	}
	if ops, err := ix.Operations(ctx, "nope"); err != nil || len(ops) != 0 {
		t.Fatalf("unknown service: %v, %v", ops, err)
	}
	if svcs, err := ix.Services(ctx, t0.Add(24*time.Hour), t0.Add(48*time.Hour)); err != nil || len(svcs) != 0 {
		t.Fatalf("services in an empty window: %v, %v", svcs, err)
	}
}

func TestSearch(t *testing.T) {
	ix := openTest(t, &Options{MaxBlockSpans: 3}) // small blocks: postings span many blocks
	ctx := context.Background()
	at := t0.Add(-2 * time.Hour)
	ms := time.Millisecond
	// Eight traces through frontend -> checkout -> db, with varied durations,
	// errors, attributes and start times (trace n starts n minutes after at).
	var spans []sp
	for n := 1; n <= 8; n++ {
		st := at.Add(time.Duration(n) * time.Minute)
		route := "/cart"
		if n%2 == 0 {
			route = "/pay"
		}
		status := 200
		if n == 3 || n == 6 {
			status = 500
		}
		spans = append(spans,
			sp{trace: n, span: 1, svc: "frontend", name: "GET " + route, kind: ptrace.SpanKindServer, start: st, dur: time.Duration(10*n) * ms,
				attrs: map[string]any{"http.route": route, "http.response.status_code": status, "user.tier": []string{"free", "gold"}[n%2]}},
			sp{trace: n, span: 2, parent: 1, svc: "checkout", name: "Checkout", kind: ptrace.SpanKindServer, start: st.Add(ms), dur: time.Duration(5*n) * ms, err: status == 500,
				attrs: map[string]any{"rpc.method": "Checkout"}},
			sp{trace: n, span: 3, parent: 2, svc: "db", name: "SELECT orders", kind: ptrace.SpanKindServer, start: st.Add(2 * ms), dur: time.Duration(n) * ms,
				attrs: map[string]any{"db.system": []string{"postgresql", "mysql"}[n%2]}},
		)
	}
	// Write in two requests, interleaved, so traces are split across blocks.
	var a, b []sp
	for i, s := range spans {
		if i%2 == 0 {
			a = append(a, s)
		} else {
			b = append(b, s)
		}
	}
	mustWrite(t, ix, build(a...))
	mustWrite(t, ix, build(b...))

	min := func(n int) time.Time { return at.Add(time.Duration(n) * time.Minute) }
	cases := []struct {
		name string
		q    Query
		want []int // trace numbers, newest first
	}{
		{"service", Query{Service: "frontend"}, []int{8, 7, 6, 5, 4, 3, 2, 1}},
		{"limit", Query{Service: "frontend", Limit: 3}, []int{8, 7, 6}},
		{"unknown service", Query{Service: "nope"}, nil},
		{"operation", Query{Service: "frontend", Operation: "GET /pay"}, []int{8, 6, 4, 2}},
		{"operation of other service", Query{Service: "db", Operation: "GET /pay"}, nil},
		{"min duration", Query{Service: "frontend", MinDuration: 50 * ms}, []int{8, 7, 6, 5}},
		{"max duration", Query{Service: "frontend", MaxDuration: 30 * ms}, []int{3, 2, 1}},
		{"duration range on db", Query{Service: "db", MinDuration: 3 * ms, MaxDuration: 5 * ms}, []int{5, 4, 3}},
		{"operation and duration", Query{Service: "frontend", Operation: "GET /cart", MinDuration: 30 * ms}, []int{7, 5, 3}},
		{"time range", Query{Service: "checkout", Start: min(3), End: min(5)}, []int{4, 3}},
		{"time range inclusive", Query{Service: "frontend", Start: min(3), End: min(5)}, []int{5, 4, 3}},
		{"errors only", Query{Service: "checkout", ErrorsOnly: true}, []int{6, 3}},
		{"errors only elsewhere", Query{Service: "frontend", ErrorsOnly: true}, nil},
		{"errors only with operation", Query{Service: "checkout", Operation: "Checkout", ErrorsOnly: true, MinDuration: 20 * ms}, []int{6}},
		{"indexed tag", Query{Service: "frontend", Tags: map[string]string{"http.route": "/pay"}}, []int{8, 6, 4, 2}},
		{"indexed int tag", Query{Service: "frontend", Tags: map[string]string{"http.response.status_code": "500"}}, []int{6, 3}},
		{"two tags", Query{Service: "frontend", Tags: map[string]string{"http.route": "/pay", "http.response.status_code": "500"}}, []int{6}},
		{"tag on other service", Query{Service: "frontend", Tags: map[string]string{"db.system": "mysql"}}, nil},
		{"tag any service", Query{Tags: map[string]string{"db.system": "mysql"}}, []int{7, 5, 3, 1}},
		{"resource tag", Query{Service: "db", Tags: map[string]string{"host.name": "host-db"}}, []int{8, 7, 6, 5, 4, 3, 2, 1}},
		{"unindexed tag", Query{Service: "frontend", Tags: map[string]string{"user.tier": "gold"}}, []int{7, 5, 3, 1}},
		{"unindexed and indexed tag", Query{Service: "frontend", Tags: map[string]string{"user.tier": "free", "http.response.status_code": "500"}}, []int{6}},
		{"tag value absent", Query{Service: "frontend", Tags: map[string]string{"http.route": "/nope"}}, nil},
		{"everything", Query{Service: "frontend", Operation: "GET /pay", Tags: map[string]string{"http.route": "/pay"}, MinDuration: 40 * ms, Start: min(4), End: min(7)}, []int{6, 4}},
		{"no service", Query{MinDuration: 75 * ms}, []int{8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ix.Search(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, r := range res {
				got = append(got, int(r.TraceID[15]))
				if r.SpanCount != 3 || r.RootService != "frontend" || !r.HasRoot {
					t.Errorf("summary %+v", r)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got traces %v, want %v", got, tc.want)
			}
			whole, err := ix.SearchTraces(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(whole) != len(tc.want) {
				t.Fatalf("SearchTraces: %d traces, want %d", len(whole), len(tc.want))
			}
			for i, td := range whole {
				if td.SpanCount() != 3 || td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID() != res[i].TraceID {
					t.Errorf("SearchTraces result %d: %d spans", i, td.SpanCount())
				}
			}
		})
	}
}

func TestRejects(t *testing.T) {
	ix := openTest(t, &Options{MaxAttributes: 20, MaxAttributeBytes: 100, MaxSpanBytes: 1000})
	ctx := context.Background()
	at := t0.Add(-time.Minute)
	good := sp{trace: 1, span: 1, svc: "s", name: "ok", start: at, dur: time.Millisecond}
	many := map[string]any{}
	for i := 0; i < 21; i++ {
		many[string(rune('a'+i))] = i
	}
	big := map[string]any{}
	for i := 0; i < 15; i++ {
		big[string(rune('a'+i))] = strings.Repeat("x", 90)
	}
	cases := []struct {
		name   string
		mutate func(s ptrace.Span)
		reason string
	}{
		{"empty trace id", func(s ptrace.Span) { s.SetTraceID(pcommon.TraceID{}) }, "empty or all-zero trace id"},
		{"empty span id", func(s ptrace.Span) { s.SetSpanID(pcommon.SpanID{}) }, "empty or all-zero span id"},
		{"end before start", func(s ptrace.Span) { s.SetEndTimestamp(s.StartTimestamp() - 1) }, "end before start"},
		{"zero start", func(s ptrace.Span) { s.SetStartTimestamp(0) }, "start time too far in the past"},
		{"decades ahead", func(s ptrace.Span) {
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.AddDate(30, 0, 0)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.AddDate(30, 0, 1)))
		}, "start time too far in the future"},
		{"too many attributes", func(s ptrace.Span) { s.Attributes().FromRaw(many) }, "too many attributes"},
		{"long value", func(s ptrace.Span) { s.Attributes().PutStr("k", strings.Repeat("v", 101)) }, "attribute key or value too long"},
		{"long key", func(s ptrace.Span) { s.Attributes().PutStr(strings.Repeat("k", 101), "v") }, "attribute key or value too long"},
		{"long nested value", func(s ptrace.Span) {
			s.Attributes().PutEmptySlice("k").AppendEmpty().SetStr(strings.Repeat("v", 101))
		}, "attribute key or value too long"},
		{"too large", func(s ptrace.Span) { s.Attributes().FromRaw(big) }, "span too large"},
		{"too many event attributes", func(s ptrace.Span) {
			for i := 0; i < 25; i++ {
				s.Events().AppendEmpty().SetName("e")
			}
		}, "too many attributes"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			td := build(good, sp{trace: 100 + i, span: 2, svc: "s", name: "bad", start: at, dur: time.Millisecond})
			good.trace++
			tc.mutate(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1))
			rej, reason, err := ix.WriteTraces(ctx, td)
			if err != nil {
				t.Fatal(err)
			}
			if rej != 1 || !strings.Contains(reason, tc.reason) {
				t.Fatalf("rejected %d, reason %q; want 1, %q", rej, reason, tc.reason)
			}
			if _, err := ix.Trace(ctx, tid(good.trace-1)); err != nil {
				t.Fatalf("good span of the request: %v", err)
			}
		})
	}
	t.Run("resource attributes", func(t *testing.T) {
		td := build(sp{trace: 200, span: 1, svc: "s", name: "x", start: at, dur: time.Millisecond},
			sp{trace: 200, span: 2, svc: "s", name: "y", start: at, dur: time.Millisecond},
			sp{trace: 201, span: 1, svc: "t", name: "x", start: at, dur: time.Millisecond})
		td.ResourceSpans().At(0).Resource().Attributes().FromRaw(many)
		rej, reason, err := ix.WriteTraces(ctx, td)
		if err != nil || rej != 2 || !strings.Contains(reason, "resource has too many attributes") {
			t.Fatalf("rejected %d, reason %q, err %v", rej, reason, err)
		}
		if _, err := ix.Trace(ctx, tid(201)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("reason counts", func(t *testing.T) {
		td := build(sp{trace: 300, span: 1, svc: "s", name: "x", start: at, dur: time.Millisecond},
			sp{trace: 0, span: 2, svc: "s", name: "y", start: at, dur: time.Millisecond},
			sp{trace: 0, span: 3, svc: "s", name: "y", start: at, dur: time.Millisecond},
			sp{trace: 300, span: 0, svc: "s", name: "z", start: at, dur: time.Millisecond})
		for i := 1; i < 3; i++ {
			td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i).SetTraceID(pcommon.TraceID{})
		}
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(3).SetSpanID(pcommon.SpanID{})
		rej, reason, err := ix.WriteTraces(ctx, td)
		want := "rejected 3 spans: empty or all-zero trace id (2), empty or all-zero span id (1)"
		if err != nil || rej != 3 || reason != want {
			t.Fatalf("rejected %d, reason %q, err %v; want %q", rej, reason, err, want)
		}
	})
	t.Run("all bad", func(t *testing.T) {
		td := build(sp{trace: 400, span: 1, svc: "s", name: "x", start: at, dur: -time.Second})
		rej, _, err := ix.WriteTraces(ctx, td)
		if err != nil || rej != 1 {
			t.Fatalf("rejected %d, err %v", rej, err)
		}
	})
	t.Run("empty request", func(t *testing.T) {
		rej, reason, err := ix.WriteTraces(ctx, ptrace.NewTraces())
		if err != nil || rej != 0 || reason != "" {
			t.Fatalf("rejected %d, reason %q, err %v", rej, reason, err)
		}
	})
}

func TestRetention(t *testing.T) {
	now := t0
	clock := make(chan time.Time, 1)
	clock <- now
	getNow := func() time.Time { v := <-clock; clock <- v; return v }
	setNow := func(v time.Time) { <-clock; clock <- v }
	dir := t.TempDir()
	opts := &Options{PartitionDuration: time.Hour, MaxPast: 100 * time.Hour, Now: getNow}
	ix, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for h := 0; h < 5; h++ {
		mustWrite(t, ix, build(sp{trace: h + 1, span: 1, svc: "s", name: "x", start: now.Add(-time.Duration(h)*time.Hour - time.Minute), dur: time.Millisecond}))
	}
	if n := countFiles(t, dir); n != 5 {
		t.Fatalf("%d files, want 5", n)
	}
	// Everything that ended by 10:00 goes: the partitions of 07:00, 08:00, 09:00.
	n, err := ix.DropBefore(now.Add(-2 * time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("dropped %d, err %v", n, err)
	}
	if n := countFiles(t, dir); n != 2 {
		t.Fatalf("%d files after drop, want 2", n)
	}
	for h := 0; h < 5; h++ {
		_, err := ix.Trace(context.Background(), tid(h+1))
		if gone := errors.Is(err, ErrNotFound); gone != (h >= 2) {
			t.Errorf("trace of hour -%d: err %v", h, err)
		}
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	// Options.Retention drops at open and in the background.
	setNow(now.Add(2 * time.Hour))
	ix, err = Open(dir, &Options{PartitionDuration: time.Hour, Retention: 3 * time.Hour, RetentionInterval: 10 * time.Millisecond, Now: getNow})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if n := countFiles(t, dir); n != 1 {
		t.Fatalf("%d files after open with retention, want 1", n)
	}
	// Spans older than retention are refused rather than stored in a doomed file.
	rej, reason, err := ix.WriteTraces(context.Background(), build(sp{trace: 9, span: 1, svc: "s", name: "x", start: now.Add(-2 * time.Hour), dur: 1}))
	if err != nil || rej != 1 || !strings.Contains(reason, "outside retained") {
		t.Fatalf("old span: rejected %d %q, err %v", rej, reason, err)
	}
	setNow(now.Add(4 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for countFiles(t, dir) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("background retention left %d files", countFiles(t, dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.bolt"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestBackup(t *testing.T) {
	ix := openTest(t, nil)
	mustWrite(t, ix, build(sp{trace: 1, span: 1, svc: "s", name: "x", start: t0.Add(-time.Minute), dur: 1}))
	dst := t.TempDir()
	if err := ix.Backup(dst); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(dst, &Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if td, err := cp.Trace(context.Background(), tid(1)); err != nil || td.SpanCount() != 1 {
		t.Fatalf("backup: %d spans, err %v", td.SpanCount(), err)
	}
}

func TestOpenRefusesNewerFormat(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, &Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ix, build(sp{trace: 1, span: 1, svc: "s", name: "x", start: t0.Add(-time.Minute), dur: 1}))
	parts, _ := ix.Partitions()
	ix.Close()
	p, err := openPartition(parts[0].Path, &Options{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaVersion, u32(nil, formatVersion+1)) })
	p.db.Close()
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("err %v, want a newer-format error", err)
	}
	if _, err := os.Stat(parts[0].Path); err != nil {
		t.Fatal(err)
	}
}

func TestParseTraceID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0271afbd8266286038353f4e38334ffb", "0271afbd8266286038353f4e38334ffb", true},
		{"38353f4e38334ffb", "000000000000000038353f4e38334ffb", true},
		{"abc", "00000000000000000000000000000abc", true},
		{"", "", false},
		{"00000000", "", false},
		{"xyz", "", false},
		{"0271afbd8266286038353f4e38334ffb0", "", false},
	} {
		id, err := ParseTraceID(tc.in)
		if (err == nil) != tc.ok || (tc.ok && id.String() != tc.want) {
			t.Errorf("ParseTraceID(%q) = %v, %v", tc.in, id, err)
		}
	}
}

func TestClosed(t *testing.T) {
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := ix.WriteTraces(context.Background(), build(sp{trace: 1, span: 1, svc: "s", start: time.Now(), dur: 1})); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := ix.Search(context.Background(), Query{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("search after close: %v", err)
	}
}

func TestChangingPartitionDuration(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return t0 }
	ix, err := Open(dir, &Options{PartitionDuration: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ix, build(sp{trace: 1, span: 1, svc: "s", name: "x", start: t0.Add(-90 * time.Minute), dur: 1})) // 10:30
	ix.Close()
	// Days now: the day's partition must not overlap the hour kept from before.
	ix, err = Open(dir, &Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ix, build(
		sp{trace: 2, span: 1, svc: "s", name: "x", start: t0.Add(-150 * time.Minute), dur: 1}, // 09:30
		sp{trace: 3, span: 1, svc: "s", name: "x", start: t0.Add(-80 * time.Minute), dur: 1},  // 10:40
		sp{trace: 4, span: 1, svc: "s", name: "x", start: t0.Add(-30 * time.Minute), dur: 1},  // 11:30
	))
	parts, err := ix.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		got = append(got, p.Start.Format("15:04")+"-"+p.End.Format("15:04"))
	}
	want := []string{"00:00-10:00", "10:00-11:00", "11:00-00:00"}
	if !slices.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
	for n := 1; n <= 4; n++ {
		if _, err := ix.Trace(context.Background(), tid(n)); err != nil {
			t.Errorf("trace %d: %v", n, err)
		}
	}
	if err := ix.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if ix, err = Open(dir, nil); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	ix.Close()
}
