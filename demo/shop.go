package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// serviceSpec describes one service of the shop and the model of its host.
type serviceSpec struct {
	name, version, host string
	lang                string // shapes its logs and stack traces: go, python, java or nodejs
	queue               string // name of its work queue; empty when it has none
	cpuBase, cpuPerReq  float64
	memBase, memLimit   float64 // bytes
	memPerReq           float64 // bytes of garbage per request
}

// shopSpecs is the shop: a frontend in front of catalog, cart, checkout, payment and
// an assistant that answers shoppers' questions with an LLM.
var shopSpecs = []serviceSpec{
	{name: "frontend", version: "2.14.1", host: "web-1", lang: "nodejs",
		cpuBase: 0.06, cpuPerReq: 0.02, memBase: 180 << 20, memLimit: 96 << 20, memPerReq: 2 << 20},
	{name: "catalog", version: "1.8.0", host: "app-1", lang: "go",
		cpuBase: 0.04, cpuPerReq: 0.015, memBase: 60 << 20, memLimit: 48 << 20, memPerReq: 512 << 10},
	{name: "cart", version: "3.2.5", host: "app-2", lang: "python",
		cpuBase: 0.05, cpuPerReq: 0.03, memBase: 140 << 20, memLimit: 64 << 20, memPerReq: 1 << 20},
	{name: "checkout", version: "1.21.0", host: "app-1", lang: "java", queue: "order-events",
		cpuBase: 0.10, cpuPerReq: 0.05, memBase: 512 << 20, memLimit: 256 << 20, memPerReq: 4 << 20},
	{name: "payment", version: "0.9.4", host: "app-2", lang: "go", queue: "settlements",
		cpuBase: 0.03, cpuPerReq: 0.04, memBase: 40 << 20, memLimit: 32 << 20, memPerReq: 256 << 10},
	{name: "assistant", version: "0.3.0", host: "gpu-1", lang: "python", queue: "llm-requests",
		cpuBase: 0.12, cpuPerReq: 0.06, memBase: 900 << 20, memLimit: 512 << 20, memPerReq: 8 << 20},
}

// service is one running service of the shop: its SDK handles and host model.
type service struct {
	spec   serviceSpec
	tracer trace.Tracer
	logger log.Logger
	in     instruments
	host   *hostState
	// requests counts requests served since the last host tick; owned by the run loop.
	requests int
}

func newService(spec serviceSpec, tp trace.TracerProvider, lp log.LoggerProvider, mp metric.MeterProvider) (*service, error) {
	s := &service{
		spec:   spec,
		tracer: tp.Tracer(scopeName),
		logger: lp.Logger(scopeName),
		host: &hostState{
			queueName: spec.queue,
			cpuBase:   spec.cpuBase, cpuPerRequest: spec.cpuPerReq,
			memBase: spec.memBase, memPerRequest: spec.memPerReq, memLimit: spec.memLimit,
		},
	}
	in, err := newInstruments(mp.Meter(scopeName), s.host)
	if err != nil {
		return nil, fmt.Errorf("cannot create instruments of %s: %w", spec.name, err)
	}
	s.in = in
	return s, nil
}

// spanPlan is one span of a planned trace, with times relative to the start of the
// trace, the logs emitted while it runs and the measurements it makes. Planning is
// pure computation; emit turns a plan into SDK spans, logs and metrics.
type spanPlan struct {
	svc        *service
	name       string
	kind       trace.SpanKind
	start, end time.Duration
	attrs      []attribute.KeyValue
	status     codes.Code
	statusMsg  string
	events     []eventPlan
	logs       []logPlan
	measure    []func(ctx context.Context)
	children   []*spanPlan
}

type eventPlan struct {
	at    time.Duration
	name  string
	attrs []attribute.KeyValue
}

type logPlan struct {
	at    time.Duration
	sev   log.Severity
	body  attribute.Value
	attrs []attribute.KeyValue
}

func (s *spanPlan) attr(kv ...attribute.KeyValue) { s.attrs = append(s.attrs, kv...) }

// exception marks the span failed with an exception event, as instrumentation
// libraries record a caught error.
func (s *spanPlan) exception(at time.Duration, typ, msg string) {
	s.status, s.statusMsg = codes.Error, msg
	s.events = append(s.events, eventPlan{at: at, name: "exception", attrs: []attribute.KeyValue{
		attribute.String("exception.type", typ),
		attribute.String("exception.message", msg),
		attribute.String("exception.stacktrace", stackTrace(s.svc.spec, typ, msg, s.name)),
	}})
}

func (s *spanPlan) log(at time.Duration, sev log.Severity, body attribute.Value, attrs ...attribute.KeyValue) {
	s.logs = append(s.logs, logPlan{at: at, sev: sev, body: body, attrs: attrs})
}

// req is an HTTP request as the server sees it.
type req struct{ method, route, path string }

// handler plans the work of a server span from t and returns when it is done and
// the status code it answers.
type handler func(srv *spanPlan, t time.Duration) (end time.Duration, status int)

// planner plans traces of the shop. It is used by one goroutine.
type planner struct {
	rng    *rand.Rand
	svc    map[string]*service
	faults []fault // the faults active while the trace being planned runs
}

func newPlanner(rng *rand.Rand, svcs []*service) *planner {
	p := &planner{rng: rng, svc: make(map[string]*service, len(svcs))}
	for _, s := range svcs {
		p.svc[s.spec.name] = s
	}
	return p
}

