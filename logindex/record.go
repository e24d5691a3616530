package logindex

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Record is one stored log record: every field of an OTLP log record together with
// its resource and scope.
type Record struct {
	// ID identifies the record in this Index; Get returns the record for it.
	ID string `json:"id"`
	// Time is the event time, or the observed time when the event time was missing,
	// or the ingest time when both were missing.
	Time time.Time `json:"time"`
	// ObservedTime is the OTLP observed timestamp (zero when absent).
	ObservedTime time.Time `json:"observed_time,omitzero"`
	// SeverityNumber is the OTLP severity number (0 = unspecified, 1..24).
	SeverityNumber int32 `json:"severity_number"`
	// SeverityText is the severity text as sent.
	SeverityText string `json:"severity_text,omitempty"`
	// Severity is the level name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL or
	// UNSPECIFIED) derived from SeverityNumber, or from SeverityText when the
	// number is unspecified. It is what the "severity" query field matches.
	Severity string `json:"severity"`
	// Body is the body: a string body as is, any other body rendered as JSON.
	Body string `json:"body"`
	// BodyType is the OTLP type of the body ("Str", "Map", "Slice", "Int", ...).
	BodyType string `json:"body_type,omitempty"`
	// TraceID and SpanID are lower-case hex, empty when absent.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	// Flags are the OTLP record flags.
	Flags uint32 `json:"flags,omitempty"`
	// EventName is the OTLP event name, empty when absent.
	EventName string `json:"event_name,omitempty"`
	// Service is the resource attribute service.name ("unknown_service" if absent).
	Service string `json:"service"`
	// Resource holds the resource attributes, service.name included.
	Resource []Attr `json:"resource,omitempty"`
	// ResourceSchemaURL and ScopeSchemaURL are the schema URLs, empty when absent.
	ResourceSchemaURL string `json:"resource_schema_url,omitempty"`
	ScopeName         string `json:"scope_name,omitempty"`
	ScopeVersion      string `json:"scope_version,omitempty"`
	ScopeAttributes   []Attr `json:"scope_attributes,omitempty"`
	ScopeSchemaURL    string `json:"scope_schema_url,omitempty"`
	// Attributes are the record attributes.
	Attributes []Attr `json:"attributes,omitempty"`
	// DroppedAttributesCount is the OTLP dropped attributes count of the record.
	DroppedAttributesCount uint32 `json:"dropped_attributes_count,omitempty"`
}

// Attr is one attribute. Value is a string value as is; any other value is rendered
// as JSON (numbers and booleans as their JSON literal, bytes as base64 strings).
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// Type is the OTLP value type: "Str", "Int", "Double", "Bool", "Bytes", "Map",
	// "Slice" or "Empty".
	Type string `json:"type"`
}

// Severity level names and the OTLP severity number each range starts at.
var levelNames = [...]string{"UNSPECIFIED", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// levelOf maps an OTLP severity number (1..24) to its level name.
func levelOf(n int32) string {
	if n < 1 || n > 24 {
		return "UNSPECIFIED"
	}
	return levelNames[1+(n-1)/4]
}

// levelNumber returns the first severity number of a level name (case-insensitive),
// or 0, false if the name is not a level. Common spellings (WARNING, ERR, CRITICAL,
// PANIC...) are accepted.
func levelNumber(name string) (int32, bool) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "TRACE", "TRC", "FINEST", "FINER":
		return 1, true
	case "DEBUG", "DBG", "FINE", "VERBOSE", "D":
		return 5, true
	case "INFO", "INF", "INFORMATION", "NOTICE", "I":
		return 9, true
	case "WARN", "WARNING", "WRN", "W":
		return 13, true
	case "ERROR", "ERR", "SEVERE", "E":
		return 17, true
	case "FATAL", "CRITICAL", "CRIT", "PANIC", "EMERG", "EMERGENCY", "ALERT", "F":
		return 21, true
	}
	return 0, false
}

// effectiveSeverity is the severity number used for indexing: the record's number,
// or the number derived from its text when the number is unspecified.
func effectiveSeverity(num int32, text string) int32 {
	if num >= 1 && num <= 24 {
		return num
	}
	if n, ok := levelNumber(text); ok {
		return n
	}
	return 0
}

const unknownService = "unknown_service"

// appendRecordsFromLogs converts every log record of ld into dst. now is used when a
// record has neither an event nor an observed timestamp.
func appendRecordsFromLogs(dst []Record, ld plog.Logs, now time.Time) []Record {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := attrsOf(rl.Resource().Attributes())
		service := unknownService
		if v, ok := rl.Resource().Attributes().Get("service.name"); ok && v.AsString() != "" {
			service = v.AsString()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scope := sl.Scope()
			scopeAttrs := attrsOf(scope.Attributes())
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				r := Record{
					SeverityNumber:         int32(lr.SeverityNumber()),
					SeverityText:           lr.SeverityText(),
					Flags:                  uint32(lr.Flags()),
					EventName:              lr.EventName(),
					Service:                service,
					Resource:               res,
					ResourceSchemaURL:      rl.SchemaUrl(),
					ScopeName:              scope.Name(),
					ScopeVersion:           scope.Version(),
					ScopeAttributes:        scopeAttrs,
					ScopeSchemaURL:         sl.SchemaUrl(),
					Attributes:             attrsOf(lr.Attributes()),
					DroppedAttributesCount: lr.DroppedAttributesCount(),
				}
				if ts := lr.ObservedTimestamp(); ts != 0 {
					r.ObservedTime = ts.AsTime()
				}
				switch {
				case lr.Timestamp() != 0:
					r.Time = lr.Timestamp().AsTime()
				case lr.ObservedTimestamp() != 0:
					r.Time = r.ObservedTime
				default:
					r.Time = now
				}
				r.Severity = levelOf(effectiveSeverity(r.SeverityNumber, r.SeverityText))
				body := lr.Body()
				r.BodyType = body.Type().String()
				r.Body = body.AsString()
				if tid := lr.TraceID(); !tid.IsEmpty() {
					r.TraceID = hex.EncodeToString(tid[:])
				}
				if sid := lr.SpanID(); !sid.IsEmpty() {
					r.SpanID = hex.EncodeToString(sid[:])
				}
				dst = append(dst, r)
			}
		}
	}
	return dst
}

