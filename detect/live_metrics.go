package detect

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the engine's self-monitoring metrics (outpost_detect_…) for
// a Prometheus registry.
func (l *Live) Collectors() []prometheus.Collector {
	gauge := func(name, help string, f func(LiveStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(l.Stats()) })
	}
	counter := func(name, help string, f func(LiveStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(l.Stats()) })
	}
	return []prometheus.Collector{
		gauge("outpost_detect_tracked_series", "Metric series the anomaly detector watches now.",
			func(s LiveStats) float64 { return float64(s.Tracked) }),
		gauge("outpost_detect_queued_samples", "Samples waiting to be scored by the anomaly detector.",
			func(s LiveStats) float64 { return float64(s.Queued) }),
		gauge("outpost_detect_anomalies", "Series listed as anomalous now or in the last day.",
			func(s LiveStats) float64 { return float64(s.Anomalies) }),
		counter("outpost_detect_scored_samples_total", "Metric samples scored by the anomaly detector.",
			func(s LiveStats) float64 { return float64(s.Processed) }),
		counter("outpost_detect_scores_total", "Detector runs: one per watched series and resolution step (a minute by default), or one per sample for series sampled less often.",
			func(s LiveStats) float64 { return float64(s.Scored) }),
		counter("outpost_detect_dropped_samples_total", "Metric samples not scored because the detector's queue was full.",
			func(s LiveStats) float64 { return float64(s.Dropped) }),
		counter("outpost_detect_written_samples_total", "Anomaly score and expected band samples written to the TSDB.",
			func(s LiveStats) float64 { return float64(s.Written) }),
		counter("outpost_detect_untracked_samples_total", "Samples of new series the anomaly detector does not watch because as many series as its cap are active.",
			func(s LiveStats) float64 { return float64(s.Untracked) }),
		counter("outpost_detect_write_errors_total", "Failed commits of anomaly scores and bands.",
			func(s LiveStats) float64 { return float64(s.WriteErrors) }),
	}
}