// slowdown is the latency multiplier of the active faults on service name.
func (p *planner) slowdown(name string) float64 {
	f := 1.0
	for _, x := range p.faults {
		if x.kind == latencySpike && x.service == name {
			f *= x.factor
		}
	}
	return f
}

func (p *planner) burst(name string) float64 {
	for _, x := range p.faults {
		if x.kind == errorBurst && x.service == name {
			return x.factor
		}
	}
	return 0
}

func (p *planner) novel(name string) string {
	for _, x := range p.faults {
		if x.kind == novelErrorLog && x.service == name {
			return x.message
		}
	}
	return ""
}

// work is how long a piece of work of typical duration median takes on svc: log
// normal, with a long tail of rare very slow runs, slowed by active faults.
func (p *planner) work(svc *service, median time.Duration) time.Duration {
	d := float64(median) * math.Exp(0.5*p.rng.NormFloat64())
	if p.rng.Float64() < 0.01 {
		d *= 3 + 12*p.rng.Float64()
	}
	return time.Duration(d * p.slowdown(svc.spec.name))
}

// net is one network traversal inside the data centre.
func (p *planner) net() time.Duration {
	return 150*time.Microsecond + time.Duration(p.rng.Float64()*float64(time.Millisecond))
}

func (p *planner) chance(prob float64) bool { return p.rng.Float64() < prob }

func (p *planner) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[p.rng.IntN(16)]
	}
	return string(b)
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
}

type product struct {
	id    string
	name  string
	price float64
}

var products = []product{
	{"1001", "trail running shoes", 89.90}, {"1002", "rain jacket", 129.00},
	{"1003", "merino socks", 14.50}, {"1004", "headlamp", 34.99},
	{"1005", "water bottle", 19.90}, {"1006", "daypack 22l", 74.00},
	{"1007", "trekking poles", 59.00}, {"1008", "down vest", 99.00},
	{"1009", "camp stove", 45.50}, {"1010", "sleeping mat", 64.90},
	{"1011", "first aid kit", 24.00}, {"1012", "sun hat", 22.00},
}

var questions = []string{
	"which shoes are best for muddy trails?",
	"is the rain jacket packable?",
	"what do I need for a two day hike?",
	"do the merino socks run small?",
	"can I bring the camp stove on a plane?",
	"compare the daypack and the trekking poles bundle",
}

// planTrace plans one shopper request, rooted at the frontend.
func (p *planner) planTrace() *spanPlan {
	user := fmt.Sprintf("u-%04d", 1000+p.rng.IntN(400))
	prod := pick(p.rng, products)
	switch r := p.rng.Float64(); {
	case r < 0.20:
		return p.root(req{"GET", "/", "/"}, p.frontendHome(user))
	case r < 0.58:
		return p.root(req{"GET", "/product/{id}", "/product/" + prod.id}, p.frontendProduct(prod))
	case r < 0.76:
		return p.root(req{"POST", "/cart", "/cart"}, p.frontendAddToCart(user, prod))
	case r < 0.90:
		return p.root(req{"POST", "/checkout", "/checkout"}, p.frontendCheckout(user))
	default:
		return p.root(req{"POST", "/assistant/ask", "/assistant/ask"}, p.frontendAsk(user))
	}
}

// root plans the frontend's server span of a request from a browser.
func (p *planner) root(r req, h handler) *spanPlan {
	fe := p.svc["frontend"]
	srv := &spanPlan{svc: fe, name: r.method + " " + r.route, kind: trace.SpanKindServer}
	srv.attr(
		attribute.String("http.request.method", r.method),
		attribute.String("http.route", r.route),
		attribute.String("url.path", r.path),
		attribute.String("url.scheme", "https"),
		attribute.String("server.address", "shop.example.com"),
		attribute.Int("server.port", 443),
		attribute.String("client.address", fmt.Sprintf("203.0.113.%d", 1+p.rng.IntN(254))),
		attribute.String("user_agent.original", pick(p.rng, userAgents)),
		attribute.String("network.protocol.version", "2"),
	)
	p.serve(srv, r, h)
	return srv
}

// httpCall plans an HTTP hop from parent's service to service to: a client span in
// the caller and, inside it, the callee's server span.
func (p *planner) httpCall(parent *spanPlan, to string, r req, t time.Duration, h handler) (*spanPlan, int) {
	callee := p.svc[to]
	caller := parent.svc
	cl := &spanPlan{svc: caller, name: r.method, kind: trace.SpanKindClient, start: t}
	cl.attr(
		attribute.String("http.request.method", r.method),
		attribute.String("server.address", to),
		attribute.Int("server.port", 8080),
		attribute.String("url.full", "http://"+to+":8080"+r.path),
		attribute.String("network.protocol.version", "1.1"),
	)
	parent.children = append(parent.children, cl)

	srv := &spanPlan{svc: callee, name: r.method + " " + r.route, kind: trace.SpanKindServer, start: t + p.net()}
	srv.attr(
		attribute.String("http.request.method", r.method),
		attribute.String("http.route", r.route),
		attribute.String("url.path", r.path),
		attribute.String("url.scheme", "http"),
		attribute.String("server.address", to),
		attribute.Int("server.port", 8080),
		attribute.String("client.address", caller.spec.host),
		attribute.String("user_agent.original", caller.spec.name+"/"+caller.spec.version),
		attribute.String("network.protocol.version", "1.1"),
	)
	cl.children = append(cl.children, srv)
	status := p.serve(srv, r, h)

	cl.end = srv.end + p.net()
	cl.attr(attribute.Int("http.response.status_code", status))
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.method),
		attribute.String("server.address", to),
		attribute.Int("http.response.status_code", status),
	}
	if status >= 400 {
		cl.status = codes.Error
		cl.attr(attribute.String("error.type", strconv.Itoa(status)))
		attrs = append(attrs, attribute.String("error.type", strconv.Itoa(status)))
	}
	p.measureDuration(cl, caller.in.clientDuration, attrs)
	return cl, status
}

