package ingest

import "github.com/prometheus/client_golang/prometheus"

// receiverMetrics are the receiver's self-monitoring series on /metrics.
type receiverMetrics struct {
	requests         *prometheus.CounterVec
	rejectedRequests *prometheus.CounterVec
	items            *prometheus.CounterVec
	rejectedItems    *prometheus.CounterVec
	duration         *prometheus.HistogramVec
}

func newReceiverMetrics(reg prometheus.Registerer) *receiverMetrics {
	m := &receiverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_ingest_requests_total",
			Help: "OTLP export requests by signal, transport and status code (HTTP status, or gRPC code name).",
		}, []string{"signal", "transport", "code"}),
		rejectedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_ingest_rejected_requests_total",
			Help: "OTLP export requests refused as a whole, by signal and reason.",
		}, []string{"signal", "reason"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_ingest_accepted_items_total",
			Help: "Data points, log records or spans accepted and stored, by signal.",
		}, []string{"signal"}),
		rejectedItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_ingest_rejected_items_total",
			Help: "Data points, log records or spans refused inside accepted requests (OTLP partial success), by signal.",
		}, []string{"signal"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outpost_ingest_request_duration_seconds",
			Help:    "Time to decode, store and answer an OTLP export request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"signal", "transport"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.rejectedRequests, m.items, m.rejectedItems, m.duration)
	}
	return m
}
