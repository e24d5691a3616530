package logindex

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Bleve starts a process-wide pool of analysis workers when it is loaded;
	// they are not ours and never exit.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

// openTest opens a fresh Index in a temporary directory, closed (and checked for
// consistency) at the end of the test.
func openTest(t testing.TB, opts *Options) (*Index, string) {
	t.Helper()
	dir := t.TempDir()
	ix, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ix.checkConsistency(); err != nil {
			t.Error(err)
		}
		if err := ix.Close(); err != nil {
			t.Error(err)
		}
	})
	return ix, dir
}

// genRecord describes one generated record.
type genRecord struct {
	t        time.Time
	service  string
	sev      plog.SeverityNumber
	body     string
	attrs    map[string]any
	traceID  [16]byte
	noTime   bool
	observed time.Time
}

func makeLogs(recs []genRecord) plog.Logs {
	ld := plog.NewLogs()
	byService := map[string]plog.ScopeLogs{}
	for _, g := range recs {
		sl, ok := byService[g.service]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("service.name", g.service)
			rl.Resource().Attributes().PutStr("host.name", "host-"+g.service)
			sl = rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName("test.scope")
			byService[g.service] = sl
		}
		lr := sl.LogRecords().AppendEmpty()
		if !g.noTime {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(g.t))
		}
		if !g.observed.IsZero() {
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(g.observed))
		}
		lr.SetSeverityNumber(g.sev)
		lr.SetSeverityText(g.sev.String())
		lr.Body().SetStr(g.body)
		lr.SetTraceID(g.traceID)
		for k, v := range g.attrs {
			switch v := v.(type) {
			case string:
				lr.Attributes().PutStr(k, v)
			case int:
				lr.Attributes().PutInt(k, int64(v))
			case float64:
				lr.Attributes().PutDouble(k, v)
			case bool:
				lr.Attributes().PutBool(k, v)
			default:
				panic(fmt.Sprintf("attribute type %T", v))
			}
		}
	}
	return ld
}

func write(t testing.TB, ix *Index, recs []genRecord) {
	t.Helper()
	rej, reason, err := ix.WriteLogs(context.Background(), makeLogs(recs))
	if err != nil {
		t.Fatal(err)
	}
	if rej != 0 {
		t.Fatalf("rejected %d: %s", rej, reason)
	}
}

func flush(t testing.TB, ix *Index) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ix.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func count(t testing.TB, ix *Index, q string, start, end time.Time) uint64 {
	t.Helper()
	res, err := ix.Search(context.Background(), SearchRequest{Query: q, Start: start, End: end, Limit: 1})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	return res.Total
}