// serve plans a server span: the handler's work, or a failure when an error burst
// hits the service, the access log line and the request metrics.
func (p *planner) serve(srv *spanPlan, r req, h handler) int {
	svc := srv.svc
	svc.requests++
	t := srv.start + p.work(svc, 300*time.Microsecond) // parse, authenticate, route
	var status int
	if prob := p.burst(svc.spec.name); prob > 0 && p.chance(prob) {
		t += p.work(svc, 2*time.Millisecond)
		e := burstErrors[svc.spec.name]
		srv.exception(t, e.typ, e.msg)
		status = e.status
		p.errorLog(srv, t, "request failed", e.typ, e.msg)
	} else {
		t, status = h(srv, t)
	}
	if m := p.novel(svc.spec.name); m != "" && p.chance(0.5) {
		srv.log(t, log.SeverityError, attribute.StringValue(m), attribute.String("code.function", handlerName(svc.spec, r.route)))
	}
	srv.end = t + p.work(svc, 200*time.Microsecond)
	srv.attr(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		srv.status = codes.Error
		srv.attr(attribute.String("error.type", strconv.Itoa(status)))
	}
	p.accessLog(srv, r, status)

	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.method),
		attribute.String("http.route", r.route),
		attribute.Int("http.response.status_code", status),
	}
	p.measureDuration(srv, svc.in.serverDuration, attrs)
	opt := metric.WithAttributes(attrs...)
	srv.measure = append(srv.measure, func(ctx context.Context) { svc.in.serverRequests.Add(ctx, 1, opt) })
	return status
}

// measureDuration records the span's duration in seconds on h when it is emitted,
// in the span's context so the SDK can attach it as an exemplar.
func (p *planner) measureDuration(s *spanPlan, h metric.Float64Histogram, attrs []attribute.KeyValue) {
	opt := metric.WithAttributes(attrs...)
	s.measure = append(s.measure, func(ctx context.Context) { h.Record(ctx, (s.end - s.start).Seconds(), opt) })
}

// burstErrors is what each service throws during an error burst.
var burstErrors = map[string]struct {
	typ, msg string
	status   int
}{
	"catalog":   {"pgconn.ConnectError", "failed to connect to `host=postgres user=catalog database=shop`: server error (FATAL: sorry, too many clients already (SQLSTATE 53300))", 500},
	"cart":      {"redis.exceptions.ConnectionError", "Error 111 connecting to redis:6379. Connection refused.", 503},
	"payment":   {"payments.ProviderError", "upstream api.payments.example answered 503 Service Unavailable", 502},
	"assistant": {"openai.APIConnectionError", "Connection error.", 503},
	"checkout":  {"java.lang.IllegalStateException", "order state machine is in an invalid state: RESERVED -> RESERVED", 500},
	"frontend":  {"Error", "ECONNRESET: socket hang up", 500},
}

// upstreamFailed plans the frontend's or checkout's reaction to a failed call.
func (p *planner) upstreamFailed(srv *spanPlan, t time.Duration, to string, status int) (time.Duration, int) {
	t += p.work(srv.svc, 500*time.Microsecond)
	msg := fmt.Sprintf("upstream %s answered %d", to, status)
	srv.log(t, log.SeverityError, p.styled(srv.svc.spec, log.SeverityError, msg, "upstream", to, "status", strconv.Itoa(status)),
		attribute.String("server.address", to), attribute.Int("http.response.status_code", status))
	return t, 502
}

// ---- frontend ----

func (p *planner) frontendHome(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		cl, st := p.httpCall(srv, "catalog", req{"GET", "/api/products", "/api/products?featured=true"}, t, p.catalogList)
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "catalog", st)
		}
		if p.chance(0.5) {
			cl, st = p.httpCall(srv, "cart", req{"GET", "/api/cart/{user}", "/api/cart/" + user}, t, p.cartGet(user))
			t = cl.end
			if st >= 500 {
				return p.upstreamFailed(srv, t, "cart", st)
			}
		}
		return t + p.work(srv.svc, 6*time.Millisecond), 200 // render
	}
}

func (p *planner) frontendProduct(prod product) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		cl, st := p.httpCall(srv, "catalog", req{"GET", "/api/products/{id}", "/api/products/" + prod.id}, t, p.catalogGet(prod))
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "catalog", st)
		}
		if st == 404 {
			return t + p.work(srv.svc, 2*time.Millisecond), 404
		}
		return t + p.work(srv.svc, 5*time.Millisecond), 200
	}
}

