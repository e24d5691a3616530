package ingest

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"outpost/internal/otlpwire"
)

const (
	contentProto = "application/x-protobuf"
	contentJSON  = "application/json"
)

// Handler serves POST /v1/metrics, /v1/logs and /v1/traces.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/metrics", r.httpSignal("metrics", r.decodeMetrics))
	mux.Handle("/v1/logs", r.httpSignal("logs", decodeLogs))
	mux.Handle("/v1/traces", r.httpSignal("traces", decodeTraces))
	return mux
}

// decoded is a batch plus how to write the response for it.
type decoded struct {
	batch
	respond func(rejected int64, msg string, json bool) ([]byte, error)
}

// decodeMetrics decodes a metrics request. A protobuf request that passes the
// checks of enforceLimits as it is is not decoded whole: the store reads its
// gauges, sums and explicit-bucket histograms on the wire (see otlpwire), which
// costs a fraction of decoding them. Anything else is decoded with pdata.
func (r *Receiver) decodeMetrics(body []byte, json bool) (decoded, error) {
	if !json {
		if m, ok := otlpwire.Scan(body, r.opts.MaxAttributes); ok {
			return decoded{wireMetricsBatch{m}, respondMetrics}, nil
		}
	}
	req := pmetricotlp.NewExportRequest()
	var err error
	if json {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	return decoded{metricsBatch{req.Metrics()}, respondMetrics}, err
}

// malformed is the error for a request decode could not decode.
func (d decoded) malformed(json bool, err error) *requestError {
	format := "protobuf"
	if json {
		format = "JSON"
	}
	return errorf(kindMalformed, "cannot decode %s %s request: %v", format, d.signal(), err)
}

func respondMetrics(n int64, msg string, json bool) ([]byte, error) {
	resp := pmetricotlp.NewExportResponse()
	if n > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(n)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	if json {
		return resp.MarshalJSON()
	}
	return resp.MarshalProto()
}

func decodeLogs(body []byte, json bool) (decoded, error) {
	req := plogotlp.NewExportRequest()
	var err error
	if json {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	return decoded{logsBatch{req.Logs()}, func(n int64, msg string, json bool) ([]byte, error) {
		resp := plogotlp.NewExportResponse()
		if n > 0 {
			resp.PartialSuccess().SetRejectedLogRecords(n)
			resp.PartialSuccess().SetErrorMessage(msg)
		}
		if json {
			return resp.MarshalJSON()
		}
		return resp.MarshalProto()
	}}, err
}

func decodeTraces(body []byte, json bool) (decoded, error) {
	req := ptraceotlp.NewExportRequest()
	var err error
	if json {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	return decoded{tracesBatch{req.Traces()}, func(n int64, msg string, json bool) ([]byte, error) {
		resp := ptraceotlp.NewExportResponse()
		if n > 0 {
			resp.PartialSuccess().SetRejectedSpans(n)
			resp.PartialSuccess().SetErrorMessage(msg)
		}
		if json {
			return resp.MarshalJSON()
		}
		return resp.MarshalProto()
	}}, err
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (r *Receiver) httpSignal(signal string, decode func([]byte, bool) (decoded, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		code, k := r.serveHTTP(w, req, decode)
		r.m.requests.WithLabelValues(signal, "http", strconv.Itoa(code)).Inc()
		r.m.duration.WithLabelValues(signal, "http").Observe(time.Since(start).Seconds())
		if k != "" {
			r.m.rejectedRequests.WithLabelValues(signal, string(k)).Inc()
		}
	})
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request, decode func([]byte, bool) (decoded, error)) (int, kind) {
	json := false
	fail := func(e *requestError) (int, kind) {
		return writeHTTPError(w, e, json), e.kind
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(errorf(kindMethod, "method %s not allowed: OTLP/HTTP takes POST", req.Method))
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	switch mt {
	case contentProto:
	case contentJSON:
		json = true
	default:
		return fail(errorf(kindMediaType, "unsupported Content-Type %q: send %s or %s", req.Header.Get("Content-Type"), contentProto, contentJSON))
	}
	if !r.authorized(req.Header.Get("Authorization")) {
		return fail(errorf(kindUnauth, "missing or wrong bearer token"))
	}
	if !r.acquire() {
		return fail(&requestError{kind: kindOverloaded, msg: fmt.Sprintf("too many concurrent requests (limit %d); retry later", r.opts.MaxConcurrentRequests), retryAfter: r.opts.RetryAfter})
	}
	defer r.release()

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 4<<20 { // do not pin huge buffers
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	if err := r.readBody(req, buf); err != nil {
		var re *requestError
		if errors.As(err, &re) {
			return fail(re)
		}
		return fail(errorf(kindMalformed, "cannot read request body: %v", err))
	}
	d, err := decode(buf.Bytes(), json)
	if err != nil {
		return fail(d.malformed(json, err))
	}
	rejected, msg, rerr := r.export(req.Context(), d.batch)
	if rerr != nil {
		return fail(rerr)
	}
	body, err := d.respond(rejected, msg, json)
	if err != nil {
		return fail(errorf(kindUnavailable, "cannot encode response: %v", err))
	}
	setContentType(w, json)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return http.StatusOK, ""
}

// readBody reads the body into buf, enforcing the compressed and decompressed limits.
func (r *Receiver) readBody(req *http.Request, buf *bytes.Buffer) error {
	maxRaw, maxPlain := r.opts.MaxRequestBytes, r.opts.MaxDecompressedBytes
	if req.ContentLength > maxRaw {
		return errorf(kindTooLarge, "request body of %d bytes exceeds the limit of %d bytes", req.ContentLength, maxRaw)
	}
	raw := &io.LimitedReader{R: req.Body, N: maxRaw + 1}
	tooBig := func() bool { return maxRaw+1-raw.N > maxRaw }
	var src io.Reader = raw
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		maxPlain = min(maxPlain, maxRaw)
	case "gzip":
		zr := gzipPool.Get().(*gzip.Reader)
		defer gzipPool.Put(zr)
		if err := zr.Reset(raw); err != nil {
			return errorf(kindMalformed, "cannot read gzip body: %v", err)
		}
		src = zr
	default:
		return errorf(kindMediaType, "unsupported Content-Encoding %q: send gzip or none", enc)
	}
	n, err := buf.ReadFrom(io.LimitReader(src, maxPlain+1))
	if err != nil {
		if tooBig() {
			return errorf(kindTooLarge, "request body exceeds the limit of %d bytes", maxRaw)
		}
		return errorf(kindMalformed, "cannot read body: %v", err)
	}
	if tooBig() {
		return errorf(kindTooLarge, "request body exceeds the limit of %d bytes", maxRaw)
	}
	if n > maxPlain {
		return errorf(kindTooLarge, "decompressed request body exceeds the limit of %d bytes", maxPlain)
	}
	return nil
}

var gzipPool = sync.Pool{New: func() any { return new(gzip.Reader) }}

func (r *Receiver) authorized(header string) bool {
	if r.opts.Token == "" {
		return true
	}
	tok, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(r.opts.Token)) == 1
}

func setContentType(w http.ResponseWriter, json bool) {
	if json {
		w.Header().Set("Content-Type", contentJSON)
	} else {
		w.Header().Set("Content-Type", contentProto)
	}
}

// writeHTTPError answers with a google.rpc.Status body, as OTLP/HTTP says.
func writeHTTPError(w http.ResponseWriter, e *requestError, json bool) int {
	code := http.StatusServiceUnavailable
	grpcCode := int32(14) // UNAVAILABLE
	switch e.kind {
	case kindMalformed:
		code, grpcCode = http.StatusBadRequest, 3 // INVALID_ARGUMENT
	case kindTooLarge:
		code, grpcCode = http.StatusRequestEntityTooLarge, 3
	case kindMediaType:
		code, grpcCode = http.StatusUnsupportedMediaType, 3
	case kindMethod:
		code, grpcCode = http.StatusMethodNotAllowed, 12 // UNIMPLEMENTED
	case kindUnauth:
		code, grpcCode = http.StatusUnauthorized, 16 // UNAUTHENTICATED
		w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
	case kindOverloaded:
		code, grpcCode = http.StatusTooManyRequests, 8 // RESOURCE_EXHAUSTED
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	st := &spb.Status{Code: grpcCode, Message: e.msg}
	var body []byte
	if json {
		body, _ = protojson.Marshal(st)
	} else {
		body, _ = proto.Marshal(st)
	}
	setContentType(w, json)
	w.WriteHeader(code)
	w.Write(body)
	return code
}
