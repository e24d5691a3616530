package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	lognoop "go.opentelemetry.io/otel/log/noop"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func newTestPlanner(t *testing.T, seed uint64) *planner {
	t.Helper()
	var svcs []*service
	for _, spec := range shopSpecs {
		s, err := newService(spec, tracenoop.NewTracerProvider(), lognoop.NewLoggerProvider(), metricnoop.NewMeterProvider())
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, s)
	}
	return newPlanner(rand.New(rand.NewPCG(seed, streamPlans)), svcs)
}

func walk(s *spanPlan, parent *spanPlan, f func(s, parent *spanPlan)) {
	f(s, parent)
	for _, c := range s.children {
		walk(c, s, f)
	}
}

func forEachLog(root *spanPlan, f func(body string)) {
	walk(root, nil, func(s, _ *spanPlan) {
		for _, l := range s.logs {
			f(l.body.Emit())
		}
	})
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func attrOf(s *spanPlan, key string) (attribute.Value, bool) {
	for _, kv := range s.attrs {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// dump writes a plan in a comparable form.
func dump(b *strings.Builder, s *spanPlan) {
	walk(s, nil, func(s, _ *spanPlan) {
		fmt.Fprintf(b, "%s|%s|%v|%d|%d|%v|%v|%d\n", s.svc.spec.name, s.name, s.kind, s.start, s.end, s.status, s.attrs, len(s.logs))
	})
}

func TestPlanIsDeterministic(t *testing.T) {
	a, b := newTestPlanner(t, 9), newTestPlanner(t, 9)
	var da, db strings.Builder
	for range 200 {
		dump(&da, a.planTrace())
		dump(&db, b.planTrace())
	}
	if da.String() != db.String() {
		t.Fatal("two planners with the same seed planned different traces")
	}
	c := newTestPlanner(t, 10)
	var dc strings.Builder
	for range 200 {
		dump(&dc, c.planTrace())
	}
	if da.String() == dc.String() {
		t.Fatal("seeds 9 and 10 planned the same traces")
	}
}

func TestPlanShape(t *testing.T) {
	p := newTestPlanner(t, 3)
	const n = 5000
	var durations []time.Duration
	var failedTraces, llmSpans, exceptions int
	services := map[string]bool{}
	for range n {
		root := p.planTrace()
		if root.svc.spec.name != "frontend" || root.kind != trace.SpanKindServer || root.start != 0 {
			t.Fatalf("root %s of %s starts at %v, want the frontend's server span at 0", root.name, root.svc.spec.name, root.start)
		}
		durations = append(durations, root.end)
		failed := false
		walk(root, nil, func(s, parent *spanPlan) {
			services[s.svc.spec.name] = true
			if s.end < s.start {
				t.Errorf("%s ends before it starts", s.name)
			}
			if parent != nil && (s.start < parent.start || s.end > parent.end) {
				t.Errorf("%s [%v, %v] is outside its parent %s [%v, %v]", s.name, s.start, s.end, parent.name, parent.start, parent.end)
			}
			if s.status == codes.Error {
				failed = true
			}
			for _, e := range s.events {
				if e.name == "exception" {
					exceptions++
					if e.at < s.start || e.at > s.end {
						t.Errorf("exception of %s outside the span", s.name)
					}
				}
			}
			for _, l := range s.logs {
				if l.at < s.start || l.at > s.end {
					t.Errorf("log of %s at %v outside the span [%v, %v]", s.name, l.at, s.start, s.end)
				}
			}
			switch s.kind {
			case trace.SpanKindServer:
				code, ok := attrOf(s, "http.response.status_code")
				if !ok {
					t.Fatalf("server span %s without status code", s.name)
				}
				if (code.AsInt64() >= 500) != (s.status == codes.Error) {
					t.Errorf("server span %s: status code %d with span status %v", s.name, code.AsInt64(), s.status)
				}
				if parent != nil && (parent.kind != trace.SpanKindClient || parent.svc == s.svc) {
					t.Errorf("server span %s of %s has parent %s of %s", s.name, s.svc.spec.name, parent.name, parent.svc.spec.name)
				}
			case trace.SpanKindClient:
				if _, ok := attrOf(s, "gen_ai.request.model"); ok {
					llmSpans++
					if s.svc.spec.name != "assistant" {
						t.Errorf("LLM span in %s", s.svc.spec.name)
					}
					if in, ok := attrOf(s, "gen_ai.usage.input_tokens"); s.status != codes.Error && (!ok || in.AsInt64() <= 0) {
						t.Errorf("successful LLM span %s without input tokens", s.name)
					}
				}
			}
		})
		if failed {
			failedTraces++
		}
	}
	if len(services) != len(shopSpecs) {
		t.Errorf("plans touch %v, want all %d services", services, len(shopSpecs))
	}
	slices.Sort(durations)
	p50, p99 := durations[n/2], durations[n*99/100]
	rate := float64(failedTraces) / n
	t.Logf("root p50 %v, p99 %v, max %v; %.1f%% traces with an error span; %d exceptions; %d LLM spans",
		p50, p99, durations[n-1], 100*rate, exceptions, llmSpans)
	if p99 < 5*p50 {
		t.Errorf("p99 %v is under 5× the median %v: no long tail", p99, p50)
	}
	if rate < 0.01 || rate > 0.15 {
		t.Errorf("%.1f%% of healthy traces fail, want 1–15%%", 100*rate)
	}
	if llmSpans == 0 || exceptions == 0 {
		t.Errorf("%d LLM spans and %d exceptions, want some of each", llmSpans, exceptions)
	}
}

// serverStats plans n traces under faults and returns, for service name, the
// median duration of its server spans, the share of them that failed, and all the
// log lines it wrote.
func serverStats(t *testing.T, faults []fault, name string, n int) (median time.Duration, failRate float64, logs []string) {
	p := newTestPlanner(t, 11)
	p.faults = faults
	var durs []time.Duration
	failed := 0
	for range n {
		walk(p.planTrace(), nil, func(s, _ *spanPlan) {
			if s.svc.spec.name != name {
				return
			}
			for _, l := range s.logs {
				logs = append(logs, l.body.Emit())
			}
			if s.kind != trace.SpanKindServer {
				return
			}
			durs = append(durs, s.end-s.start)
			if s.status == codes.Error {
				failed++
			}
		})
	}
	if len(durs) == 0 {
		t.Fatalf("no server span of %s in %d traces", name, n)
	}
	slices.Sort(durs)
	return durs[len(durs)/2], float64(failed) / float64(len(durs)), logs
}

func TestFaultsShowInPlans(t *testing.T) {
	const n = 3000
	baseMedian, baseFail, baseLogs := serverStats(t, nil, "catalog", n)

	spikeMedian, _, _ := serverStats(t, []fault{{kind: latencySpike, service: "catalog", factor: 10}}, "catalog", n)
	t.Logf("catalog median %v healthy, %v in a ×10 spike", baseMedian, spikeMedian)
	if spikeMedian < 5*baseMedian {
		t.Errorf("latency spike: catalog median %v, healthy %v, want ≥ 5×", spikeMedian, baseMedian)
	}

	_, burstFail, _ := serverStats(t, []fault{{kind: errorBurst, service: "catalog", factor: 0.5}}, "catalog", n)
	t.Logf("catalog failure rate %.3f healthy, %.3f in a 50%% burst", baseFail, burstFail)
	if baseFail > 0.05 || burstFail < 0.4 || burstFail > 0.65 {
		t.Errorf("error burst: catalog fails %.3f healthy and %.3f in a 50%% burst", baseFail, burstFail)
	}

	const msg = "ledger sync failed: lease lost: another leader was elected"
	_, _, novelLogs := serverStats(t, []fault{{kind: novelErrorLog, service: "catalog", message: msg}}, "catalog", n)
	if slices.Contains(baseLogs, msg) {
		t.Errorf("healthy catalog logs %q", msg)
	}
	if !slices.Contains(novelLogs, msg) {
		t.Errorf("new error log fault: catalog never logged %q", msg)
	}
}
