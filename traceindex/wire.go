package traceindex

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// Walking a block payload (an OTLP TracesData message) at the protobuf wire level,
// so a trace lookup unmarshals only its own spans and the dependency graph reads
// only ids and service names. Field numbers are those of
// opentelemetry/proto/trace/v1/trace.proto and common/v1, resource/v1.
const (
	fTracesDataResourceSpans = 1 // TracesData.resource_spans
	fResourceSpansResource   = 1 // ResourceSpans.resource
	fResourceSpansScopeSpans = 2 // ResourceSpans.scope_spans
	fResourceAttributes      = 1 // Resource.attributes
	fScopeSpansSpans         = 2 // ScopeSpans.spans
	fSpanTraceID             = 1
	fSpanSpanID              = 2
	fSpanParentSpanID        = 4
	fSpanStartTime           = 7 // fixed64
	fKeyValueKey             = 1
	fKeyValueValue           = 2
	fAnyValueString          = 1
)

var errWire = errors.New("malformed protobuf")

// forFields calls fn for every field of the message b with its number, type,
// value (for length-delimited fields, the contents; for fixed64 the 8 bytes) and
// whole encoding (tag included).
func forFields(b []byte, fn func(num protowire.Number, typ protowire.Type, val, whole []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %v", errWire, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("%w: bad field %d: %v", errWire, num, protowire.ParseError(m))
		}
		val := b[n : n+m]
		if typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(val)
			if k < 0 {
				return fmt.Errorf("%w: bad length of field %d", errWire, num)
			}
			val = v
		}
		if err := fn(num, typ, val, b[:n+m]); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// filterPayload appends to dst a TracesData message holding, of the payload raw,
// only the spans of trace id, each with its resource and scope, and returns it
// with the number of spans kept.
func filterPayload(dst, raw []byte, id pcommon.TraceID) ([]byte, int, error) {
	kept := 0
	var rsBuf, ssBuf []byte
	err := forFields(raw, func(num protowire.Number, typ protowire.Type, rs, whole []byte) error {
		if num != fTracesDataResourceSpans || typ != protowire.BytesType {
			return nil
		}
		rsBuf = rsBuf[:0]
		rsKept := 0
		err := forFields(rs, func(num protowire.Number, typ protowire.Type, ss, whole []byte) error {
			if num != fResourceSpansScopeSpans || typ != protowire.BytesType {
				rsBuf = append(rsBuf, whole...)
				return nil
			}
			ssBuf = ssBuf[:0]
			ssKept := 0
			err := forFields(ss, func(num protowire.Number, typ protowire.Type, span, whole []byte) error {
				if num != fScopeSpansSpans || typ != protowire.BytesType {
					ssBuf = append(ssBuf, whole...)
					return nil
				}
				sid, err := spanTraceID(span)
				if err != nil {
					return err
				}
				if sid == id {
					ssBuf = append(ssBuf, whole...)
					ssKept++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if ssKept > 0 {
				rsBuf = protowire.AppendTag(rsBuf, fResourceSpansScopeSpans, protowire.BytesType)
				rsBuf = protowire.AppendBytes(rsBuf, ssBuf)
				rsKept += ssKept
			}
			return nil
		})
		if err != nil {
			return err
		}
		if rsKept > 0 {
			dst = protowire.AppendTag(dst, fTracesDataResourceSpans, protowire.BytesType)
			dst = protowire.AppendBytes(dst, rsBuf)
			kept += rsKept
		}
		return nil
	})
	return dst, kept, err
}

// spanTraceID reads the trace id of an encoded Span (it is normally the first
// field).
func spanTraceID(span []byte) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	errFound := errors.New("found")
	err := forFields(span, func(num protowire.Number, typ protowire.Type, val, _ []byte) error {
		if num == fSpanTraceID && typ == protowire.BytesType {
			if len(val) != 16 {
				return fmt.Errorf("%w: trace id of %d bytes", errWire, len(val))
			}
			copy(id[:], val)
			return errFound
		}
		return nil
	})
	if err != nil && err != errFound {
		return id, err
	}
	return id, nil
}

// spanLink is what the dependency graph needs of a span.
type spanLink struct {
	trace  pcommon.TraceID
	span   pcommon.SpanID
	parent pcommon.SpanID
	start  int64
}

// forSpanLinks calls fn for every span of the payload raw with the service name
// of its resource.
func forSpanLinks(raw []byte, fn func(service []byte, s *spanLink) error) error {
	return forFields(raw, func(num protowire.Number, typ protowire.Type, rs, _ []byte) error {
		if num != fTracesDataResourceSpans || typ != protowire.BytesType {
			return nil
		}
		var service []byte
		// The resource precedes the scope spans in pdata's encoding, but do not
		// rely on it: find it first.
		err := forFields(rs, func(num protowire.Number, typ protowire.Type, res, _ []byte) error {
			if num == fResourceSpansResource && typ == protowire.BytesType {
				var err error
				service, err = resourceService(res)
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(service) == 0 {
			service = []byte("unknown_service")
		}
		return forFields(rs, func(num protowire.Number, typ protowire.Type, ss, _ []byte) error {
			if num != fResourceSpansScopeSpans || typ != protowire.BytesType {
				return nil
			}
			return forFields(ss, func(num protowire.Number, typ protowire.Type, span, _ []byte) error {
				if num != fScopeSpansSpans || typ != protowire.BytesType {
					return nil
				}
				var s spanLink
				err := forFields(span, func(num protowire.Number, typ protowire.Type, val, _ []byte) error {
					switch {
					case num == fSpanTraceID && typ == protowire.BytesType && len(val) == 16:
						copy(s.trace[:], val)
					case num == fSpanSpanID && typ == protowire.BytesType && len(val) == 8:
						copy(s.span[:], val)
					case num == fSpanParentSpanID && typ == protowire.BytesType && len(val) == 8:
						copy(s.parent[:], val)
					case num == fSpanStartTime && typ == protowire.Fixed64Type:
						v, _ := protowire.ConsumeFixed64(val)
						s.start = int64(v)
					}
					return nil
				})
				if err != nil {
					return err
				}
				return fn(service, &s)
			})
		})
	})
}

// resourceService returns the string value of attribute service.name of an
// encoded Resource, or nil.
func resourceService(res []byte) ([]byte, error) {
	var service []byte
	err := forFields(res, func(num protowire.Number, typ protowire.Type, kv, _ []byte) error {
		if num != fResourceAttributes || typ != protowire.BytesType {
			return nil
		}
		var key, value []byte
		err := forFields(kv, func(num protowire.Number, typ protowire.Type, val, _ []byte) error {
			switch {
			case num == fKeyValueKey && typ == protowire.BytesType:
				key = val
			case num == fKeyValueValue && typ == protowire.BytesType:
				return forFields(val, func(num protowire.Number, typ protowire.Type, s, _ []byte) error {
					if num == fAnyValueString && typ == protowire.BytesType {
						value = s
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if string(key) == "service.name" && len(value) > 0 {
			service = value
		}
		return nil
	})
	return service, err
}
