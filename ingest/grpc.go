package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// NewGRPCServer returns a gRPC server with the OTLP metrics, logs and traces
// services registered and the receiver's limits applied.
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(r.opts.MaxDecompressedBytes)),
		grpc.UnaryInterceptor(r.unaryInterceptor),
	}, opts...)
	s := grpc.NewServer(opts...)
	pmetricotlp.RegisterGRPCServer(s, &grpcMetrics{r: r})
	plogotlp.RegisterGRPCServer(s, &grpcLogs{r: r})
	ptraceotlp.RegisterGRPCServer(s, &grpcTraces{r: r})
	return s
}

// unaryInterceptor checks the token and the concurrency limit, and counts.
func (r *Receiver) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	signal := "unknown"
	switch {
	case strings.Contains(info.FullMethod, "MetricsService"):
		signal = "metrics"
	case strings.Contains(info.FullMethod, "LogsService"):
		signal = "logs"
	case strings.Contains(info.FullMethod, "TraceService"):
		signal = "traces"
	}
	resp, err := r.guard(ctx, req, handler)
	st, _ := status.FromError(err)
	r.m.requests.WithLabelValues(signal, "grpc", st.Code().String()).Inc()
	r.m.duration.WithLabelValues(signal, "grpc").Observe(time.Since(start).Seconds())
	if err != nil {
		r.m.rejectedRequests.WithLabelValues(signal, grpcReason(st.Code())).Inc()
	}
	return resp, err
}

func (r *Receiver) guard(ctx context.Context, req any, handler grpc.UnaryHandler) (any, error) {
	if r.opts.Token != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		var auth string
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
		if !r.authorized(auth) {
			return nil, status.Error(codes.Unauthenticated, "missing or wrong bearer token")
		}
	}
	if !r.acquire() {
		return nil, grpcError(&requestError{kind: kindOverloaded, msg: fmt.Sprintf("too many concurrent requests (limit %d); retry later", r.opts.MaxConcurrentRequests), retryAfter: r.opts.RetryAfter})
	}
	defer r.release()
	return handler(ctx, req)
}

func grpcReason(c codes.Code) string {
	switch c {
	case codes.InvalidArgument:
		return string(kindMalformed)
	case codes.ResourceExhausted:
		return string(kindOverloaded)
	case codes.Unauthenticated:
		return string(kindUnauth)
	}
	return string(kindUnavailable)
}

// grpcError turns a request error into a status; retryable ones carry RetryInfo,
// which OTLP clients need to retry RESOURCE_EXHAUSTED.
func grpcError(e *requestError) error {
	code := codes.Unavailable
	switch e.kind {
	case kindMalformed, kindTooLarge, kindMediaType:
		code = codes.InvalidArgument
	case kindUnauth:
		code = codes.Unauthenticated
	case kindOverloaded:
		code = codes.ResourceExhausted
	}
	st := status.New(code, e.msg)
	if e.retryAfter > 0 {
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.retryAfter)}); err == nil {
			st = withInfo
		}
	}
	return st.Err()
}

type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	resp := pmetricotlp.NewExportResponse()
	n, msg, err := g.r.export(ctx, metricsBatch{req.Metrics()})
	if err != nil {
		return resp, grpcError(err)
	}
	if n > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(n)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, nil
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	resp := plogotlp.NewExportResponse()
	n, msg, err := g.r.export(ctx, logsBatch{req.Logs()})
	if err != nil {
		return resp, grpcError(err)
	}
	if n > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(n)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, nil
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	n, msg, err := g.r.export(ctx, tracesBatch{req.Traces()})
	if err != nil {
		return resp, grpcError(err)
	}
	if n > 0 {
		resp.PartialSuccess().SetRejectedSpans(n)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, nil
}