func attrsOf(m pcommon.Map) []Attr {
	if m.Len() == 0 {
		return nil
	}
	out := make([]Attr, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		out = append(out, Attr{Key: k, Value: v.AsString(), Type: v.Type().String()})
		return true
	})
	return out
}

// Record encoding (see FORMAT.md, "Record"). All integers are unsigned varints
// unless stated; strings are a varint length followed by the bytes.

const recordVersion = 1

// appendRecord appends the encoding of r (without its ID) to dst.
func appendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendVarint(dst, r.Time.UnixNano())
	var obs int64
	if !r.ObservedTime.IsZero() {
		obs = r.ObservedTime.UnixNano()
	}
	dst = binary.AppendVarint(dst, obs)
	dst = binary.AppendUvarint(dst, uint64(uint32(r.SeverityNumber)))
	dst = appendString(dst, r.SeverityText)
	dst = appendString(dst, r.BodyType)
	dst = appendString(dst, r.Body)
	dst = appendString(dst, r.TraceID)
	dst = appendString(dst, r.SpanID)
	dst = binary.AppendUvarint(dst, uint64(r.Flags))
	dst = appendString(dst, r.EventName)
	dst = appendString(dst, r.Service)
	dst = appendAttrs(dst, r.Resource)
	dst = appendString(dst, r.ResourceSchemaURL)
	dst = appendString(dst, r.ScopeName)
	dst = appendString(dst, r.ScopeVersion)
	dst = appendAttrs(dst, r.ScopeAttributes)
	dst = appendString(dst, r.ScopeSchemaURL)
	dst = appendAttrs(dst, r.Attributes)
	dst = binary.AppendUvarint(dst, uint64(r.DroppedAttributesCount))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendAttrs(dst []byte, as []Attr) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(as)))
	for _, a := range as {
		dst = appendString(dst, a.Key)
		dst = appendString(dst, a.Value)
		dst = appendString(dst, a.Type)
	}
	return dst
}

// errShortRecord is wrapped by decoding errors of truncated or malformed records.
var errShortRecord = errors.New("malformed record")

type recordDecoder struct {
	b   []byte
	off int
	err error
}

func (d *recordDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("cannot decode %s at offset %d of %d bytes: %w", what, d.off, len(d.b), errShortRecord)
	}
}

func (d *recordDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.off += n
	return v
}

func (d *recordDecoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.off += n
	return v
}

func (d *recordDecoder) str(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(what)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// bytes reads a string without copying it: the bytes are d's.
func (d *recordDecoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(what)
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *recordDecoder) attrs(what string) []Attr {
	n := d.uvarint(what)
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)-d.off) { // each attribute takes at least 3 bytes
		d.fail(what)
		return nil
	}
	out := make([]Attr, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, Attr{Key: d.str(what), Value: d.str(what), Type: d.str(what)})
	}
	return out
}

// decodeRecord decodes one record encoded by appendRecord.
func decodeRecord(b []byte, r *Record) error {
	if len(b) == 0 || b[0] != recordVersion {
		return fmt.Errorf("cannot decode record of %d bytes: unknown version: %w", len(b), errShortRecord)
	}
	d := recordDecoder{b: b, off: 1}
	r.Time = time.Unix(0, d.varint("time")).UTC()
	if obs := d.varint("observed time"); obs != 0 {
		r.ObservedTime = time.Unix(0, obs).UTC()
	} else {
		r.ObservedTime = time.Time{}
	}
	sn := d.uvarint("severity number")
	if sn > math.MaxInt32 {
		d.fail("severity number")
	}
	r.SeverityNumber = int32(sn)
	r.SeverityText = d.str("severity text")
	r.BodyType = d.str("body type")
	r.Body = d.str("body")
	r.TraceID = d.str("trace id")
	r.SpanID = d.str("span id")
	r.Flags = uint32(d.uvarint("flags"))
	r.EventName = d.str("event name")
	r.Service = d.str("service")
	r.Resource = d.attrs("resource attributes")
	r.ResourceSchemaURL = d.str("resource schema url")
	r.ScopeName = d.str("scope name")
	r.ScopeVersion = d.str("scope version")
	r.ScopeAttributes = d.attrs("scope attributes")
	r.ScopeSchemaURL = d.str("scope schema url")
	r.Attributes = d.attrs("attributes")
	r.DroppedAttributesCount = uint32(d.uvarint("dropped attributes count"))
	if d.err != nil {
		return d.err
	}
	if d.off != len(b) {
		return fmt.Errorf("cannot decode record: %d trailing bytes of %d: %w", len(b)-d.off, len(b), errShortRecord)
	}
	r.Severity = levelOf(effectiveSeverity(r.SeverityNumber, r.SeverityText))
	return nil
}
