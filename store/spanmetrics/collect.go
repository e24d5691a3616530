package spanmetrics

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the Aggregator's self-monitoring metrics, for Outpost's
// /metrics: its series, its waiting edges, and what it dropped.
func (a *Aggregator) Collectors() []prometheus.Collector {
	gauge := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(a.Stats()) })
	}
	counter := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(a.Stats()) })
	}
	return []prometheus.Collector{
		gauge("outpost_span_metrics_series", "Span-metrics series and service-graph edges held in memory.",
			func(s Stats) float64 { return float64(s.Series) }),
		gauge("outpost_span_metrics_pending_edges", "Halves of service-graph edges waiting for the other half.",
			func(s Stats) float64 { return float64(s.PendingEdges) }),
		counter("outpost_span_metrics_dropped_spans_total", "Spans not counted in span metrics because the series cap was reached.",
			func(s Stats) float64 { return float64(s.DroppedSpans) }),
		counter("outpost_span_metrics_dropped_edges_total", "Service-graph edges not counted because a cap was reached.",
			func(s Stats) float64 { return float64(s.DroppedEdges) }),
		counter("outpost_span_metrics_expired_edges_total", "Halves of service-graph edges whose other half did not arrive in time.",
			func(s Stats) float64 { return float64(s.ExpiredEdges) }),
		counter("outpost_span_metrics_flush_errors_total", "Failed writes of span metrics to the TSDB.",
			func(s Stats) float64 { return float64(s.FlushErrors) }),
	}
}
