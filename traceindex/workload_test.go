package traceindex

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// workload makes microservice call trees like the project's load generator: 8
// services (frontend -> api-gateway -> auth, catalog, cart, checkout -> payment,
// inventory, plus postgres and redis client spans), CLIENT+SERVER pairs,
// log-normal latencies, ~1% errors, ~15 spans per trace, HTTP and database
// semantic-convention attributes.
type workload struct {
	r     *rand.Rand
	hosts int
	n     int
}

var wlServices = []string{"frontend", "api-gateway", "auth", "catalog", "cart", "checkout", "payment", "inventory"}

var wlCalls = [][]int{{1}, {2, 3, 4, 5}, {-2}, {7, -1}, {7, -2}, {4, 6, 7}, {-1}, {-1, -2}}

var wlRoutes = [][]string{
	{"GET /", "GET /product/{id}", "POST /cart", "POST /checkout"},
	{"GET /api/products", "GET /api/products/{id}", "POST /api/cart", "POST /api/checkout"},
	{"POST /auth/verify"}, {"GET /catalog/items", "GET /catalog/items/{id}"}, {"GET /cart", "POST /cart/items"},
	{"POST /checkout"}, {"POST /payments/charge"}, {"GET /inventory/{sku}", "POST /inventory/reserve"},
}

func newWorkload(seed uint64) *workload {
	return &workload{r: rand.New(rand.NewPCG(seed, 7)), hosts: 3}
}

type wlSpan struct {
	trace      pcommon.TraceID
	id, parent pcommon.SpanID
	svc, host  int
	name       string
	kind       ptrace.SpanKind
	start, end int64
	err        bool
	attrs      [][2]string
	status     int
}

// request returns whole traces starting around startNs until at least spans
// spans are made, as one OTLP request grouped by service and host, and the ids.
func (w *workload) request(spans int, startNs int64) (ptrace.Traces, []pcommon.TraceID) {
	var all []wlSpan
	var ids []pcommon.TraceID
	for len(all) < spans {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], w.r.Uint64())
		binary.BigEndian.PutUint64(tid[8:], w.r.Uint64()|1)
		ids = append(ids, tid)
		b := &wlTrace{w: w, tid: tid, maxDepth: 3 + w.r.IntN(3)}
		b.server(0, pcommon.SpanID{}, startNs+int64(len(ids))*int64(1e6), 1, "")
		all = append(all, b.spans...)
	}
	return w.build(all), ids
}

type wlTrace struct {
	w        *workload
	tid      pcommon.TraceID
	maxDepth int
	spans    []wlSpan
}

func (t *wlTrace) id() (b pcommon.SpanID) {
	binary.BigEndian.PutUint64(b[:], t.w.r.Uint64()|1)
	return
}

func (t *wlTrace) latency(med float64) int64 {
	v := med * math.Exp(0.8*t.w.r.NormFloat64())
	if t.w.r.Float64() < 0.01 {
		v *= 20
	}
	return int64(v * 1e6)
}

func (t *wlTrace) server(svc int, parent pcommon.SpanID, start int64, depth int, route string) (int64, bool) {
	r := t.w.r
	if route == "" {
		route = wlRoutes[svc][r.IntN(len(wlRoutes[svc]))]
	}
	idx := len(t.spans)
	t.spans = append(t.spans, wlSpan{trace: t.tid, id: t.id(), parent: parent, svc: svc, host: r.IntN(t.w.hosts),
		name: route, kind: ptrace.SpanKindServer, start: start})
	self := t.latency(1.5)
	now := start + self/2
	failed := r.Float64() < 0.01
	for _, c := range wlCalls[svc] {
		if (c >= 0 && depth >= t.maxDepth) || r.Float64() < 0.2 {
			continue
		}
		end, f := t.client(svc, t.spans[idx].host, t.spans[idx].id, c, now, depth)
		now, failed = end, failed || f
	}
	s := &t.spans[idx]
	s.end, s.err, s.status = now+self/2, failed, 200
	if failed {
		s.status = 500
	}
	method, path := splitRoute(route)
	s.attrs = [][2]string{{"http.request.method", method}, {"http.route", path}}
	return s.end, failed
}

func (t *wlTrace) client(svc, host int, parent pcommon.SpanID, callee int, start int64, depth int) (int64, bool) {
	r := t.w.r
	idx := len(t.spans)
	t.spans = append(t.spans, wlSpan{trace: t.tid, id: t.id(), parent: parent, svc: svc, host: host, kind: ptrace.SpanKindClient, start: start})
	var (
		end    int64
		failed bool
		attrs  [][2]string
		name   string
	)
	switch callee {
	case -1:
		op := []string{"SELECT", "INSERT", "UPDATE"}[r.IntN(3)]
		name, end, failed = op+" "+wlServices[svc], start+t.latency(0.8), r.Float64() < 0.005
		attrs = [][2]string{{"db.system", "postgresql"}, {"db.operation.name", op}, {"server.address", "postgres"}}
	case -2:
		op := []string{"GET", "SET", "MGET"}[r.IntN(3)]
		name, end = op, start+t.latency(0.2)
		attrs = [][2]string{{"db.system", "redis"}, {"db.operation.name", op}, {"server.address", "redis"}}
	default:
		route := wlRoutes[callee][r.IntN(len(wlRoutes[callee]))]
		net := t.latency(0.3)
		var e int64
		e, failed = t.server(callee, t.spans[idx].id, start+net/2, depth+1, route)
		end = e + net/2
		method, path := splitRoute(route)
		name = method
		attrs = [][2]string{{"http.request.method", method}, {"server.address", wlServices[callee]}, {"url.full", "http://" + wlServices[callee] + path}}
	}
	s := &t.spans[idx]
	s.name, s.end, s.err, s.attrs = name, end, failed, attrs
	return end, failed
}

func splitRoute(r string) (string, string) {
	for i := 0; i < len(r); i++ {
		if r[i] == ' ' {
			return r[:i], r[i+1:]
		}
	}
	return "GET", r
}

func (w *workload) build(spans []wlSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	res := map[[2]int]ptrace.SpanSlice{}
	for i := range spans {
		s := &spans[i]
		key := [2]int{s.svc, s.host}
		ss, ok := res[key]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", wlServices[s.svc])
			a.PutStr("service.version", fmt.Sprintf("1.4.%d", s.svc))
			a.PutStr("host.name", fmt.Sprintf("%s-%d", wlServices[s.svc], s.host))
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("loadgen")
			ss = sc.Spans()
			res[key] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetTraceID(s.trace)
		sp.SetSpanID(s.id)
		sp.SetParentSpanID(s.parent)
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetStartTimestamp(pcommon.Timestamp(s.start))
		sp.SetEndTimestamp(pcommon.Timestamp(s.end))
		if s.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		for _, a := range s.attrs {
			sp.Attributes().PutStr(a[0], a[1])
		}
		if s.status != 0 {
			sp.Attributes().PutInt("http.response.status_code", int64(s.status))
		}
	}
	return td
}
