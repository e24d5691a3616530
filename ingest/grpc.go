package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	s.RegisterService(otlpService("opentelemetry.proto.collector.metrics.v1.MetricsService", "opentelemetry/proto/collector/metrics/v1/metrics_service.proto"),
		&grpcSignal{r, r.decodeMetrics})
	s.RegisterService(otlpService("opentelemetry.proto.collector.logs.v1.LogsService", "opentelemetry/proto/collector/logs/v1/logs_service.proto"),
		&grpcSignal{r, decodeLogs})
	s.RegisterService(otlpService("opentelemetry.proto.collector.trace.v1.TraceService", "opentelemetry/proto/collector/trace/v1/trace_service.proto"),
		&grpcSignal{r, decodeTraces})
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

// The three services are registered by hand, not with pdata's helpers, so
// that a request reaches the same decoding as over HTTP as bytes: a metrics
// request is then read on the wire (see decodeMetrics), and a malformed one of
// any signal gets InvalidArgument (gRPC's own decoding answers Internal).
// pdata registers gRPC's "proto" codec for any message with the methods of
// wireMessage, which hands it the request's bytes and takes the response's.

// otlpService describes the OTLP service name, whose one method is Export.
func otlpService(name, file string) *grpc.ServiceDesc {
	method := "/" + name + "/Export"
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*grpcExporter)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Export", Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &wireMessage{}
			if err := dec(in); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, req any) (any, error) {
				return srv.(grpcExporter).export(ctx, req.(*wireMessage))
			}
			if interceptor == nil {
				return handler(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handler)
		}}},
		Metadata: file,
	}
}

type grpcExporter interface {
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

// grpcSignal serves the Export method of one signal's service with decode,
// the signal's HTTP decoding of protobuf.
type grpcSignal struct {
	r      *Receiver
	decode func(body []byte, json bool) (decoded, error)
}

func (g *grpcSignal) export(ctx context.Context, req *wireMessage) (*wireMessage, error) {
	d, err := g.decode(req.b, false)
	if err != nil {
		return nil, grpcError(d.malformed(false, err))
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
