package traceindex

import (
	"context"
	"io"
	"testing"
	"time"

	"outpost/internal/snapshot/snapshottest"
)

// A snapshot taken between two writes reopens with the first write only.
func TestSnapshotReopens(t *testing.T) {
	ix := openTest(t, &Options{PartitionDuration: time.Hour})
	ctx := context.Background()
	boundary := t0.Truncate(time.Hour)
	mustWrite(t, ix, build(
		sp{trace: 1, span: 1, svc: "api", name: "root", start: boundary.Add(-time.Minute), dur: 3 * time.Minute},
		sp{trace: 1, span: 2, parent: 1, svc: "db", name: "q", start: boundary.Add(time.Minute), dur: time.Second},
	))
	dst := t.TempDir()
	n := 0
	toDir := snapshottest.ToDir(dst)
	err := ix.Snapshot(ctx, func(name string, size int64, write func(io.Writer) error) error {
		n++
		return toDir(name, size, write)
	})
	if err != nil || n != 2 {
		t.Fatalf("snapshot: %d files, %v", n, err)
	}
	mustWrite(t, ix, build(sp{trace: 2, span: 1, svc: "api", name: "later", start: boundary.Add(-time.Minute), dur: time.Second}))

	cp, err := Open(dst, &Options{PartitionDuration: time.Hour, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Check(ctx); err != nil {
		t.Fatalf("the copy is inconsistent: %v", err)
	}
	if td, err := cp.Trace(ctx, tid(1)); err != nil || td.SpanCount() != 2 {
		t.Fatalf("trace 1 in the copy: %v", err)
	}
	if _, err := cp.Trace(ctx, tid(2)); err == nil {
		t.Fatal("the copy holds a trace written after the snapshot")
	}
}

// Releasing a partition's mapped pages keeps every span readable.
func TestReleaseMappedKeepsData(t *testing.T) {
	ix := openTest(t, nil)
	mustWrite(t, ix, build(sp{trace: 1, span: 1, svc: "api", name: "root", start: t0, dur: time.Second}))
	for _, p := range ix.parts {
		releaseMapped(p.db)
	}
	if td, err := ix.Trace(context.Background(), tid(1)); err != nil || td.SpanCount() != 1 {
		t.Fatalf("after releasing the mapped pages: %v", err)
	}
	mustWrite(t, ix, build(sp{trace: 1, span: 2, parent: 1, svc: "db", name: "q", start: t0, dur: time.Millisecond}))
	if td, err := ix.Trace(context.Background(), tid(1)); err != nil || td.SpanCount() != 2 {
		t.Fatalf("writing after the release: %v", err)
	}
}
