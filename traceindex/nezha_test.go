package traceindex

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The TrainTicket traces of the Nezha dataset (ESEC/FSE 2023): OpenTelemetry spans
// of 27 microservices flattened to CSV, one file per minute.
const nezhaDir = "../../shared/datasets/traces/nezha-trainticket-2023-01-30/rca_data/2023-01-30/trace"

type nezhaSpan struct {
	trace      pcommon.TraceID
	span       pcommon.SpanID
	parent     pcommon.SpanID // empty for "root"
	pod, svc   string
	name       string
	start, end int64
}

func nezhaFiles(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(nezhaDir, "*_trace.csv"))
	if len(files) == 0 {
		if os.Getenv("OUTPOST_E2E") == "1" {
			t.Fatalf("Nezha TrainTicket traces not found in %s", nezhaDir)
		}
		t.Skipf("Nezha TrainTicket traces not found in %s; set OUTPOST_E2E=1 to make this fatal", nezhaDir)
	}
	sort.Strings(files)
	return files
}

// readNezha reads one CSV file: TraceID,SpanID,ParentID,PodName,OperationName,
// StartTimeUnixNano,EndTimeUnixNano,Duration.
func readNezha(path string) ([]nezhaSpan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 8
	var spans []nezhaSpan
	for line := 0; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return spans, nil
		}
		if err != nil {
			return nil, err
		}
		if line == 0 {
			continue
		}
		var s nezhaSpan
		if err := unhex(s.trace[:], rec[0]); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line+1, err)
		}
		if err := unhex(s.span[:], rec[1]); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line+1, err)
		}
		if rec[2] != "root" {
			if err := unhex(s.parent[:], rec[2]); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line+1, err)
			}
		}
		s.pod, s.name = rec[3], rec[4]
		// Pod names are <deployment>-<replicaset hash>-<suffix>.
		parts := strings.Split(s.pod, "-")
		s.svc = strings.Join(parts[:len(parts)-2], "-")
		if s.start, err = strconv.ParseInt(rec[5], 10, 64); err != nil {
			return nil, err
		}
		if s.end, err = strconv.ParseInt(rec[6], 10, 64); err != nil {
			return nil, err
		}
		spans = append(spans, s)
	}
}

func unhex(dst []byte, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("bad id %q", s)
	}
	copy(dst, b)
	return nil
}

// nezhaRequest converts spans to one OTLP request, one resource per pod.
func nezhaRequest(spans []nezhaSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	byPod := map[string]ptrace.SpanSlice{}
	for _, s := range spans {
		ss, ok := byPod[s.pod]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.svc)
			rs.Resource().Attributes().PutStr("k8s.pod.name", s.pod)
			rs.Resource().Attributes().PutStr("k8s.namespace.name", "default")
			scope := rs.ScopeSpans().AppendEmpty()
			scope.Scope().SetName("io.opentelemetry.spring-webmvc-3.1")
			ss = scope.Spans()
			byPod[s.pod] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetTraceID(s.trace)
		sp.SetSpanID(s.span)
		sp.SetParentSpanID(s.parent)
		sp.SetName(s.name)
		sp.SetStartTimestamp(pcommon.Timestamp(s.start))
		sp.SetEndTimestamp(pcommon.Timestamp(s.end))
	}
	return td
}

