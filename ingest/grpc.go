package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
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
	s.RegisterService(&metricsServiceDesc, &grpcMetrics{r: r})
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

// The metrics service is registered by hand, not with pmetricotlp, so that a
// request reaches decodeMetrics as bytes and is read on the wire as over
// HTTP. pdata registers gRPC's "proto" codec for any message with the methods
// of wireMessage, which wireMessage has: the codec hands it the request's
// bytes and takes the response's.
var metricsServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.metrics.v1.MetricsService",
	HandlerType: (*metricsExporter)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: exportMetricsHandler}},
	Metadata:    "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
}

type metricsExporter interface {
	export(ctx context.Context, req *wireMessage) (*wireMessage, error)
}

// wireMessage is a protobuf message kept encoded: a request as it came (a copy:
// the codec reuses its buffer) or a response as it goes.
type wireMessage struct{ b []byte }

func (m *wireMessage) UnmarshalProto(b []byte) error {
	m.b = append(m.b[:0], b...)
	return nil
}
func (m *wireMessage) SizeProto() int              { return len(m.b) }
func (m *wireMessage) MarshalProto(buf []byte) int { return copy(buf, m.b) }

const exportMetricsMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

func exportMetricsHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &wireMessage{}
	if err := dec(in); err != nil {
		return nil, err
	}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(metricsExporter).export(ctx, req.(*wireMessage))
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: exportMetricsMethod}, handler)
}

type grpcMetrics struct{ r *Receiver }

func (g *grpcMetrics) export(ctx context.Context, req *wireMessage) (*wireMessage, error) {
	d, err := g.r.decodeMetrics(req.b, false)
	if err != nil {
		return nil, grpcError(errorf(kindMalformed, "cannot decode protobuf metrics request: %v", err))
	}
	n, msg, rerr := g.r.export(ctx, d.batch)
	if rerr != nil {
		return nil, grpcError(rerr)
	}
	b, err := d.respond(n, msg, false)
	if err != nil {
		return nil, grpcError(errorf(kindUnavailable, "cannot encode response: %v", err))
	}
	return &wireMessage{b: b}, nil
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
