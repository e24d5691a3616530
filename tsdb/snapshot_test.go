package tsdb

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/internal/snapshot/snapshottest"
)

// A snapshot taken with data in partitions and in the head reopens with every
// sample written before it and none written after.
func TestSnapshotReopens(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	ls := labels.FromStrings("__name__", "up", "job", "api")
	write := func(from, to int64) {
		app := db.Appender(ctx)
		for ts := from; ts < to; ts += 15_000 {
			if _, err := app.Append(0, ls, ts, float64(ts)); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 3*3600_000) // three hours, then flushed into partitions
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	write(3*3600_000, 4*3600_000) // an hour in the head and the WAL
	dst := t.TempDir()
	names := map[string]bool{}
	toDir := snapshottest.ToDir(dst)
	err := db.Snapshot(ctx, func(name string, size int64, w func(io.Writer) error) error {
		names[filepath.Dir(name)] = true
		return toDir(name, size, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["wal"] || !names["partitions"] {
		t.Fatalf("snapshot dirs %v, want wal and partitions", names)
	}
	write(4*3600_000, 5*3600_000) // after the snapshot

	cp, err := Open(dst, &Options{MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	got := readAll(t, cp)[ls.String()]
	if len(got) != 4*240 || got[0].t != 0 || got[len(got)-1].t != 4*3600_000-15_000 {
		t.Fatalf("the copy holds %d samples (%v … %v), want the 960 written before the snapshot", len(got), got[0], got[len(got)-1])
	}
}