func TestNezhaTrainTicket(t *testing.T) {
	files := nezhaFiles(t)
	var all []nezhaSpan
	for _, f := range files {
		spans, err := readNezha(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, spans...)
	}
	var last int64
	for _, s := range all {
		last = max(last, s.start)
	}
	// Hourly partitions, so traces cross partition boundaries.
	ix := openTest(t, &Options{
		PartitionDuration: time.Hour,
		Now:               func() time.Time { return time.Unix(0, last).Add(time.Hour) },
	})
	ctx := context.Background()

	// Ingest file by file in requests of at most 512 spans, as a batching
	// exporter would; a file's traces are split across requests, and some rows
	// occur in two files (the same span delivered twice).
	const batch = 512
	for _, f := range files {
		spans, err := readNezha(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(spans) > 0 {
			n := min(batch, len(spans))
			mustWrite(t, ix, nezhaRequest(spans[:n]))
			spans = spans[n:]
		}
	}

	// What the source says, counting each (trace, span) once.
	type key struct {
		t pcommon.TraceID
		s pcommon.SpanID
	}
	uniq := map[key]nezhaSpan{}
	for _, s := range all {
		uniq[key{s.trace, s.span}] = s
	}
	perTrace := map[pcommon.TraceID]int{}
	perService := map[string]int{}
	tracesOfService := map[string]map[pcommon.TraceID]bool{}
	edges := map[[2]string]uint64{}
	for _, s := range uniq {
		perTrace[s.trace]++
		perService[s.svc]++
		if tracesOfService[s.svc] == nil {
			tracesOfService[s.svc] = map[pcommon.TraceID]bool{}
		}
		tracesOfService[s.svc][s.trace] = true
		if p, ok := uniq[key{s.trace, s.parent}]; ok && !s.parent.IsEmpty() && p.svc != s.svc {
			edges[[2]string{p.svc, s.svc}]++
		}
	}
	t.Logf("source: %d rows, %d distinct spans, %d traces, %d services, %d edges",
		len(all), len(uniq), len(perTrace), len(perService), len(edges))

	gotService := map[string]int{}
	for id, want := range perTrace {
		td, err := ix.Trace(ctx, id)
		if err != nil {
			t.Fatalf("trace %v: %v", id, err)
		}
		if td.SpanCount() != want {
			t.Errorf("trace %v: %d spans, want %d", id, td.SpanCount(), want)
		}
		for _, svc := range spanIDs(td) {
			gotService[svc]++
		}
		sum, err := ix.Summary(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if sum.SpanCount != want {
			t.Errorf("trace %v: summary says %d spans, want %d", id, sum.SpanCount, want)
		}
	}
	for svc, want := range perService {
		if gotService[svc] != want {
			t.Errorf("service %s: %d spans, want %d", svc, gotService[svc], want)
		}
	}
	if len(gotService) != len(perService) {
		t.Errorf("%d services, want %d", len(gotService), len(perService))
	}

	// Services and search by service find exactly the source's traces.
	svcs, err := ix.Services(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != len(perService) {
		t.Errorf("Services lists %d, want %d", len(svcs), len(perService))
	}
	for _, svc := range svcs {
		res, err := ix.Search(ctx, Query{Service: svc, Limit: MaxSearchLimit})
		if err != nil {
			t.Fatal(err)
		}
		want := tracesOfService[svc]
		if len(res) != len(want) {
			t.Errorf("search %s: %d traces, want %d", svc, len(res), len(want))
		}
		for _, r := range res {
			if !want[r.TraceID] {
				t.Errorf("search %s: unexpected trace %v", svc, r.TraceID)
			}
		}
	}

	deps, err := ix.Dependencies(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if deps.Truncated {
		t.Error("dependencies truncated")
	}
	got := map[[2]string]uint64{}
	for _, d := range deps.Edges {
		got[[2]string{d.Parent, d.Child}] = d.CallCount
	}
	if len(got) != len(edges) {
		t.Errorf("%d dependency edges, want %d", len(got), len(edges))
	}
	for e, n := range edges {
		if got[e] != n {
			t.Errorf("edge %s -> %s: %d calls, want %d", e[0], e[1], got[e], n)
		}
	}
	parts, _ := ix.Partitions()
	var size, fileSize int64
	for _, p := range parts {
		size += p.Bytes
		fileSize += p.FileBytes
	}
	t.Logf("%d partitions, %d bytes in use (%.1f bytes/span), files %d bytes", len(parts), size, float64(size)/float64(len(uniq)), fileSize)
}
