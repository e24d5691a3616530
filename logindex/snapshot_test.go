package logindex

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"outpost/internal/snapshot/snapshottest"
)

// A snapshot taken between two writes reopens with the first write's records,
// searchable, and none of the second's; the staging directory is gone.
func TestSnapshotReopens(t *testing.T) {
	ix, _ := openTest(t, nil)
	ctx := context.Background()
	write := func(body string, n int) {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "snap")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i := range n {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Duration(i) * time.Second)))
			lr.Body().SetStr(body)
		}
		if _, _, err := ix.WriteLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	write("before the snapshot", 50)
	dst := t.TempDir()
	err := ix.Snapshot(ctx, snapshottest.ToDir(dst))
	if err != nil {
		t.Fatal(err)
	}
	write("after the snapshot", 7)
	ents, _ := os.ReadDir(ix.dir)
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".tmp" {
			t.Errorf("staging left behind: %s", e.Name())
		}
	}
	cp, err := Open(dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Flush(ctx); err != nil { // index what the shards had not applied
		t.Fatal(err)
	}
	for q, want := range map[string]uint64{`"before the snapshot"`: 50, `"after the snapshot"`: 0} {
		res, err := cp.Search(ctx, SearchRequest{Query: q, Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Minute), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != want {
			t.Errorf("%s in the copy: %d, want %d", q, res.Total, want)
		}
	}
}