func (p *planner) frontendAddToCart(user string, prod product) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		cl, st := p.httpCall(srv, "catalog", req{"GET", "/api/products/{id}", "/api/products/" + prod.id}, t, p.catalogGet(prod))
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "catalog", st)
		}
		cl, st = p.httpCall(srv, "cart", req{"POST", "/api/cart/{user}/items", "/api/cart/" + user + "/items"}, t, p.cartAdd(user, prod))
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "cart", st)
		}
		return t + p.work(srv.svc, time.Millisecond), 303
	}
}

func (p *planner) frontendCheckout(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		cl, st := p.httpCall(srv, "checkout", req{"POST", "/api/checkout", "/api/checkout"}, t, p.checkoutPlace(user))
		t = cl.end
		switch {
		case st >= 500:
			return p.upstreamFailed(srv, t, "checkout", st)
		case st == 402:
			return t + p.work(srv.svc, 3*time.Millisecond), 402
		}
		return t + p.work(srv.svc, 4*time.Millisecond), 303
	}
}

func (p *planner) frontendAsk(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		cl, st := p.httpCall(srv, "assistant", req{"POST", "/api/ask", "/api/ask"}, t, p.assistantAsk(user))
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "assistant", st)
		}
		return t + p.work(srv.svc, 2*time.Millisecond), 200
	}
}

// ---- catalog ----

func (p *planner) catalogList(srv *spanPlan, t time.Duration) (time.Duration, int) {
	db, ok := p.postgres(srv, t, "SELECT", "products",
		"SELECT id, name, price FROM products WHERE featured ORDER BY rank LIMIT $1", 4*time.Millisecond)
	t = db.end
	if !ok {
		return p.dbFailed(srv, t, db)
	}
	n := 8 + p.rng.IntN(5)
	if p.chance(0.2) {
		srv.log(t, log.SeverityDebug, p.styled(srv.svc.spec, log.SeverityDebug, "featured products loaded", "count", strconv.Itoa(n)))
	}
	return t + p.work(srv.svc, time.Millisecond), 200
}

func (p *planner) catalogGet(prod product) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		if p.chance(0.01) {
			srv.log(t, log.SeverityWarn, p.styled(srv.svc.spec, log.SeverityWarn, "product not found", "product_id", prod.id+"9"))
			return t + p.work(srv.svc, 300*time.Microsecond), 404
		}
		hit := p.chance(0.8)
		rd, ok := p.redis(srv, t, "GET", "GET product:"+prod.id, 400*time.Microsecond)
		t = rd.end
		if !ok {
			return p.dbFailed(srv, t, rd)
		}
		if !hit {
			db, ok := p.postgres(srv, t, "SELECT", "products",
				"SELECT id, name, price, stock FROM products WHERE id = $1", 3*time.Millisecond)
			t = db.end
			if !ok {
				return p.dbFailed(srv, t, db)
			}
			rd, _ = p.redis(srv, t, "SET", "SET product:"+prod.id+" ? EX 300", 300*time.Microsecond)
			t = rd.end
		}
		if p.chance(0.25) {
			cache := "hit"
			if !hit {
				cache = "miss"
			}
			srv.log(t, log.SeverityDebug, p.styled(srv.svc.spec, log.SeverityDebug, "product lookup", "product_id", prod.id, "cache", cache))
		}
		return t + p.work(srv.svc, 500*time.Microsecond), 200
	}
}

func (p *planner) catalogReserve(items int) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		db, ok := p.postgres(srv, t, "UPDATE", "products",
			"UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1", 6*time.Millisecond)
		t = db.end
		if !ok {
			return p.dbFailed(srv, t, db)
		}
		srv.log(t, log.SeverityInfo, p.styled(srv.svc.spec, log.SeverityInfo, "stock reserved", "items", strconv.Itoa(items)))
		return t + p.work(srv.svc, 500*time.Microsecond), 200
	}
}

func (p *planner) catalogSearch(srv *spanPlan, t time.Duration) (time.Duration, int) {
	db, ok := p.postgres(srv, t, "SELECT", "products",
		"SELECT id, name FROM products ORDER BY embedding <-> $1 LIMIT 5", 12*time.Millisecond)
	t = db.end
	if !ok {
		return p.dbFailed(srv, t, db)
	}
	return t + p.work(srv.svc, time.Millisecond), 200
}

// ---- cart ----

func (p *planner) cartGet(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		rd, ok := p.redis(srv, t, "HGETALL", "HGETALL cart:"+user, 500*time.Microsecond)
		t = rd.end
		if !ok {
			return p.dbFailed(srv, t, rd)
		}
		return t + p.work(srv.svc, 800*time.Microsecond), 200
	}
}

func (p *planner) cartAdd(user string, prod product) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		rd, ok := p.redis(srv, t, "HINCRBY", "HINCRBY cart:"+user+" "+prod.id+" 1", 500*time.Microsecond)
		t = rd.end
		if !ok {
			return p.dbFailed(srv, t, rd)
		}
		items := 1 + p.rng.IntN(6)
		srv.log(t, log.SeverityInfo, attribute.StringValue(fmt.Sprintf("Added %s to cart %s (%d items)", prod.name, user, items)),
			attribute.String("enduser.id", user), attribute.String("product.id", prod.id))
		return t + p.work(srv.svc, time.Millisecond), 201
	}
}

