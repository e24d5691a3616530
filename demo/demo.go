// Package demo makes a small online shop's telemetry and sends it to an OTLP
// receiver, so that a new Outpost shows a living system from its first minute.
//
// The shop has six services — frontend, catalog, cart, checkout, payment and an
// LLM-backed assistant — each with its own OpenTelemetry resource. Every shopper
// request becomes a trace that crosses several services (an HTTP client span in the
// caller, a server span in the callee, database and messaging client spans), with
// the logs each service writes inside those spans, in its own format, and with
// host-like and request metrics. Now and then a fault is injected on a seeded
// schedule: a latency spike on one service, an error burst, or an error log line
// never seen before; each fault is announced on the demo's slog logger when it
// starts and when it ends.
//
// The package owns nothing but the generation: it knows Outpost only by its OTLP
// endpoints and speaks to them with the real OpenTelemetry Go SDK — traces over
// OTLP/gRPC, logs and metrics over OTLP/HTTP, both gzip-compressed, without TLS.
//
// # Basics
//
// Run blocks until its context is done, then flushes what is pending and returns.
// Spans are not timed by sleeping: each trace is planned in full (a tree of spans
// with durations drawn from log-normal laws with long tails), then emitted at once
// with explicit start and end timestamps, its root ending at the moment the request
// arrived. That keeps the demo light — a few traces per second by default.
//
// # Caveats
//
// The same Seed gives the same sequence of traces, trace and span ids, log lines
// and faults, but how much of the sequence is sent depends on how long Run runs.
// Runs with the same non-zero Seed against the same store produce the same trace
// ids; leave Seed zero for a fresh sequence each run.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
)

// Options configure Run. The zero value sends to the default OTLP ports on
// localhost at the default pace.
type Options struct {
	// GRPCEndpoint is the host:port of the OTLP/gRPC receiver; traces go there.
	// Empty means "localhost:4317".
	GRPCEndpoint string
	// HTTPEndpoint is the host:port of the OTLP/HTTP receiver; logs and metrics go
	// there. Empty means "localhost:4318".
	HTTPEndpoint string
	// Logger gets the demo's own messages: start and stop, each fault as it starts
	// and ends, export failures and recoveries. Nil means slog.Default().
	Logger *slog.Logger
	// Seed drives every random choice, so a seed reproduces the telemetry.
	// Zero means a seed taken from the clock (and logged).
	Seed int64
	// TracesPerSecond is the mean rate of shopper requests, each one trace of
	// about ten spans. It drifts ±30% over a ten-minute cycle. Zero means 3.
	TracesPerSecond float64
	// MetricInterval is how often metrics are collected and exported. Zero means
	// 5 seconds. Spans and logs are sent in batches every second, or every
	// MetricInterval when that is shorter.
	MetricInterval time.Duration
	// FaultEvery is the mean quiet time between two faults (each gap is drawn
	// between half and one and a half times it). Zero means 4 minutes; a
	// negative value disables faults.
	FaultEvery time.Duration
	// FaultLength is the typical duration of a fault (each is drawn between 0.8
	// and 1.2 times it). Zero means 1 minute.
	FaultLength time.Duration
	// FlushTimeout bounds the final flush after the context is done. Zero means
	// 5 seconds.
	FlushTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.GRPCEndpoint == "" {
		o.GRPCEndpoint = "localhost:4317"
	}
	if o.HTTPEndpoint == "" {
		o.HTTPEndpoint = "localhost:4318"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	switch {
	case o.TracesPerSecond < 0 || math.IsNaN(o.TracesPerSecond) || math.IsInf(o.TracesPerSecond, 0):
		return o, fmt.Errorf("cannot run demo: TracesPerSecond is %v, want a positive rate", o.TracesPerSecond)
	case o.TracesPerSecond == 0:
		o.TracesPerSecond = 3
	}
	switch {
	case o.MetricInterval < 0:
		return o, fmt.Errorf("cannot run demo: MetricInterval is %v, want a positive duration", o.MetricInterval)
	case o.MetricInterval == 0:
		o.MetricInterval = 5 * time.Second
	}
	if o.FaultEvery == 0 {
		o.FaultEvery = 4 * time.Minute
	}
	switch {
	case o.FaultLength < 0:
		return o, fmt.Errorf("cannot run demo: FaultLength is %v, want a positive duration", o.FaultLength)
	case o.FaultLength == 0:
		o.FaultLength = time.Minute
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 5 * time.Second
	}
	return o, nil
}

// batchInterval is how long spans and logs wait in the SDK's batch processors.
func (o *Options) batchInterval() time.Duration {
	return min(time.Second, o.MetricInterval)
}

// Independent random streams, so that for instance the fault schedule does not
// change when the traffic model draws one more number.
const (
	streamIDs uint64 = iota + 1
	streamTraffic
	streamFaults
	streamHosts
	streamSetup
	streamPlans
)

// Run sends the shop's telemetry to the OTLP endpoints of opts until ctx is done,
// then flushes what is pending (bounded by opts.FlushTimeout) and returns. It
// returns an error only when it cannot start or when the final flush fails;
// failures to export while running are logged, once when they start and once when
// they stop. Stop Run before the receivers it feeds, so the final flush lands.
func Run(ctx context.Context, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	seed := uint64(o.Seed)
	stream := func(s uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, s)) }

	pl, err := newPipeline(ctx, &o)
	if err != nil {
		return err
	}
	flush := func() error {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.FlushTimeout)
		defer cancel()
		return pl.shutdown(fctx)
	}
	ids := &seededIDs{rng: stream(streamIDs)}
	setup := stream(streamSetup)
	svcs := make([]*service, 0, len(shopSpecs))
	for _, spec := range shopSpecs {
		attrs := []attribute.KeyValue{
			attribute.String("service.name", spec.name),
			attribute.String("service.namespace", "shop"),
			attribute.String("service.version", spec.version),
			attribute.String("service.instance.id", uuid(setup)),
			attribute.String("host.name", spec.host),
			attribute.String("deployment.environment", "demo"),
			attribute.String("deployment.environment.name", "demo"),
		}
		tp, lp, mp, err := pl.addService(ctx, &o, ids, attrs)
		if err == nil {
			var svc *service
			svc, err = newService(spec, tp, lp, mp)
			svcs = append(svcs, svc)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("cannot set up demo service %s: %w", spec.name, err), flush())
		}
	}

	r := &runner{
		o:     o,
		log:   o.Logger,
		rng:   stream(streamTraffic),
		hrng:  stream(streamHosts),
		plan:  newPlanner(stream(streamPlans), svcs),
		svcs:  svcs,
		start: time.Now(),
	}
	if o.FaultEvery > 0 {
		r.sched = newFaultSchedule(stream(streamFaults), r.start, o.FaultEvery, o.FaultLength)
		r.upcoming = r.sched.next()
	}
	args := []any{"seed", o.Seed, "traces_per_second", o.TracesPerSecond, "otlp_grpc", o.GRPCEndpoint, "otlp_http", o.HTTPEndpoint}
	if r.sched != nil {
		args = append(args, "first_fault_at", r.upcoming.start.Format(time.TimeOnly))
	}
	r.log.Info("demo started", args...)
	r.loop(ctx)

	err = flush()
	r.log.Info("demo stopped", "traces", r.traces,
		"spans_sent", pl.traces.sent.Load(), "log_records_sent", pl.logs.sent.Load(),
		"metric_points_sent", pl.metrics.sent.Load(),
		"failed_batches", pl.traces.failed.Load()+pl.logs.failed.Load()+pl.metrics.failed.Load())
	return err
}

