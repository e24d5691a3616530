package store

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/internal/otlpwire"
)

// The narrow interfaces through which the write path hands decoded OTLP batches to
// the three stores and to the detector tap. The stores live in their own packages
// (tsdb, logindex, traceindex) and never import store: they satisfy these interfaces
// structurally, so they use only pdata, standard types and internal/otlpwire.
//
// Every Write method has the same contract:
//
//   - It returns only once what it accepted is durable (survives kill -9): an
//     acknowledged request is never lost.
//   - rejected counts the items (data points, log records, spans) it refused, with a
//     human-readable reason; the rest of the batch is stored (OTLP partial success).
//   - A non-nil error means nothing of the batch was stored. An error that has a
//     method RetryAfter() time.Duration is back-pressure (a full queue, a full
//     disk, a cardinality cap): the client is told to retry after that long.
//     Any other error is reported as unavailable, also retryable.
//   - The batch belongs to the caller: the backend must not keep references to it
//     after the call returns.

// MetricsBackend stores metric data points (the tsdb package).
type MetricsBackend interface {
	WriteMetrics(ctx context.Context, md pmetric.Metrics) (rejected int64, reason string, err error)
	Close() error
}

// WireMetricsBackend is a MetricsBackend that also stores a metrics request in
// its protobuf wire form, one otlpwire.Scan accepted, as WriteMetrics would
// store it decoded (the tsdb package), with the same contract.
type WireMetricsBackend interface {
	MetricsBackend
	WriteMetricsWire(ctx context.Context, m *otlpwire.Metrics) (rejected int64, reason string, err error)
}

// LogsBackend stores log records (the logindex package).
type LogsBackend interface {
	WriteLogs(ctx context.Context, ld plog.Logs) (rejected int64, reason string, err error)
	Close() error
}

// TracesBackend stores spans (the traceindex package).
type TracesBackend interface {
	WriteTraces(ctx context.Context, td ptrace.Traces) (rejected int64, reason string, err error)
	Close() error
}

// Tap sees every batch after it was stored: the detectors. A tap must be quick
// (queue work, do not do it inline), must not modify the batch and must not keep
// references to it after the call returns.
type Tap interface {
	TapMetrics(md pmetric.Metrics)
	TapLogs(ld plog.Logs)
	TapTraces(td ptrace.Traces)
}

// MetricsBlindTap is a Tap whose TapMetrics does nothing: a metrics request
// read on the wire is not decoded for it.
type MetricsBlindTap interface {
	Tap
	IgnoresMetrics()
}

// retryAfterError is what a backend's back-pressure error looks like.
type retryAfterError interface {
	error
	RetryAfter() time.Duration
}
