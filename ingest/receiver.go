package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/store"
)

// Consumer takes decoded batches: the store's write path.
type Consumer interface {
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (store.Result, error)
	ConsumeLogs(ctx context.Context, ld plog.Logs) (store.Result, error)
	ConsumeTraces(ctx context.Context, td ptrace.Traces) (store.Result, error)
}

// Options configure a Receiver. A nil *Options means all defaults.
type Options struct {
	// Logger receives the receiver's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer gets the receiver's self-monitoring metrics. Nil means none are registered.
	Registerer prometheus.Registerer

	// MaxRequestBytes caps a request body as sent (compressed). Zero means 8 MiB.
	MaxRequestBytes int64
	// MaxDecompressedBytes caps a request body after decompression, and a gRPC
	// message. Zero means 32 MiB.
	MaxDecompressedBytes int64
	// MaxConcurrentRequests caps requests being decoded and stored at once, over
	// both transports; more get 429 / RESOURCE_EXHAUSTED. Zero means 32.
	MaxConcurrentRequests int
	// MaxAttributes caps the attributes of one record (data point, log record,
	// span) and of one resource or scope; records over it are rejected through
	// partial success, the rest of the request is stored. Zero means 128.
	MaxAttributes int
	// RetryAfter is what overloaded answers tell clients to wait. Zero means 1 s.
	RetryAfter time.Duration
	// Token, when not empty, must be sent as "Authorization: Bearer <Token>".
	Token string
}

func (o *Options) withDefaults() Options {
	r := Options{}
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.MaxRequestBytes <= 0 {
		r.MaxRequestBytes = 8 << 20
	}
	if r.MaxDecompressedBytes <= 0 {
		r.MaxDecompressedBytes = 32 << 20
	}
	if r.MaxConcurrentRequests <= 0 {
		r.MaxConcurrentRequests = 32
	}
	if r.MaxAttributes <= 0 {
		r.MaxAttributes = 128
	}
	if r.RetryAfter <= 0 {
		r.RetryAfter = time.Second
	}
	return r
}

// Receiver serves OTLP over HTTP (Handler) and gRPC (RegisterGRPC).
type Receiver struct {
	opts     Options
	consumer Consumer
	slots    chan struct{}
	m        *receiverMetrics
}

// NewReceiver returns a receiver that hands batches to c.
func NewReceiver(c Consumer, opts *Options) *Receiver {
	o := opts.withDefaults()
	return &Receiver{
		opts:     o,
		consumer: c,
		slots:    make(chan struct{}, o.MaxConcurrentRequests),
		m:        newReceiverMetrics(o.Registerer),
	}
}

// acquire takes a request slot without waiting: a full receiver answers at once
// with a retryable error rather than queueing without bound.
func (r *Receiver) acquire() bool {
	select {
	case r.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *Receiver) release() { <-r.slots }

// kind classifies a failed request, for the status code and the metrics.
type kind string

const (
	kindMalformed   kind = "malformed"
	kindTooLarge    kind = "too_large"
	kindMediaType   kind = "unsupported_media_type"
	kindMethod      kind = "method_not_allowed"
	kindUnauth      kind = "unauthorized"
	kindOverloaded  kind = "overloaded"
	kindUnavailable kind = "unavailable"
)

// requestError is a failed request: what kind, and a message for the client.
type requestError struct {
	kind       kind
	msg        string
	retryAfter time.Duration
}

func (e *requestError) Error() string { return e.msg }

func errorf(k kind, format string, args ...any) *requestError {
	return &requestError{kind: k, msg: fmt.Sprintf(format, args...)}
}

// batch is one decoded request of any signal.
type batch interface {
	signal() store.Signal
	// enforceLimits removes the records over the attribute limit or with invalid
	// UTF-8, and says how many and why.
	enforceLimits(max int) (rejected int64, reason string)
	consume(ctx context.Context, c Consumer) (store.Result, error)
}

// export runs the part shared by both transports: limits, the write path, and
// turning the outcome into rejected counts or a request error.
func (r *Receiver) export(ctx context.Context, b batch) (rejected int64, msg string, rerr *requestError) {
	limRejected, limReason := b.enforceLimits(r.opts.MaxAttributes)
	res, err := b.consume(ctx, r.consumer)
	if err != nil {
		var ra interface{ RetryAfter() time.Duration }
		switch {
		case errors.As(err, &ra):
			d := ra.RetryAfter()
			if d <= 0 {
				d = r.opts.RetryAfter
			}
			return 0, "", &requestError{kind: kindOverloaded, msg: err.Error(), retryAfter: d}
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return 0, "", &requestError{kind: kindUnavailable, msg: "request cancelled before it was stored: " + err.Error(), retryAfter: r.opts.RetryAfter}
		default:
			r.opts.Logger.Error("cannot store batch", "signal", b.signal(), "err", err)
			return 0, "", &requestError{kind: kindUnavailable, msg: err.Error(), retryAfter: r.opts.RetryAfter}
		}
	}
	r.m.items.WithLabelValues(b.signal().String()).Add(float64(res.Accepted))
	rejected = limRejected + res.Rejected
	if rejected > 0 {
		r.m.rejectedItems.WithLabelValues(b.signal().String()).Add(float64(rejected))
		switch {
		case limRejected > 0 && res.Rejected > 0:
			msg = limReason + "; " + res.Reason
		case limRejected > 0:
			msg = limReason
		default:
			msg = res.Reason
		}
	}
	return rejected, msg, nil
}
