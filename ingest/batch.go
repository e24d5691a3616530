package ingest

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/internal/otlpwire"
	"outpost/store"
)

type metricsBatch struct{ md pmetric.Metrics }

// wireMetricsBatch is a metrics request not decoded (see decodeMetrics).
type wireMetricsBatch struct{ m *otlpwire.Metrics }

// WireConsumer is a Consumer that also takes metrics requests on the wire
// (the store does); to any other, they are decoded.
type WireConsumer interface {
	ConsumeMetricsWire(ctx context.Context, m *otlpwire.Metrics) (store.Result, error)
}

func (wireMetricsBatch) signal() store.Signal { return store.Metrics }

func (b wireMetricsBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	defer b.m.Release()
	if wc, ok := c.(WireConsumer); ok {
		return wc.ConsumeMetricsWire(ctx, b.m)
	}
	md, err := b.m.Decode()
	if err != nil { // Scan accepted it: this does not happen
		return store.Result{}, err
	}
	return c.ConsumeMetrics(ctx, md)
}

// enforceLimits has nothing to do: otlpwire.Scan accepts only a request that
// passes the checks.
func (wireMetricsBatch) enforceLimits(int) (int64, string) { return 0, "" }

type logsBatch struct{ ld plog.Logs }
type tracesBatch struct{ td ptrace.Traces }

func (metricsBatch) signal() store.Signal { return store.Metrics }
func (logsBatch) signal() store.Signal    { return store.Logs }
func (tracesBatch) signal() store.Signal  { return store.Traces }

func (b metricsBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	return c.ConsumeMetrics(ctx, b.md)
}
func (b logsBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	return c.ConsumeLogs(ctx, b.ld)
}
func (b tracesBatch) consume(ctx context.Context, c Consumer) (store.Result, error) {
	return c.ConsumeTraces(ctx, b.td)
}

// checker finds records that must not be stored: too many attributes on the
// record, its scope or its resource, or text that is not valid UTF-8 (protobuf
// requires it, and every store and page downstream relies on it). It counts what
// it rejects by reason.
type checker struct {
	max              int
	tooMany, badUTF8 int64
}

// problem says what is wrong with one level: 0 when nothing.
type problem int

const (
	fine problem = iota
	tooManyAttrs
	invalidUTF8
)

// check looks at the attributes and the strings of one record, scope or resource.
func (c *checker) check(attrs pcommon.Map, strs ...string) problem {
	if attrs.Len() > c.max {
		return tooManyAttrs
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return invalidUTF8
		}
	}
	if !validMap(attrs) {
		return invalidUTF8
	}
	return fine
}

// reject counts n records refused for p; it reports whether p is a problem.
func (c *checker) reject(p problem, n int) bool {
	switch p {
	case tooManyAttrs:
		c.tooMany += int64(n)
	case invalidUTF8:
		c.badUTF8 += int64(n)
	default:
		return false
	}
	return true
}

func (c *checker) result(what string) (int64, string) {
	var reasons []string
	if c.tooMany > 0 {
		reasons = append(reasons, fmt.Sprintf("%d %s rejected: more than %d attributes on the record, its scope or its resource", c.tooMany, what, c.max))
	}
	if c.badUTF8 > 0 {
		reasons = append(reasons, fmt.Sprintf("%d %s rejected: text that is not valid UTF-8", c.badUTF8, what))
	}
	return c.tooMany + c.badUTF8, strings.Join(reasons, "; ")
}

func validMap(m pcommon.Map) bool {
	ok := true
	m.Range(func(k string, v pcommon.Value) bool {
		ok = utf8.ValidString(k) && validValue(v)
		return ok
	})
	return ok
}

func validValue(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return utf8.ValidString(v.Str())
	case pcommon.ValueTypeMap:
		return validMap(v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if !validValue(s.At(i)) {
				return false
			}
		}
	}
	return true
}