func (p *planner) cartClear(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		rd, ok := p.redis(srv, t, "DEL", "DEL cart:"+user, 400*time.Microsecond)
		t = rd.end
		if !ok {
			return p.dbFailed(srv, t, rd)
		}
		if p.chance(0.3) {
			// Customers asked for receipts by mail; the address is in the log, as
			// happens in real systems.
			srv.log(t, log.SeverityInfo, attribute.StringValue(fmt.Sprintf("Queued receipt mail for %s to %s@example.com", user, strings.ReplaceAll(user, "-", "."))),
				attribute.String("enduser.id", user))
		}
		return t + p.work(srv.svc, 600*time.Microsecond), 204
	}
}

// ---- checkout ----

func (p *planner) checkoutPlace(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		items := 1 + p.rng.IntN(5)
		cl, st := p.httpCall(srv, "cart", req{"GET", "/api/cart/{user}", "/api/cart/" + user}, t, p.cartGet(user))
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "cart", st)
		}
		cl, st = p.httpCall(srv, "catalog", req{"POST", "/api/products/reserve", "/api/products/reserve"}, t, p.catalogReserve(items))
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "catalog", st)
		}
		amount := float64(items) * pick(p.rng, products).price
		cl, st = p.httpCall(srv, "payment", req{"POST", "/api/charges", "/api/charges"}, t, p.paymentCharge(user, amount))
		t = cl.end
		switch {
		case st == 402:
			srv.log(t, log.SeverityWarn, p.styled(srv.svc.spec, log.SeverityWarn, "payment declined", "user", user, "amount", fmt.Sprintf("%.2f", amount)))
			return t + p.work(srv.svc, time.Millisecond), 402
		case st >= 500:
			return p.upstreamFailed(srv, t, "payment", st)
		}
		db, ok := p.postgres(srv, t, "INSERT", "orders",
			"INSERT INTO orders (id, user_id, amount, currency, status) VALUES ($1, $2, $3, $4, 'paid')", 5*time.Millisecond)
		t = db.end
		if !ok {
			return p.dbFailed(srv, t, db)
		}
		order := "ord-" + p.hex(10)
		pub := &spanPlan{svc: srv.svc, name: "publish order-events", kind: trace.SpanKindProducer, start: t}
		pub.end = t + p.work(srv.svc, 1500*time.Microsecond)
		pub.attr(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "publish"),
			attribute.String("messaging.destination.name", "order-events"),
			attribute.String("messaging.message.id", order),
			attribute.String("server.address", "kafka"),
			attribute.Int("server.port", 9092),
		)
		srv.children = append(srv.children, pub)
		t = pub.end
		srv.log(t, log.SeverityInfo, attribute.StringValue(fmt.Sprintf(
			`{"level":"INFO","logger":"shop.checkout.OrderService","message":"order placed","orderId":%q,"userId":%q,"items":%d,"amount":%.2f,"currency":"EUR"}`,
			order, user, items, amount)), attribute.String("order.id", order))
		cl, _ = p.httpCall(srv, "cart", req{"DELETE", "/api/cart/{user}", "/api/cart/" + user}, t, p.cartClear(user))
		return cl.end + p.work(srv.svc, time.Millisecond), 201
	}
}

// ---- payment ----

func (p *planner) paymentCharge(user string, amount float64) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		t += p.work(srv.svc, 2*time.Millisecond) // fraud score
		ext := &spanPlan{svc: srv.svc, name: "POST", kind: trace.SpanKindClient, start: t}
		ext.attr(
			attribute.String("http.request.method", "POST"),
			attribute.String("server.address", "api.payments.example"),
			attribute.Int("server.port", 443),
			attribute.String("url.full", "https://api.payments.example/v1/charges"),
		)
		srv.children = append(srv.children, ext)
		outcome, status := "approved", 200
		switch r := p.rng.Float64(); {
		case r < 0.01:
			ext.end = t + 5*time.Second // the client's timeout
			ext.exception(ext.end, "context.deadlineExceededError", `Post "https://api.payments.example/v1/charges": context deadline exceeded`)
			ext.attr(attribute.String("error.type", "timeout"))
			outcome, status = "timeout", 504
		case r < 0.04:
			ext.end = t + p.work(srv.svc, 180*time.Millisecond)
			ext.status = codes.Error
			ext.attr(attribute.Int("http.response.status_code", 402), attribute.String("error.type", "402"))
			outcome, status = "declined", 402
		default:
			ext.end = t + p.work(srv.svc, 220*time.Millisecond)
			ext.attr(attribute.Int("http.response.status_code", 200))
		}
		p.measureDuration(ext, srv.svc.in.clientDuration, []attribute.KeyValue{
			attribute.String("http.request.method", "POST"),
			attribute.String("server.address", "api.payments.example"),
		})
		t = ext.end
		sev := log.SeverityInfo
		switch status {
		case 402:
			sev = log.SeverityWarn
		case 504:
			sev = log.SeverityError
		}
		srv.log(t, sev, attribute.MapValue(
			attribute.String("msg", "charge "+outcome),
			attribute.String("provider", "payments.example"),
			attribute.Int64("amount_cents", int64(math.Round(amount*100))),
			attribute.String("currency", "EUR"),
			attribute.String("outcome", outcome),
			attribute.Float64("latency_ms", float64((ext.end-ext.start).Microseconds())/1000),
		), attribute.String("enduser.id", user))
		return t + p.work(srv.svc, time.Millisecond), status
	}
}

