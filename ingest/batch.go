package ingest

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/store"
)

type metricsBatch struct{ md pmetric.Metrics }
type logsBatch struct{ ld plog.Logs }
type tracesBatch struct{ td ptrace.Traces }

func (metricsBatch) signal() store.Signal { return store.Metrics }
func (logsBatch) signal() store.Signal    { return store.Logs }
func (tracesBatch) signal() store.Signal  { return store.Traces }

func (b metricsBatch) items() int { return b.md.DataPointCount() }
func (b logsBatch) items() int    { return b.ld.LogRecordCount() }
func (b tracesBatch) items() int  { return b.td.SpanCount() }

func (b metricsBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	return c.ConsumeMetrics(ctx, b.md)
}
func (b logsBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	return c.ConsumeLogs(ctx, b.ld)
}
func (b tracesBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	return c.ConsumeTraces(ctx, b.td)
}

// limitReason says what was dropped for too many attributes.
func limitReason(n int64, what string, max int) string {
	return fmt.Sprintf("%d %s rejected: more than %d attributes on the record, its scope or its resource", n, what, max)
}

func (b logsBatch) enforceLimits(max int) (int64, string) {
	var n int64
	b.ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		if rl.Resource().Attributes().Len() > max {
			n += int64(countLogs(rl))
			return true
		}
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			if sl.Scope().Attributes().Len() > max {
				n += int64(sl.LogRecords().Len())
				return true
			}
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				if lr.Attributes().Len() > max {
					n++
					return true
				}
				return false
			})
			return false
		})
		return false
	})
	if n == 0 {
		return 0, ""
	}
	return n, limitReason(n, "log records", max)
}

func countLogs(rl plog.ResourceLogs) int {
	n := 0
	for i := 0; i < rl.ScopeLogs().Len(); i++ {
		n += rl.ScopeLogs().At(i).LogRecords().Len()
	}
	return n
}

func (b tracesBatch) enforceLimits(max int) (int64, string) {
	var n int64
	tooMany := func(m pcommon.Map) bool { return m.Len() > max }
	b.td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		if tooMany(rs.Resource().Attributes()) {
			for i := 0; i < rs.ScopeSpans().Len(); i++ {
				n += int64(rs.ScopeSpans().At(i).Spans().Len())
			}
			return true
		}
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			if tooMany(ss.Scope().Attributes()) {
				n += int64(ss.Spans().Len())
				return true
			}
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				if tooMany(sp.Attributes()) {
					n++
					return true
				}
				for i := 0; i < sp.Events().Len(); i++ {
					if tooMany(sp.Events().At(i).Attributes()) {
						n++
						return true
					}
				}
				for i := 0; i < sp.Links().Len(); i++ {
					if tooMany(sp.Links().At(i).Attributes()) {
						n++
						return true
					}
				}
				return false
			})
			return false
		})
		return false
	})
	if n == 0 {
		return 0, ""
	}
	return n, limitReason(n, "spans", max)
}

func (b metricsBatch) enforceLimits(max int) (int64, string) {
	var n int64
	b.md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		if rm.Resource().Attributes().Len() > max {
			for i := 0; i < rm.ScopeMetrics().Len(); i++ {
				ms := rm.ScopeMetrics().At(i).Metrics()
				for j := 0; j < ms.Len(); j++ {
					n += int64(store.PointCount(ms.At(j)))
				}
			}
			return true
		}
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			if sm.Scope().Attributes().Len() > max {
				for j := 0; j < sm.Metrics().Len(); j++ {
					n += int64(store.PointCount(sm.Metrics().At(j)))
				}
				return true
			}
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				n += int64(removePoints(m, max))
				return store.PointCount(m) == 0
			})
			return false
		})
		return false
	})
	if n == 0 {
		return 0, ""
	}
	return n, limitReason(n, "data points", max)
}

// removePoints drops the data points of m with more than max attributes.
func removePoints(m pmetric.Metric, max int) int {
	n := 0
	over := func(a pcommon.Map) bool {
		if a.Len() > max {
			n++
			return true
		}
		return false
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool { return over(p.Attributes()) })
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool { return over(p.Attributes()) })
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(p pmetric.HistogramDataPoint) bool { return over(p.Attributes()) })
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(p pmetric.ExponentialHistogramDataPoint) bool { return over(p.Attributes()) })
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(p pmetric.SummaryDataPoint) bool { return over(p.Attributes()) })
	}
	return n
}
