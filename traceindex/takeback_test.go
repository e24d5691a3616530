package traceindex

import (
	"context"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A request spanning two partitions whose second commit fails stores nothing:
// the part committed to the first partition is taken back. A retry then stores
// it whole.
func TestFailedSecondPartitionTakesBackTheFirst(t *testing.T) {
	ix := openTest(t, &Options{PartitionDuration: time.Hour})
	ctx := context.Background()
	boundary := t0.Truncate(time.Hour)
	// Both partitions exist and hold a span of another trace.
	mustWrite(t, ix, build(
		sp{trace: 9, span: 1, svc: "other", name: "before", start: boundary.Add(-time.Minute), dur: time.Millisecond},
		sp{trace: 9, span: 2, parent: 1, svc: "other", name: "after", start: boundary.Add(time.Minute), dur: time.Millisecond},
	))
	second := ix.findPart(boundary.Add(time.Minute).UnixNano())
	if second == nil || second == ix.findPart(boundary.Add(-time.Minute).UnixNano()) {
		t.Fatal("want two partitions")
	}
	reopen := func(ro bool) {
		t.Helper()
		if err := second.db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(second.path, 0o644, &bolt.Options{ReadOnly: ro, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		second.db = db
	}
	reopen(true) // its commits now fail

	req := build(
		sp{trace: 1, span: 1, svc: "api", name: "root", kind: ptrace.SpanKindServer, start: boundary.Add(-2 * time.Minute), dur: 3 * time.Minute, attrs: map[string]any{"http.route": "/x"}},
		sp{trace: 1, span: 2, parent: 1, svc: "api", name: "child", start: boundary.Add(-time.Minute), dur: time.Second, err: true},
		sp{trace: 1, span: 3, parent: 1, svc: "db", name: "late", start: boundary.Add(30 * time.Second), dur: time.Second},
	)
	_, _, err := ix.WriteTraces(ctx, req)
	if !errors.Is(err, bolt.ErrDatabaseReadOnly) {
		t.Fatalf("write with a failing second partition: %v", err)
	}
	reopen(false)
	if _, err := ix.Trace(ctx, tid(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the failed request, its trace: %v, want ErrNotFound", err)
	}
	res, err := ix.Search(ctx, Query{Service: "api", Start: boundary.Add(-time.Hour), End: boundary.Add(time.Hour), Limit: 10})
	if err != nil || len(res) != 0 {
		t.Fatalf("search finds %d traces of the failed request (%v)", len(res), err)
	}
	if td, _ := ix.Trace(ctx, tid(9)); td.SpanCount() != 2 {
		t.Fatalf("the other trace lost spans: %d", td.SpanCount())
	}
	mustWrite(t, ix, req)
	if td, _ := ix.Trace(ctx, tid(1)); td.SpanCount() != 3 {
		t.Fatalf("after the retry: %d spans, want 3", td.SpanCount())
	}
}