// ---- assistant ----

// llmModel is a model the assistant calls, with list prices in USD per million tokens.
type llmModel struct {
	system, name, responseModel, host string
	inPrice, outPrice                 float64
	perToken                          time.Duration // time per output token
}

var (
	chatSmall = llmModel{"openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com", 0.15, 0.60, 8 * time.Millisecond}
	chatLarge = llmModel{"anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514", "api.anthropic.com", 3, 15, 20 * time.Millisecond}
	embedder  = llmModel{"openai", "text-embedding-3-small", "text-embedding-3-small", "api.openai.com", 0.02, 0, 0}
)

func (p *planner) assistantAsk(user string) handler {
	return func(srv *spanPlan, t time.Duration) (time.Duration, int) {
		q := pick(p.rng, questions)
		emb, failure := p.llmCall(srv, t, embedder, "embeddings", 8+p.rng.IntN(40), 0)
		t = emb.end
		if failure != "" {
			return p.llmFailed(srv, t)
		}
		cl, st := p.httpCall(srv, "catalog", req{"GET", "/api/products/search", "/api/products/search?k=5"}, t, p.catalogSearch)
		t = cl.end
		if st >= 500 {
			return p.upstreamFailed(srv, t, "catalog", st)
		}
		model := chatSmall
		if p.chance(0.2) {
			model = chatLarge
		}
		in := 300 + int(float64(900)*math.Exp(0.5*p.rng.NormFloat64()))
		out := 40 + int(float64(160)*math.Exp(0.7*p.rng.NormFloat64()))
		chat, failure := p.llmCall(srv, t, model, "chat", in, out)
		t = chat.end
		if failure == "429" {
			// Rate limited: back off and retry once.
			t += time.Duration(500+p.rng.IntN(1000)) * time.Millisecond
			chat, failure = p.llmCall(srv, t, model, "chat", in, out)
			t = chat.end
		}
		if failure != "" {
			return p.llmFailed(srv, t)
		}
		cost := (float64(in)*model.inPrice + float64(min(out, 800))*model.outPrice) / 1e6
		srv.log(t, log.SeverityInfo, attribute.StringValue(fmt.Sprintf(
			"event=answer_ready model=%s input_tokens=%d output_tokens=%d cost_usd=%.6f question=%q",
			model.name, in, min(out, 800), cost, q)), attribute.String("enduser.id", user))
		return t + p.work(srv.svc, 3*time.Millisecond), 200
	}
}

// llmCall plans a call to a model. It fails with a rate limit now and then, and
// with an overloaded provider more rarely; failure is then the error.type.
func (p *planner) llmCall(srv *spanPlan, t time.Duration, m llmModel, op string, in, out int) (s *spanPlan, failure string) {
	const maxTokens = 800
	s = &spanPlan{svc: srv.svc, name: op + " " + m.name, kind: trace.SpanKindClient, start: t}
	s.attr(
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.system", m.system),
		attribute.String("gen_ai.provider.name", m.system),
		attribute.String("gen_ai.request.model", m.name),
		attribute.String("server.address", m.host),
		attribute.Int("server.port", 443),
	)
	if op == "chat" {
		s.attr(attribute.Int("gen_ai.request.max_tokens", maxTokens), attribute.Float64("gen_ai.request.temperature", 0.2))
	}
	srv.children = append(srv.children, s)
	metricAttrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.system", m.system),
		attribute.String("gen_ai.request.model", m.name),
	}
	switch r := p.rng.Float64(); {
	case op == "chat" && r < 0.03:
		s.end = t + p.work(srv.svc, 120*time.Millisecond)
		s.exception(s.end, "openai.RateLimitError", "Error code: 429 - Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1.")
		s.attr(attribute.String("error.type", "429"))
		metricAttrs = append(metricAttrs, attribute.String("error.type", "429"))
		p.errorLog(srv, s.end, "LLM call rate limited", "openai.RateLimitError", "429 rate limit reached")
		failure = "429"
	case op == "chat" && r < 0.04:
		s.end = t + p.work(srv.svc, 2*time.Second)
		s.exception(s.end, "openai.InternalServerError", "Error code: 529 - The model is overloaded. Please try again later.")
		s.attr(attribute.String("error.type", "529"))
		metricAttrs = append(metricAttrs, attribute.String("error.type", "529"))
		failure = "529"
	default:
		finish := "stop"
		if out > maxTokens {
			out, finish = maxTokens, "length"
		}
		ttft := p.work(srv.svc, 350*time.Millisecond)
		if op == "embeddings" {
			ttft = p.work(srv.svc, 60*time.Millisecond)
		}
		s.end = t + ttft + time.Duration(out)*m.perToken
		s.attr(
			attribute.String("gen_ai.response.model", m.responseModel),
			attribute.String("gen_ai.response.id", "resp_"+p.hex(16)),
			attribute.Int("gen_ai.usage.input_tokens", in),
		)
		if op == "chat" {
			s.attr(attribute.Int("gen_ai.usage.output_tokens", out), attribute.StringSlice("gen_ai.response.finish_reasons", []string{finish}))
			if finish == "length" {
				srv.log(s.end, log.SeverityWarn, p.styled(srv.svc.spec, log.SeverityWarn, "answer truncated", "model", m.name, "finish_reason", finish))
			}
		}
		cost := (float64(in)*m.inPrice + float64(out)*m.outPrice) / 1e6
		in64, out64 := int64(in), int64(out)
		inOpt := metric.WithAttributes(append(metricAttrs[:len(metricAttrs):len(metricAttrs)], attribute.String("gen_ai.token.type", "input"))...)
		outOpt := metric.WithAttributes(append(metricAttrs[:len(metricAttrs):len(metricAttrs)], attribute.String("gen_ai.token.type", "output"))...)
		costOpt := metric.WithAttributes(metricAttrs...)
		inst := srv.svc.in
		s.measure = append(s.measure, func(ctx context.Context) {
			inst.tokenUsage.Record(ctx, in64, inOpt)
			if op == "chat" {
				inst.tokenUsage.Record(ctx, out64, outOpt)
			}
			inst.genaiCost.Add(ctx, cost, costOpt)
		})
	}
	p.measureDuration(s, srv.svc.in.genaiDuration, metricAttrs)
	return s, failure
}

