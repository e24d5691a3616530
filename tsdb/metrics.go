package tsdb

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the DB's self-monitoring metrics (outpost_tsdb_…) for a
// Prometheus registry, read from Stats once per scrape.
func (db *DB) Collectors() []prometheus.Collector {
	return []prometheus.Collector{statsCollector{db}}
}

type statsCollector struct{ db *DB }

type statsMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Stats) float64
}

func newStatsMetric(name, help string, kind prometheus.ValueType, value func(Stats) float64) statsMetric {
	return statsMetric{prometheus.NewDesc(name, help, nil, nil), kind, value}
}

var statsMetrics = []statsMetric{
	newStatsMetric("outpost_tsdb_series", "Series the TSDB knows (in the head or in partitions).", prometheus.GaugeValue,
		func(s Stats) float64 { return float64(s.Series) }),
	newStatsMetric("outpost_tsdb_head_samples", "Samples in memory not yet written to partitions.", prometheus.GaugeValue,
		func(s Stats) float64 { return float64(s.HeadSamples) }),
	newStatsMetric("outpost_tsdb_partitions", "Partition files.", prometheus.GaugeValue,
		func(s Stats) float64 { return float64(s.Partitions) }),
	newStatsMetric("outpost_tsdb_partition_bytes", "Size of the partition files.", prometheus.GaugeValue,
		func(s Stats) float64 { return float64(s.PartitionBytes) }),
	newStatsMetric("outpost_tsdb_samples_appended_total", "Samples accepted.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.SamplesAppended) }),
	newStatsMetric("outpost_tsdb_out_of_order_rejected_total", "Samples refused: older than the out-of-order window.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.OutOfOrderRejected) }),
	newStatsMetric("outpost_tsdb_too_old_rejected_total", "Samples refused: older than the retention.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.TooOldRejected) }),
	newStatsMetric("outpost_tsdb_head_flushes_total", "Flushes of the head into partitions.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.Flushes) }),
	newStatsMetric("outpost_tsdb_merges_total", "Merges of partitions.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.Merges) }),
	newStatsMetric("outpost_tsdb_retention_dropped_partitions_total", "Partitions deleted by the retention.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.RetentionDropped) }),
	newStatsMetric("outpost_tsdb_quarantined_partitions_total", "Corrupt partitions moved to quarantine.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.QuarantinedParts) }),
	newStatsMetric("outpost_tsdb_series_collected_total", "Series removed from memory once retention or quarantine deleted their last sample.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.SeriesCollected) }),
	newStatsMetric("outpost_tsdb_wal_corruptions_total", "Damaged WAL segments found (and cut) when the TSDB was opened.", prometheus.CounterValue,
		func(s Stats) float64 { return float64(s.WALCorruptions) }),
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range statsMetrics {
		ch <- m.desc
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.db.Stats()
	for _, m := range statsMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st))
	}
}
