package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// instruments are one service's metric instruments. Names and units follow the
// OpenTelemetry semantic conventions where one exists; app.* names are the shop's own.
type instruments struct {
	serverDuration metric.Float64Histogram // http.server.request.duration
	serverRequests metric.Int64Counter     // app.http.server.requests
	clientDuration metric.Float64Histogram // http.client.request.duration
	dbDuration     metric.Float64Histogram // db.client.operation.duration
	tokenUsage     metric.Int64Histogram   // gen_ai.client.token.usage
	genaiDuration  metric.Float64Histogram // gen_ai.client.operation.duration
	genaiCost      metric.Float64Counter   // app.gen_ai.cost
}

// Bucket boundaries advised by the semantic conventions for durations in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

var tokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144}

func newInstruments(m metric.Meter, h *hostState) (instruments, error) {
	var in instruments
	var errs [10]error
	in.serverDuration, errs[0] = m.Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP server requests."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.serverRequests, errs[1] = m.Int64Counter("app.http.server.requests",
		metric.WithUnit("{request}"), metric.WithDescription("HTTP requests served."))
	in.clientDuration, errs[2] = m.Float64Histogram("http.client.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP client requests."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.dbDuration, errs[3] = m.Float64Histogram("db.client.operation.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of database client operations."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10))
	in.tokenUsage, errs[4] = m.Int64Histogram("gen_ai.client.token.usage",
		metric.WithUnit("{token}"), metric.WithDescription("Number of input and output tokens used."),
		metric.WithExplicitBucketBoundaries(tokenBuckets...))
	in.genaiDuration, errs[5] = m.Float64Histogram("gen_ai.client.operation.duration",
		metric.WithUnit("s"), metric.WithDescription("GenAI operation duration."),
		metric.WithExplicitBucketBoundaries(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92))
	in.genaiCost, errs[6] = m.Float64Counter("app.gen_ai.cost",
		metric.WithUnit("USD"), metric.WithDescription("Estimated cost of LLM calls at list prices."))

	cpu, err := m.Float64ObservableGauge("process.cpu.utilization",
		metric.WithUnit("1"), metric.WithDescription("CPU used by the service process, from 0 to 1 of the CPUs available to it."))
	errs[7] = err
	mem, err := m.Int64ObservableUpDownCounter("process.memory.usage",
		metric.WithUnit("By"), metric.WithDescription("Resident memory of the service process."))
	errs[8] = err
	queue, err := m.Int64ObservableGauge("app.queue.depth",
		metric.WithUnit("{message}"), metric.WithDescription("Messages waiting in the service's work queue."))
	errs[9] = err
	for i, err := range errs {
		if err != nil {
			return in, fmt.Errorf("cannot create instrument %d: %w", i, err)
		}
	}
	queueAttrs := metric.WithAttributes(attribute.String("queue.name", h.queueName))
	memAttrs := metric.WithAttributes(attribute.String("process.memory.type", "rss"))
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := h.read()
		o.ObserveFloat64(cpu, s.cpu)
		o.ObserveInt64(mem, s.memory, memAttrs)
		if h.queueName != "" {
			o.ObserveInt64(queue, s.queue, queueAttrs)
		}
		return nil
	}, cpu, mem, queue)
	if err != nil {
		return in, fmt.Errorf("cannot register host metrics callback: %w", err)
	}
	return in, nil
}

// hostSample is what the host-like gauges report.
type hostSample struct {
	cpu    float64 // 0–1
	memory int64   // bytes
	queue  int64   // messages
}

// hostState models the host of one service: CPU follows the request rate, memory
// grows and is collected like a garbage-collected heap, and the work queue builds
// up when the service is slowed down. The run loop updates it; the SDK's metric
// reader goroutine reads it, hence the mutex.
type hostState struct {
	queueName string // empty when the service has no work queue

	// Model parameters, fixed at creation.
	cpuBase, cpuPerRequest float64
	memBase, memPerRequest float64 // bytes
	memLimit               float64 // heap size that triggers a collection

	// Owned by the run loop.
	rate  float64 // requests per second, smoothed
	heap  float64
	depth float64

	mu  sync.Mutex
	cur hostSample
}

func (h *hostState) read() hostSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// tick advances the model by dt seconds in which the service served requests;
// slow is the latency multiplier of an active fault (1 when healthy).
func (h *hostState) tick(rng *rand.Rand, dt float64, requests int, slow float64) {
	if dt <= 0 {
		return
	}
	alpha := 1 - math.Exp(-dt/10) // ten-second smoothing
	h.rate += alpha * (float64(requests)/dt - h.rate)

	cpu := h.cpuBase + h.cpuPerRequest*h.rate + 0.02*rng.NormFloat64()
	if slow > 1 {
		cpu += 0.05 * math.Min(slow, 10) // a slow service burns CPU (lock contention, retries)
	}
	cpu = math.Min(0.99, math.Max(0.01, cpu))

	h.heap += dt*h.memPerRequest*h.rate + dt*4096*(1+rng.Float64()) // request garbage + a slow leak
	if h.heap > h.memLimit {
		h.heap = h.memLimit * (0.3 + 0.1*rng.Float64()) // collected
	}

	if h.queueName != "" {
		capacity := 1.2 * h.rate / slow // a slowed service drains its queue slower
		h.depth = math.Max(0, h.depth+dt*(h.rate-capacity)+2*rng.NormFloat64())
		if slow <= 1 {
			h.depth *= math.Exp(-dt / 15) // healthy services catch up
		}
	}

	h.mu.Lock()
	h.cur = hostSample{cpu: cpu, memory: int64(h.memBase + h.heap), queue: int64(h.depth)}
	h.mu.Unlock()
}
