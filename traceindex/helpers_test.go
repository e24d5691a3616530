package traceindex

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	code := m.Run()
	if readIx != nil { // the read benchmarks' shared index
		readIx.Close()
		os.RemoveAll(readDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// openTest opens a fresh index in t.TempDir() and checks its consistency and
// closes it when the test ends.
func openTest(t testing.TB, o *Options) *Index {
	t.Helper()
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ix, err := Open(t.TempDir(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ix.Check(context.Background()); err != nil && err != ErrClosed {
			t.Errorf("consistency check: %v", err)
		}
		if err := ix.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ix
}

func tid(n int) pcommon.TraceID {
	var id pcommon.TraceID
	id[0] = 0xab
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

func sid(n int) pcommon.SpanID {
	var id pcommon.SpanID
	id[0] = 0xcd
	binary.BigEndian.PutUint32(id[4:], uint32(n))
	return id
}

// sp describes a test span; trace, span and parent are small numbers (parent 0
// means a root span).
type sp struct {
	trace, span, parent int
	svc, name           string
	kind                ptrace.SpanKind
	start               time.Time
	dur                 time.Duration
	err                 bool
	attrs               map[string]any
}

// build makes a request with one resource per service, in order of first use.
func build(spans ...sp) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range spans {
		ss, ok := bySvc[s.svc]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.svc)
			rs.Resource().Attributes().PutStr("host.name", "host-"+s.svc)
			scope := rs.ScopeSpans().AppendEmpty()
			scope.Scope().SetName("test")
			ss = scope.Spans()
			bySvc[s.svc] = ss
		}
		span := ss.AppendEmpty()
		span.SetTraceID(tid(s.trace))
		span.SetSpanID(sid(s.span))
		if s.parent != 0 {
			span.SetParentSpanID(sid(s.parent))
		}
		span.SetName(s.name)
		span.SetKind(s.kind)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.dur)))
		if s.err {
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		if err := span.Attributes().FromRaw(s.attrs); err != nil {
			panic(err)
		}
	}
	return td
}

func mustWrite(t testing.TB, ix *Index, td ptrace.Traces) {
	t.Helper()
	rej, reason, err := ix.WriteTraces(context.Background(), td)
	if err != nil {
		t.Fatal(err)
	}
	if rej != 0 {
		t.Fatalf("rejected %d: %s", rej, reason)
	}
}

// spanIDs lists the span ids of td with their service names.
func spanIDs(td ptrace.Traces) map[pcommon.SpanID]string {
	r := map[pcommon.SpanID]string{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := serviceName(rss.At(i).Resource())
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				r[spans.At(k).SpanID()] = svc
			}
		}
	}
	return r
}

// Index satisfies the write path's traces backend interface (declared in the
// store package, which this package must not import).
var _ interface {
	WriteTraces(ctx context.Context, td ptrace.Traces) (rejected int64, reason string, err error)
	Close() error
} = (*Index)(nil)
