package logindex

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors returns the index's self-monitoring metrics (outpost_logs_…) for a
// Prometheus registry. They are cheap to read: no directory walk, unlike Stats.
func (ix *Index) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "outpost_logs_pending_records",
			Help: "Log records acknowledged but not yet indexed; writes are refused with a retryable error beyond MaxPendingRecords.",
		}, func() float64 { return float64(ix.pending.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "outpost_logs_persist_wait_seconds_total",
			Help: "Time log indexing has waited for Bleve to persist its in-memory segments (while its merger lags behind).",
		}, func() float64 { return time.Duration(ix.persistWait.Load()).Seconds() }),
	}
}