func (p *planner) llmFailed(srv *spanPlan, t time.Duration) (time.Duration, int) {
	t += p.work(srv.svc, time.Millisecond)
	srv.log(t, log.SeverityError, p.styled(srv.svc.spec, log.SeverityError, "could not answer the question", "reason", "llm_unavailable"))
	return t, 503
}

// ---- databases ----

// postgres plans a PostgreSQL query by srv's service. It fails rarely.
func (p *planner) postgres(srv *spanPlan, t time.Duration, op, table, query string, median time.Duration) (*spanPlan, bool) {
	s := p.dbSpan(srv, t, "postgresql", op, table, query, "postgres", 5432, median)
	if p.chance(0.003) {
		s.exception(s.end, "pq.Error", "pq: deadlock detected (SQLSTATE 40P01)")
		return s, false
	}
	return s, true
}

// redis plans a Redis command by srv's service. It fails rarely.
func (p *planner) redis(srv *spanPlan, t time.Duration, op, query string, median time.Duration) (*spanPlan, bool) {
	s := p.dbSpan(srv, t, "redis", op, "", query, "redis", 6379, median)
	if p.chance(0.002) {
		s.exception(s.end, "redis.PoolTimeoutError", "redis: connection pool timeout")
		return s, false
	}
	return s, true
}

func (p *planner) dbSpan(srv *spanPlan, t time.Duration, system, op, table, query, host string, port int, median time.Duration) *spanPlan {
	name := op
	if table != "" {
		name = op + " " + table
	}
	s := &spanPlan{svc: srv.svc, name: name, kind: trace.SpanKindClient, start: t}
	s.end = t + p.work(srv.svc, median)
	s.attr(
		attribute.String("db.system", system),
		attribute.String("db.system.name", system),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", query),
		attribute.String("db.namespace", "shop"),
		attribute.String("server.address", host),
		attribute.Int("server.port", port),
	)
	if table != "" {
		s.attr(attribute.String("db.collection.name", table))
	}
	srv.children = append(srv.children, s)
	p.measureDuration(s, srv.svc.in.dbDuration, []attribute.KeyValue{
		attribute.String("db.system.name", system),
		attribute.String("db.operation.name", op),
	})
	return s
}

// dbFailed plans a server's reaction to a failed database call: the handler
// catches the error, logs it and answers 500.
func (p *planner) dbFailed(srv *spanPlan, t time.Duration, db *spanPlan) (time.Duration, int) {
	t += p.work(srv.svc, 300*time.Microsecond)
	typ, msg := "", db.statusMsg
	if len(db.events) > 0 {
		for _, kv := range db.events[0].attrs {
			if kv.Key == "exception.type" {
				typ = kv.Value.AsString()
			}
		}
	}
	srv.exception(t, typ, msg)
	p.errorLog(srv, t, "database call failed", typ, msg)
	return t, 500
}

// errorLog plans an error log line with the exception attributes.
func (p *planner) errorLog(srv *spanPlan, t time.Duration, what, typ, msg string) {
	srv.log(t, log.SeverityError, p.styled(srv.svc.spec, log.SeverityError, what, "error", msg),
		attribute.String("exception.type", typ),
		attribute.String("exception.message", msg),
		attribute.String("exception.stacktrace", stackTrace(srv.svc.spec, typ, msg, srv.name)),
	)
}

// accessLog plans the line a service writes when it answers a request, in the
// service's own format.
func (p *planner) accessLog(srv *spanPlan, r req, status int) {
	spec := srv.svc.spec
	ms := float64((srv.end - srv.start).Microseconds()) / 1000
	sev := log.SeverityInfo
	switch {
	case status >= 500:
		sev = log.SeverityError
	case status >= 400 && status != 402 && status != 404:
		sev = log.SeverityWarn
	case ms > 1000:
		sev = log.SeverityWarn
	}
	var body attribute.Value
	switch spec.name {
	case "frontend": // morgan-style plain text
		body = attribute.StringValue(fmt.Sprintf("%s %s %d %.3f ms", r.method, r.path, status, ms))
	case "cart": // gunicorn access log
		body = attribute.StringValue(fmt.Sprintf(`%s - - "%s %s HTTP/1.1" %d %.1fms`, srv.attrString("client.address"), r.method, r.path, status, ms))
	case "checkout": // JSON from logback
		body = attribute.StringValue(fmt.Sprintf(`{"level":%q,"logger":"shop.checkout.http","message":"request completed","method":%q,"route":%q,"status":%d,"durationMs":%.1f}`,
			severityText(spec.lang, sev), r.method, r.route, status, ms))
	case "payment": // structured body
		body = attribute.MapValue(
			attribute.String("msg", "request served"),
			attribute.String("method", r.method),
			attribute.String("route", r.route),
			attribute.Int("status", status),
			attribute.Float64("duration_ms", ms),
		)
	default: // key=value
		body = p.styled(spec, sev, "request served", "method", r.method, "route", r.route, "status", strconv.Itoa(status), "duration_ms", fmt.Sprintf("%.1f", ms))
	}
	srv.log(srv.end, sev, body, attribute.String("http.route", r.route), attribute.Int("http.response.status_code", status))
}