// runner is the demo's one goroutine: it plans and emits traces as they are due,
// advances the host models, and starts and ends faults.
type runner struct {
	o    Options
	log  *slog.Logger
	rng  *rand.Rand // arrivals
	hrng *rand.Rand // host models and background logs
	plan *planner
	svcs []*service

	sched    *faultSchedule // nil when faults are disabled
	upcoming fault          // the next fault to start; zero when faults are disabled
	active   []fault

	start     time.Time
	nextTrace time.Time
	lastTick  time.Time
	traces    int
}

const hostTick = time.Second

func (r *runner) loop(ctx context.Context) {
	emitCtx := context.WithoutCancel(ctx) // the last trace is emitted whole even when ctx ends
	r.nextTrace = r.start.Add(r.gap(r.start))
	r.lastTick = r.start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		r.step(emitCtx, now)
		timer.Reset(r.nextEvent().Sub(now))
	}
}

// nextEvent is when step has something to do next.
func (r *runner) nextEvent() time.Time {
	next := r.nextTrace
	if t := r.lastTick.Add(hostTick); t.Before(next) {
		next = t
	}
	if r.sched != nil && r.upcoming.start.Before(next) {
		next = r.upcoming.start
	}
	for _, f := range r.active {
		if f.end.Before(next) {
			next = f.end
		}
	}
	return next
}

// step does everything due at now.
func (r *runner) step(ctx context.Context, now time.Time) {
	// Faults first, so the traces of this step see them.
	kept := r.active[:0]
	for _, f := range r.active {
		if now.Before(f.end) {
			kept = append(kept, f)
			continue
		}
		r.log.Info("demo fault ended", "kind", f.kind, "service", f.service, "lasted", f.end.Sub(f.start).Round(time.Millisecond))
	}
	r.active = kept
	for r.sched != nil && !now.Before(r.upcoming.start) {
		f := r.upcoming
		r.upcoming = r.sched.next()
		if !now.Before(f.end) {
			continue // missed entirely, e.g. the machine was asleep
		}
		r.active = append(r.active, f)
		args := []any{"kind", f.kind, "service", f.service, "until", f.end.Format(time.TimeOnly)}
		switch f.kind {
		case latencySpike:
			args = append(args, "latency_factor", math.Round(f.factor*10)/10)
		case errorBurst:
			args = append(args, "error_rate", math.Round(f.factor*100)/100)
		case novelErrorLog:
			args = append(args, "message", f.message)
		}
		r.log.Info("demo fault started", args...)
	}

	// Traces due. After a long stall (a suspended laptop) skip ahead rather than
	// sending a flood.
	if now.Sub(r.nextTrace) > 10*time.Second {
		r.nextTrace = now
	}
	for !r.nextTrace.After(now) {
		r.plan.faults = r.plan.faults[:0]
		for _, f := range r.active {
			if f.activeAt(r.nextTrace) {
				r.plan.faults = append(r.plan.faults, f)
			}
		}
		p := r.plan.planTrace()
		emit(ctx, r.nextTrace.Add(-p.end), p)
		r.traces++
		r.nextTrace = r.nextTrace.Add(r.gap(r.nextTrace))
	}

	if dt := now.Sub(r.lastTick); dt >= hostTick {
		r.tickHosts(ctx, now, dt)
		r.lastTick = now
	}
}