func (b logsBatch) enforceLimits(max int) (int64, string) {
	c := checker{max: max}
	b.ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		if c.reject(c.check(rl.Resource().Attributes()), countLogs(rl)) {
			return true
		}
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sc := sl.Scope()
			if c.reject(c.check(sc.Attributes(), sc.Name(), sc.Version()), sl.LogRecords().Len()) {
				return true
			}
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				p := c.check(lr.Attributes(), lr.SeverityText(), lr.EventName())
				if p == fine && !validValue(lr.Body()) {
					p = invalidUTF8
				}
				return c.reject(p, 1)
			})
			return false
		})
		return false
	})
	return c.result("log records")
}

func countLogs(rl plog.ResourceLogs) int {
	n := 0
	for i := 0; i < rl.ScopeLogs().Len(); i++ {
		n += rl.ScopeLogs().At(i).LogRecords().Len()
	}
	return n
}

func (b tracesBatch) enforceLimits(max int) (int64, string) {
	c := checker{max: max}
	b.td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		n := 0
		for i := 0; i < rs.ScopeSpans().Len(); i++ {
			n += rs.ScopeSpans().At(i).Spans().Len()
		}
		if c.reject(c.check(rs.Resource().Attributes()), n) {
			return true
		}
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			sc := ss.Scope()
			if c.reject(c.check(sc.Attributes(), sc.Name(), sc.Version()), ss.Spans().Len()) {
				return true
			}
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				return c.reject(spanProblem(&c, sp), 1)
			})
			return false
		})
		return false
	})
	return c.result("spans")
}

func spanProblem(c *checker, sp ptrace.Span) problem {
	if p := c.check(sp.Attributes(), sp.Name(), sp.Status().Message(), sp.TraceState().AsRaw()); p != fine {
		return p
	}
	for i := 0; i < sp.Events().Len(); i++ {
		if p := c.check(sp.Events().At(i).Attributes(), sp.Events().At(i).Name()); p != fine {
			return p
		}
	}
	for i := 0; i < sp.Links().Len(); i++ {
		if p := c.check(sp.Links().At(i).Attributes(), sp.Links().At(i).TraceState().AsRaw()); p != fine {
			return p
		}
	}
	return fine
}

func (b metricsBatch) enforceLimits(max int) (int64, string) {
	c := checker{max: max}
	b.md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		n := 0
		for i := 0; i < rm.ScopeMetrics().Len(); i++ {
			n += scopePoints(rm.ScopeMetrics().At(i))
		}
		if c.reject(c.check(rm.Resource().Attributes()), n) {
			return true
		}
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sc := sm.Scope()
			if c.reject(c.check(sc.Attributes(), sc.Name(), sc.Version()), scopePoints(sm)) {
				return true
			}
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				if c.reject(c.check(m.Metadata(), m.Name(), m.Description(), m.Unit()), store.PointCount(m)) {
					return true
				}
				removePoints(&c, m)
				return store.PointCount(m) == 0
			})
			return false
		})
		return false
	})
	return c.result("data points")
}

func scopePoints(sm pmetric.ScopeMetrics) int {
	n := 0
	for j := 0; j < sm.Metrics().Len(); j++ {
		n += store.PointCount(sm.Metrics().At(j))
	}
	return n
}

// removePoints drops the data points of m that fail the checks.
func removePoints(c *checker, m pmetric.Metric) {
	bad := func(a pcommon.Map) bool { return c.reject(c.check(a), 1) }
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool { return bad(p.Attributes()) })
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(p pmetric.NumberDataPoint) bool { return bad(p.Attributes()) })
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(p pmetric.HistogramDataPoint) bool { return bad(p.Attributes()) })
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(p pmetric.ExponentialHistogramDataPoint) bool { return bad(p.Attributes()) })
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(p pmetric.SummaryDataPoint) bool { return bad(p.Attributes()) })
	}
}