func (s *spanPlan) attrString(key string) string {
	for _, kv := range s.attrs {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return "-"
}

// styled formats a message with key/value pairs in the way the service's logging
// library would: logfmt for Go, structlog-style for Python, JSON for Java and
// plain text for Node.
func (p *planner) styled(spec serviceSpec, sev log.Severity, msg string, kv ...string) attribute.Value {
	var b strings.Builder
	switch spec.lang {
	case "go":
		fmt.Fprintf(&b, "level=%s msg=%q", strings.ToLower(severityText(spec.lang, sev)), msg)
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, " %s=%s", kv[i], logfmtValue(kv[i+1]))
		}
	case "python":
		fmt.Fprintf(&b, "event=%s", strings.ReplaceAll(msg, " ", "_"))
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, " %s=%s", kv[i], logfmtValue(kv[i+1]))
		}
	case "java":
		fmt.Fprintf(&b, `{"level":%q,"logger":"shop.%s","message":%q`, severityText(spec.lang, sev), spec.name, msg)
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, ",%q:%q", kv[i], kv[i+1])
		}
		b.WriteString("}")
	default:
		b.WriteString(msg)
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, " %s=%s", kv[i], kv[i+1])
		}
	}
	return attribute.StringValue(b.String())
}

func logfmtValue(v string) string {
	if strings.ContainsAny(v, " =\"") {
		return strconv.Quote(v)
	}
	return v
}

// severityText is the severity as the service's logging library spells it.
func severityText(lang string, sev log.Severity) string {
	switch {
	case sev >= log.SeverityError:
		return "ERROR"
	case sev >= log.SeverityWarn:
		if lang == "python" {
			return "WARNING"
		}
		return "WARN"
	case sev >= log.SeverityInfo:
		return "INFO"
	}
	return "DEBUG"
}

// handlerName is the function serving route, as the service's stack traces name it.
func handlerName(spec serviceSpec, route string) string {
	parts := strings.FieldsFunc(route, func(r rune) bool { return r == '/' || r == '{' || r == '}' })
	if len(parts) == 0 {
		parts = []string{"index"}
	}
	name := parts[len(parts)-1]
	switch spec.lang {
	case "java":
		return "shop." + spec.name + "." + strings.ToUpper(name[:1]) + name[1:] + "Controller.handle"
	case "go":
		return "shop/" + spec.name + "/api.(*Server)." + strings.ToUpper(name[:1]) + name[1:]
	}
	return spec.name + ".api." + name
}

// stackTrace is a short stack trace in the service's language.
func stackTrace(spec serviceSpec, typ, msg, where string) string {
	fn := handlerName(spec, where)
	switch spec.lang {
	case "go":
		return fmt.Sprintf("goroutine 87 [running]:\n%s(...)\n\t/src/%s/api/handlers.go:142 +0x1c4\nnet/http.HandlerFunc.ServeHTTP(...)\n\t/usr/local/go/src/net/http/server.go:2220 +0x29", fn, spec.name)
	case "python":
		return fmt.Sprintf("Traceback (most recent call last):\n  File \"/app/%s/api.py\", line 57, in %s\n    result = await handler(request)\n  File \"/app/%s/store.py\", line 23, in fetch\n    return await client.execute(query)\n%s: %s", spec.name, fn, spec.name, typ, msg)
	case "java":
		return fmt.Sprintf("%s: %s\n\tat %s(%s.java:142)\n\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)", typ, msg, fn, spec.name)
	}
	return fmt.Sprintf("%s: %s\n    at %s (/app/server/routes.js:31:11)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)", typ, msg, fn)
}

// emit turns a planned trace into SDK spans, logs and measurements; start is the
// wall-clock time of the root span's start.
func emit(ctx context.Context, start time.Time, s *spanPlan) {
	ctx, span := s.svc.tracer.Start(ctx, s.name,
		trace.WithTimestamp(start.Add(s.start)),
		trace.WithSpanKind(s.kind),
		trace.WithAttributes(s.attrs...),
	)
	for _, e := range s.events {
		span.AddEvent(e.name, trace.WithTimestamp(start.Add(e.at)), trace.WithAttributes(e.attrs...))
	}
	for _, l := range s.logs {
		emitLog(ctx, s.svc, start.Add(l.at), l)
	}
	for _, m := range s.measure {
		m(ctx)
	}
	for _, c := range s.children {
		emit(ctx, start, c)
	}
	span.SetStatus(s.status, s.statusMsg)
	span.End(trace.WithTimestamp(start.Add(s.end)))
}