// gap is the time to the next arrival after t: exponential, at a rate that drifts
// over a ten-minute cycle so the metrics have a shape.
func (r *runner) gap(t time.Time) time.Duration {
	phase := 2 * math.Pi * t.Sub(r.start).Minutes() / 10
	rate := r.o.TracesPerSecond * (1 + 0.3*math.Sin(phase))
	return time.Duration(r.rng.ExpFloat64() / rate * float64(time.Second))
}

// tickHosts advances every service's host model by dt and writes the logs a
// service writes outside any request.
func (r *runner) tickHosts(ctx context.Context, now time.Time, dt time.Duration) {
	for _, s := range r.svcs {
		slow := 1.0
		for _, f := range r.active {
			if f.kind == latencySpike && f.service == s.spec.name {
				slow *= f.factor
			}
		}
		s.host.tick(r.hrng, dt.Seconds(), s.requests, slow)
		s.requests = 0
		if slow > 1 && r.hrng.Float64() < 0.5 {
			waiting := 5 + r.hrng.IntN(40)
			emitLog(ctx, s, now, logPlan{sev: log.SeverityWarn,
				body: r.plan.styled(s.spec, log.SeverityWarn, "worker pool saturated", "busy", "32", "waiting", fmt.Sprint(waiting))})
		}
		if r.hrng.Float64() < 0.12*dt.Seconds() {
			emitLog(ctx, s, now, r.backgroundLog(s))
		}
	}
}

// backgroundLog is a routine line a service writes on its own: pool and cache
// statistics, health checks.
func (r *runner) backgroundLog(s *service) logPlan {
	rng := r.hrng
	sample := s.host.read()
	switch s.spec.name {
	case "frontend":
		return logPlan{sev: log.SeverityInfo, body: attribute.StringValue(fmt.Sprintf("GET /healthz 200 %.3f ms", 0.2+rng.Float64()))}
	case "catalog":
		return logPlan{sev: log.SeverityInfo, body: r.plan.styled(s.spec, log.SeverityInfo, "cache stats",
			"hits", fmt.Sprint(800+rng.IntN(400)), "misses", fmt.Sprint(100+rng.IntN(150)), "evictions", fmt.Sprint(rng.IntN(20)))}
	case "cart":
		return logPlan{sev: log.SeverityInfo, body: r.plan.styled(s.spec, log.SeverityInfo, "redis pool stats",
			"in_use", fmt.Sprint(1+rng.IntN(6)), "available", fmt.Sprint(10+rng.IntN(10)))}
	case "checkout":
		active := 1 + rng.IntN(4)
		return logPlan{sev: log.SeverityDebug, body: attribute.StringValue(fmt.Sprintf(
			`{"level":"DEBUG","logger":"com.zaxxer.hikari.pool.HikariPool","message":"HikariPool-1 - Pool stats (total=10, active=%d, idle=%d, waiting=0)"}`, active, 10-active))}
	case "payment":
		return logPlan{sev: log.SeverityInfo, body: attribute.MapValue(
			attribute.String("msg", "settlement batch flushed"),
			attribute.Int("batch_size", 1+rng.IntN(30)),
			attribute.Int64("queue_depth", sample.queue),
		)}
	}
	return logPlan{sev: log.SeverityInfo, body: r.plan.styled(s.spec, log.SeverityInfo, "prompt cache stats",
		"hit_ratio", fmt.Sprintf("%.2f", 0.3+0.3*rng.Float64()), "queue_depth", fmt.Sprint(sample.queue))}
}

// emitLog writes a log record of s at time at; ctx decides whether it carries a
// trace and span id.
func emitLog(ctx context.Context, s *service, at time.Time, l logPlan) {
	var rec log.Record
	rec.SetTimestamp(at)
	rec.SetObservedTimestamp(at)
	rec.SetSeverity(l.sev)
	rec.SetSeverityText(severityText(s.spec.lang, l.sev))
	rec.SetBody(l.body)
	rec.AddAttributes(l.attrs...)
	s.logger.Emit(ctx, rec)
}

// uuid is a random (version 4) UUID drawn from rng.
func uuid(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
