// Package otlpwire owns reading OTLP metrics export requests
// (ExportMetricsServiceRequest) in their protobuf wire form, without decoding
// them into pdata objects first. Decoding a request into pdata allocates an
// object for every data point, attribute and string, and that was the largest
// part of the CPU of metrics ingest; most points are gauges', sums' and
// explicit-bucket histograms', which the TSDB needs as a few numbers and the
// bytes of their attributes (which, as sent, identify a series as well as its
// labels do).
//
// Scan reads a request once: it checks it the way the receiver's decoding and
// limits would (well-formed, valid UTF-8, no more attributes than allowed) and
// notes where each resource, scope, metric and data point is; a request that
// fails is for pdata. It decodes with pdata only the metrics that are not
// gauges, sums or explicit-bucket histograms of points without exemplars
// (exponential histograms, summaries, the rare rest). Walk then shows an
// accepted request to a Visitor from those notes, without reading it again.
// Resource and Attributes decode the rare parts a Visitor needs as pdata (a
// resource, or the attributes of a series not seen before) through pdata
// itself, so that they mean exactly what they would have meant decoded whole.
//
// Stores may import it: it imports nothing of Outpost.
package otlpwire

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// Metrics is a request Scan accepted.
type Metrics struct {
	Body []byte
	// Points is the number of data points; PerService counts them by the
	// resource's service.name ("" when it has none, or not as a string).
	Points     int
	PerService map[string]uint64
	notes      *notes
}

// notes is what Scan noted for Walk: the request's parts in order, its number
// and histogram data points, and the metrics it decoded.
type notes struct {
	parts   []part
	points  []Point
	hpoints []HistogramPoint
	attrs   []byte // the attributes of points whose attribute fields were apart
	decoded []pmetric.Metric
}

// part is a resource, a scope, a metric with its points, or a decoded metric.
type part struct {
	kind          partKind
	raw           []byte // resource: the Resource message
	name, version []byte // scope
	metric        Metric
	from, to      int // metric: its points (hpoints for a histogram); decoded: the index in decoded
}

type partKind uint8

const (
	partResource partKind = iota
	partScope
	partMetric
	partDecoded
)

var notesPool = sync.Pool{New: func() any { return new(notes) }}

// maxPooled is the most points whose notes go back to the pool.
const maxPooled = 1 << 17

// Release hands the notes back for another request; m must not be walked
// after. Not calling it only costs an allocation.
func (m *Metrics) Release() {
	n := m.notes
	if n == nil || cap(n.points) > maxPooled || cap(n.hpoints) > maxPooled {
		return
	}
	m.notes = nil
	clear(n.parts)
	clear(n.points)
	clear(n.hpoints)
	clear(n.decoded)
	*n = notes{parts: n.parts[:0], points: n.points[:0], hpoints: n.hpoints[:0], attrs: n.attrs[:0], decoded: n.decoded[:0]}
	notesPool.Put(n)
}

// Decode decodes the request into pdata, for a consumer that needs it.
func (m *Metrics) Decode() (pmetric.Metrics, error) {
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(m.Body); err != nil {
		return pmetric.NewMetrics(), err
	}
	return req.Metrics(), nil
}

// Kind is the data type of a metric Walk shows.
type Kind uint8

// Kinds.
const (
	Gauge Kind = iota + 1
	Sum
	Histogram // explicit-bucket histogram: its points are HistogramPoints
)

// Metric is one metric, as Walk shows it; its byte slices point into the body.
type Metric struct {
	Name, Description, Unit []byte
	Kind                    Kind
	Monotonic               bool // sums
	Delta                   bool // sums and histograms: delta aggregation temporality
}

// Point is one number data point, as Walk shows it.
type Point struct {
	// Attrs holds the point's attribute fields as they came (field 7 of a
	// NumberDataPoint, each with its tag and length), for Attributes.
	Attrs  []byte
	Start  uint64 // start_time_unix_nano
	Time   uint64 // time_unix_nano
	Flags  uint32
	Int    bool    // the value is as_int
	Double float64 // as_double
	IntVal int64   // as_int
}

// Value is the point's value as a float, as pdata gives it: an integer
// converted, and zero when the point has no value.
func (p *Point) Value() float64 {
	if p.Int {
		return float64(p.IntVal)
	}
	return p.Double
}

// NoRecordedValue reports the flag that marks a point without a value (a
// staleness marker).
func (p *Point) NoRecordedValue() bool { return p.Flags&1 != 0 }

// HistogramPoint is one explicit-bucket histogram data point, as Walk shows
// it. Its bucket counts and bounds are read in place, from the body.
type HistogramPoint struct {
	// Attrs holds the point's attribute fields as they came (field 9 of a
	// HistogramDataPoint), as Point.Attrs does.
	Attrs  []byte
	Start  uint64 // start_time_unix_nano
	Time   uint64 // time_unix_nano
	Count  uint64
	Sum    float64
	HasSum bool
	Flags  uint32
	counts []byte // bucket_counts: packed, 8 bytes each
	bounds []byte // explicit_bounds: packed, 8 bytes each
}

// NoRecordedValue reports the flag that marks a point without a value (a
// staleness marker).
func (p *HistogramPoint) NoRecordedValue() bool { return p.Flags&1 != 0 }

// BucketCounts appends the point's bucket counts to dst.
func (p *HistogramPoint) BucketCounts(dst []uint64) []uint64 {
	for b := p.counts; len(b) >= 8; b = b[8:] {
		dst = append(dst, binary.LittleEndian.Uint64(b))
	}
	return dst
}

// ExplicitBounds appends the point's bucket bounds to dst.
func (p *HistogramPoint) ExplicitBounds(dst []float64) []float64 {
	for b := p.bounds; len(b) >= 8; b = b[8:] {
		dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}
	return dst
}

// Visitor is shown a request by Walk. Resource comes before the scopes of its
// resource, Scope before the metrics of its scope, Metric before its points,
// whatever the order of the fields in the body. What it is given is valid
// until the call returns.
type Visitor interface {
	Resource(raw []byte) // the Resource message, empty when there is none
	Scope(name, version []byte)
	Metric(m *Metric)
	Point(p *Point)                   // of a gauge or a sum
	HistogramPoint(p *HistogramPoint) // of a Histogram
	// Decoded is shown a metric that is neither a gauge, a sum nor an
	// explicit-bucket histogram, or has exemplars, decoded with pdata, in
	// place of Metric and its points.
	Decoded(m pmetric.Metric)
}

// Scan checks body, the protobuf form of an ExportMetricsServiceRequest, and
// reports whether Walk may read it: it is well-formed (what Scan does not read
// itself, pdata decodes); every metric is named and has one data type; every
// string the receiver checks (attribute keys and string values at every level,
// scope name and version, metric name, description and unit) is valid UTF-8;
// and no resource, scope, metric metadata or data point has more than maxAttrs
// attributes. A request it refuses is for pdata, which rejects or maps it as it
// should. The body must not change while the Metrics is in use.
func Scan(body []byte, maxAttrs int) (*Metrics, bool) {
	w := walker{maxAttrs: maxAttrs, per: map[string]uint64{}, notes: notesPool.Get().(*notes)}
	if err := w.request(body); err != nil {
		(&Metrics{notes: w.notes}).Release()
		return nil, false
	}
	return &Metrics{Body: body, Points: w.points, PerService: w.per, notes: w.notes}, true
}

// Walk shows v the resources, scopes, metrics and points of m, as Scan noted
// them.
func Walk(m *Metrics, v Visitor) {
	n := m.notes
	for i := range n.parts {
		pt := &n.parts[i]
		switch pt.kind {
		case partResource:
			v.Resource(pt.raw)
		case partScope:
			v.Scope(pt.name, pt.version)
		case partMetric:
			v.Metric(&pt.metric)
			if pt.metric.Kind == Histogram {
				for j := pt.from; j < pt.to; j++ {
					v.HistogramPoint(&n.hpoints[j])
				}
				break
			}
			for j := pt.from; j < pt.to; j++ {
				v.Point(&n.points[j])
			}
		case partDecoded:
			v.Decoded(n.decoded[pt.from])
		}
	}
}

// Resource decodes a Resource message with pdata.
func Resource(raw []byte) (pcommon.Resource, error) {
	// ExportMetricsServiceRequest{resource_metrics: {resource: raw}}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(nest(raw, 1, 1)); err != nil {
		return pcommon.NewResource(), err
	}
	return req.Metrics().ResourceMetrics().At(0).Resource(), nil
}

// Attributes decodes Point.Attrs with pdata.
func Attributes(attrs []byte) (pcommon.Map, error) {
	// The same KeyValues as a Resource's attributes (its field 1).
	var res []byte
	for len(attrs) > 0 {
		_, _, _, p, rest, err := next(attrs)
		if err != nil {
			return pcommon.NewMap(), err
		}
		attrs = rest
		res = appendLen(res, 1, p)
	}
	r, err := Resource(res)
	return r.Attributes(), err
}

// Wire types.
const (
	wtVarint  = 0
	wtFixed64 = 1
	wtLen     = 2
	wtFixed32 = 5
)

// errRefused is any reason Scan refuses a body; which one does not matter.
var errRefused = errors.New("otlpwire: not for the wire path")

// maxDepth bounds the nesting of attribute values Scan follows: well inside
// pdata's recursion limit, which counts three levels for each of these.
const maxDepth = 16

// nest returns p as the payload of length-delimited fields nums, the first
// outermost, built in one allocation (back to front, innermost header first).
func nest(p []byte, nums ...uint64) []byte {
	n := len(p)
	for i := len(nums) - 1; i >= 0; i-- {
		n += uvarintLen(nums[i]<<3|wtLen) + uvarintLen(uint64(n))
	}
	b := make([]byte, n)
	at := n - copy(b[n-len(p):], p)
	for i := len(nums) - 1; i >= 0; i-- {
		var h [2 * binary.MaxVarintLen64]byte
		hdr := binary.AppendUvarint(binary.AppendUvarint(h[:0], nums[i]<<3|wtLen), uint64(n-at))
		at -= copy(b[at-len(hdr):], hdr)
	}
	return b
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func appendLen(b []byte, num uint64, p []byte) []byte {
	b = binary.AppendUvarint(b, num<<3|wtLen)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return binary.Uvarint(b)
}

// next reads the field at the start of b: its number and wire type, its value
// (varint and fixed types) or payload (length-delimited), and what follows.
// Groups, field number 0 and truncated fields are refused.
func next(b []byte) (num uint64, wt int, v uint64, p, rest []byte, err error) {
	// The usual field: a one-byte tag of a length-delimited field of fewer
	// than 128 bytes.
	if len(b) >= 2 && b[0] < 0x80 && b[0]&7 == wtLen && b[0] >= 1<<3 && b[1] < 0x80 && int(b[1]) <= len(b)-2 {
		l := int(b[1])
		return uint64(b[0] >> 3), wtLen, 0, b[2 : 2+l], b[2+l:], nil
	}
	tag, n := uvarint(b)
	if n <= 0 {
		return 0, 0, 0, nil, nil, errRefused
	}
	b = b[n:]
	num, wt = tag>>3, int(tag&7)
	if num == 0 || num > math.MaxInt32 {
		return 0, 0, 0, nil, nil, errRefused
	}
	switch wt {
	case wtVarint:
		if v, n = uvarint(b); n <= 0 {
			return 0, 0, 0, nil, nil, errRefused
		}
		b = b[n:]
	case wtFixed64:
		if len(b) < 8 {
			return 0, 0, 0, nil, nil, errRefused
		}
		v, b = binary.LittleEndian.Uint64(b), b[8:]
	case wtLen:
		l, n := uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return 0, 0, 0, nil, nil, errRefused
		}
		p, b = b[n:n+int(l)], b[n+int(l):]
	case wtFixed32:
		if len(b) < 4 {
			return 0, 0, 0, nil, nil, errRefused
		}
		v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
	default:
		return 0, 0, 0, nil, nil, errRefused
	}
	return num, wt, v, p, b, nil
}

// want refuses a known field that came with the wrong wire type.
func want(wt, expected int) error {
	if wt != expected {
		return errRefused
	}
	return nil
}

// walker is Scan's reading of a request.
type walker struct {
	maxAttrs int
	points   int
	per      map[string]uint64
	notes    *notes
}

func (w *walker) request(b []byte) error {
	for len(b) > 0 {
		num, wt, _, p, rest, err := next(b)
		if err != nil {
			return err
		}
		b = rest
		if num == 1 { // resource_metrics
			if err := want(wt, wtLen); err != nil {
				return err
			}
			if err := w.resourceMetrics(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// header checks the fields of a ResourceMetrics or a ScopeMetrics: its own
// resource or scope (field 1), at most once, which it returns (nil if none),
// its children (field 2) and schema URL (field 3), all length-delimited; a
// field numbered refuse refuses it.
func header(b []byte, refuse uint64) ([]byte, error) {
	var one []byte
	seen := false
	for len(b) > 0 {
		num, wt, _, p, rest, err := next(b)
		if err != nil {
			return nil, err
		}
		b = rest
		switch num {
		case 1, 2, 3:
			if err := want(wt, wtLen); err != nil {
				return nil, err
			}
			if num == 1 {
				if seen {
					return nil, errRefused // pdata would merge the two
				}
				one, seen = p, true
			}
		case refuse:
			return nil, errRefused
		}
	}
	return one, nil
}

// children calls fn with each child (field 2) of a message header checked.
func children(b []byte, fn func([]byte) error) error {
	for len(b) > 0 {
		num, _, _, p, rest, _ := next(b)
		b = rest
		if num == 2 {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) resourceMetrics(b []byte) error {
	res, err := header(b, 1000) // 1000: deprecated_scope_metrics, for pdata
	if err != nil {
		return err
	}
	service, err := w.resource(res)
	if err != nil {
		return err
	}
	w.notes.parts = append(w.notes.parts, part{kind: partResource, raw: res})
	before := w.points
	if err := children(b, w.scopeMetrics); err != nil {
		return err
	}
	w.per[service] += uint64(w.points - before)
	return nil
}

// resource checks a Resource and returns its service.name.
func (w *walker) resource(b []byte) (string, error) {
	n := 0
	service, found := "", false
	for len(b) > 0 {
		num, wt, _, p, rest, err := next(b)
		if err != nil {
			return "", err
		}
		b = rest
		switch num {
		case 1: // attributes
			if err := want(wt, wtLen); err != nil {
				return "", err
			}
			n++
			key, val, err := keyValue(p, 0)
			if err != nil {
				return "", err
			}
			if !found && string(key) == "service.name" {
				// pdata's Get finds the first; its Str is "" for a non-string.
				found = true
				if s, ok := stringValue(val); ok {
					service = string(s)
				}
			}
		case 2: // dropped_attributes_count
			if err := want(wt, wtVarint); err != nil {
				return "", err
			}
		case 3: // entity_refs: for pdata
			return "", errRefused
		}
	}
	if n > w.maxAttrs {
		return "", errRefused
	}
	return service, nil
}

func (w *walker) scopeMetrics(b []byte) error {
	sc, err := header(b, 0)
	if err != nil {
		return err
	}
	name, version, err := w.scope(sc)
	if err != nil {
		return err
	}
	w.notes.parts = append(w.notes.parts, part{kind: partScope, name: name, version: version})
	return children(b, w.metric)
}

func (w *walker) scope(b []byte) (name, version []byte, err error) {
	n := 0
	for len(b) > 0 {
		num, wt, _, p, rest, err := next(b)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		switch num {
		case 1, 2: // name, version
			if err := want(wt, wtLen); err != nil {
				return nil, nil, err
			}
			if !validUTF8(p) {
				return nil, nil, errRefused
			}
			if num == 1 {
				name = p
			} else {
				version = p
			}
		case 3: // attributes
			if err := want(wt, wtLen); err != nil {
				return nil, nil, err
			}
			n++
			if _, _, err := keyValue(p, 0); err != nil {
				return nil, nil, err
			}
		case 4: // dropped_attributes_count
			if err := want(wt, wtVarint); err != nil {
				return nil, nil, err
			}
		}
	}
	if n > w.maxAttrs {
		return nil, nil, errRefused
	}
	return name, version, nil
}

func (w *walker) metric(b []byte) error {
	var m Metric
	var data []byte
	kinds, meta := 0, 0
	attrField := uint64(7) // the attributes' field number in a data point
	for r := b; len(r) > 0; {
		num, wt, _, p, rest, err := next(r)
		if err != nil {
			return err
		}
		r = rest
		switch num {
		case 1, 2, 3: // name, description, unit
			if err := want(wt, wtLen); err != nil {
				return err
			}
			if !validUTF8(p) {
				return errRefused
			}
			switch num {
			case 1:
				m.Name = p
			case 2:
				m.Description = p
			default:
				m.Unit = p
			}
		case 5, 7: // gauge, sum
			if err := want(wt, wtLen); err != nil {
				return err
			}
			kinds++
			data = p
			m.Kind = Gauge
			if num == 7 {
				m.Kind = Sum
			}
		case 9: // histogram
			if err := want(wt, wtLen); err != nil {
				return err
			}
			kinds++
			data = p
			m.Kind = Histogram
			attrField = 9 // HistogramDataPoint.attributes
		case 10, 11: // exponential_histogram, summary: decoded
			if err := want(wt, wtLen); err != nil {
				return err
			}
			kinds++
			data = p
			m.Kind = 0
			if num == 10 {
				attrField = 1 // ExponentialHistogramDataPoint.attributes
			} else {
				attrField = 7 // SummaryDataPoint.attributes
			}
		case 12: // metadata
			if err := want(wt, wtLen); err != nil {
				return err
			}
			meta++
			if _, _, err := keyValue(p, 0); err != nil {
				return err
			}
		}
	}
	if kinds != 1 || len(m.Name) == 0 || meta > w.maxAttrs {
		return errRefused
	}
	if m.Kind == 0 {
		return w.decode(b, data, attrField)
	}
	// A sum's or a histogram's temporality, and a sum's monotonicity, before
	// the points.
	for r := data; len(r) > 0; {
		num, wt, v, _, rest, err := next(r)
		if err != nil {
			return err
		}
		r = rest
		switch num {
		case 1: // data_points
			if err := want(wt, wtLen); err != nil {
				return err
			}
		case 2, 3: // aggregation_temporality, is_monotonic (a sum's)
			if m.Kind == Gauge || m.Kind == Histogram && num == 3 {
				break
			}
			if err := want(wt, wtVarint); err != nil {
				return err
			}
			if num == 2 {
				m.Delta = int32(v) == int32(pmetric.AggregationTemporalityDelta)
			} else {
				m.Monotonic = v != 0
			}
		}
	}
	n := w.notes
	from, hfrom, attrs := len(n.points), len(n.hpoints), len(n.attrs)
	for len(data) > 0 {
		num, _, _, p, rest, _ := next(data)
		data = rest
		if num != 1 {
			continue
		}
		var decode bool
		var err error
		if m.Kind == Histogram {
			decode, err = w.histogramPoint(p)
		} else {
			decode, err = w.point(p)
		}
		if err != nil {
			return err
		}
		if decode { // not for the wire: the whole metric is decoded
			w.points -= len(n.points) - from + len(n.hpoints) - hfrom
			clear(n.points[from:])
			clear(n.hpoints[hfrom:])
			n.points, n.hpoints, n.attrs = n.points[:from], n.hpoints[:hfrom], n.attrs[:attrs]
			return w.decode(b, data, attrField) // the points not checked yet
		}
	}
	to := len(n.points)
	if m.Kind == Histogram {
		from, to = hfrom, len(n.hpoints)
	}
	n.parts = append(n.parts, part{kind: partMetric, metric: m, from: from, to: to})
	return nil
}

// decode checks a metric for pdata to decode, b, whose points not checked yet
// are in data (its data message, or what follows the last point checked) and
// have their attributes in field attrField, and notes it decoded.
func (w *walker) decode(b, data []byte, attrField uint64) error {
	// The receiver's checks of the points' attributes.
	for len(data) > 0 {
		num, wt, _, p, rest, err := next(data)
		if err != nil {
			return err
		}
		data = rest
		if num != 1 || wt != wtLen {
			continue // pdata decodes, or refuses, the rest
		}
		n := 0
		for len(p) > 0 {
			num, wt, _, q, rest, err := next(p)
			if err != nil {
				return err
			}
			p = rest
			if num == attrField && wt == wtLen {
				n++
				if _, _, err := keyValue(q, 0); err != nil {
					return err
				}
			}
		}
		if n > w.maxAttrs {
			return errRefused
		}
	}
	// ExportMetricsServiceRequest{resource_metrics: {scope_metrics: {metrics: b}}}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(nest(b, 1, 2, 2)); err != nil {
		return errRefused
	}
	md := req.Metrics()
	w.points += md.DataPointCount()
	n := w.notes
	n.parts = append(n.parts, part{kind: partDecoded, from: len(n.decoded)})
	n.decoded = append(n.decoded, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0))
	return nil
}

// point checks a number data point and notes it; it reports whether the point
// has exemplars, which are not for the wire.
func (w *walker) point(b []byte) (exemplar bool, err error) {
	n := w.notes
	n.points = append(n.points, Point{})
	pt := &n.points[len(n.points)-1]
	var attrs attrFields
	for len(b) > 0 {
		if len(b) >= 9 { // the times and the value, read without next
			v := binary.LittleEndian.Uint64(b[1:])
			switch b[0] {
			case 2<<3 | wtFixed64:
				pt.Start, b = v, b[9:]
				continue
			case 3<<3 | wtFixed64:
				pt.Time, b = v, b[9:]
				continue
			case 4<<3 | wtFixed64:
				pt.Int, pt.Double, b = false, math.Float64frombits(v), b[9:]
				continue
			case 6<<3 | wtFixed64:
				pt.Int, pt.IntVal, b = true, int64(v), b[9:]
				continue
			}
		}
		num, wt, v, p, rest, err := next(b)
		if err != nil {
			return false, err
		}
		switch num {
		case 7: // attributes
			if err := want(wt, wtLen); err != nil {
				return false, err
			}
			if err := attrs.add(b, p, rest); err != nil {
				return false, err
			}
		case 2, 3, 4, 6: // start_time_unix_nano, time_unix_nano, as_double, as_int
			if err := want(wt, wtFixed64); err != nil {
				return false, err
			}
			switch num {
			case 2:
				pt.Start = v
			case 3:
				pt.Time = v
			case 4:
				pt.Int, pt.Double = false, math.Float64frombits(v)
			default:
				pt.Int, pt.IntVal = true, int64(v)
			}
		case 5: // exemplars
			exemplar = true
		case 8: // flags
			if err := want(wt, wtVarint); err != nil {
				return false, err
			}
			pt.Flags = uint32(v)
		}
		b = rest
	}
	if attrs.n > w.maxAttrs {
		return false, errRefused
	}
	pt.Attrs = attrs.fields(n, 7)
	w.points++
	return exemplar, nil
}

// histogramPoint checks an explicit-bucket histogram data point and notes
// it; it reports whether the point is for pdata to decode instead: it has
// exemplars, or bucket counts or bounds in any form but one packed field
// each (pdata appends what comes unpacked, and a packed field replaces what
// came before it).
func (w *walker) histogramPoint(b []byte) (decode bool, err error) {
	n := w.notes
	n.hpoints = append(n.hpoints, HistogramPoint{})
	pt := &n.hpoints[len(n.hpoints)-1]
	var attrs attrFields
	counts, bounds := 0, 0
	for len(b) > 0 {
		num, wt, v, p, rest, err := next(b)
		if err != nil {
			return false, err
		}
		switch num {
		case 9: // attributes
			if err := want(wt, wtLen); err != nil {
				return false, err
			}
			if err := attrs.add(b, p, rest); err != nil {
				return false, err
			}
		case 2, 3, 4, 5, 11, 12: // start_time_unix_nano, time_unix_nano, count, sum, min, max
			if err := want(wt, wtFixed64); err != nil {
				return false, err
			}
			switch num {
			case 2:
				pt.Start = v
			case 3:
				pt.Time = v
			case 4:
				pt.Count = v
			case 5:
				pt.Sum, pt.HasSum = math.Float64frombits(v), true
			}
		case 6, 7: // bucket_counts, explicit_bounds
			if wt != wtLen || len(p)%8 != 0 {
				decode = true
			}
			if num == 6 {
				pt.counts = p
				counts++
			} else {
				pt.bounds = p
				bounds++
			}
		case 8: // exemplars
			decode = true
		case 10: // flags
			if err := want(wt, wtVarint); err != nil {
				return false, err
			}
			pt.Flags = uint32(v)
		}
		b = rest
	}
	if attrs.n > w.maxAttrs {
		return false, errRefused
	}
	pt.Attrs = attrs.fields(n, 9)
	w.points++
	return decode || counts > 1 || bounds > 1, nil
}

// attrFields follows the attribute fields of a data point as they come.
type attrFields struct {
	n           int
	first, last []byte // the first attribute field, and what follows the last
	apart       bool   // whether another field came between two attribute fields
}

// add checks the attribute field at the start of b, whose payload is p and
// which rest follows.
func (a *attrFields) add(b, p, rest []byte) error {
	if a.first == nil {
		a.first = b
	} else if len(a.last) != len(b) {
		a.apart = true
	}
	a.last = rest
	a.n++
	_, _, err := keyValue(p, 0)
	return err
}

// fields returns the attribute fields (field num of the point): in place in
// the body when they came side by side, the usual case, else gathered in
// n.attrs, in order.
func (a *attrFields) fields(n *notes, num uint64) []byte {
	switch {
	case a.first == nil:
		return nil
	case !a.apart:
		return a.first[:len(a.first)-len(a.last)]
	}
	start := len(n.attrs)
	for r := a.first; len(r) > len(a.last); {
		f, _, _, _, rest, _ := next(r)
		if f == num {
			n.attrs = append(n.attrs, r[:len(r)-len(rest)]...)
		}
		r = rest
	}
	return n.attrs[start:len(n.attrs):len(n.attrs)]
}

// keyValue checks a KeyValue (valid UTF-8 everywhere, each value set once and
// of a known type, not nested deeper than maxDepth) and returns its key and
// value.
func keyValue(b []byte, depth int) (key, val []byte, err error) {
	if key, val, ok := shortKeyValue(b); ok {
		return key, val, nil
	}
	nk, nv := 0, 0
	for len(b) > 0 {
		num, wt, _, p, rest, err := next(b)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		switch num {
		case 1:
			if err := want(wt, wtLen); err != nil {
				return nil, nil, err
			}
			if !validUTF8(p) {
				return nil, nil, errRefused
			}
			key = p
			nk++
		case 2:
			if err := want(wt, wtLen); err != nil {
				return nil, nil, err
			}
			if err := anyValue(p, depth); err != nil {
				return nil, nil, err
			}
			val = p
			nv++
		case 3: // key_strindex (profiles' dictionaries): for pdata
			return nil, nil, errRefused
		}
	}
	if nk > 1 || nv > 1 {
		return nil, nil, errRefused // a repeated value would be merged
	}
	return key, val, nil
}

// shortKeyValue is keyValue's fast path for the usual attribute: a key and a
// string value (or none), each shorter than 128 bytes, valid UTF-8. It
// reports false for anything else, which keyValue then reads in full.
func shortKeyValue(b []byte) (key, val []byte, ok bool) {
	b0 := b
	nk, nv := 0, 0
	for len(b) > 0 {
		if len(b) < 2 || b[1] >= 0x80 || int(b[1]) > len(b)-2 {
			return nil, nil, false
		}
		p := b[2 : 2+int(b[1])]
		switch b[0] {
		case 1<<3 | wtLen:
			key = p
			nk++
		case 2<<3 | wtLen:
			val = p
			nv++
		default:
			return nil, nil, false
		}
		b = b[2+len(p):]
	}
	if nk > 1 || nv > 1 {
		return nil, nil, false
	}
	// The value: empty, or string_value alone.
	if len(val) > 0 && (val[0] != 1<<3|wtLen || len(val) < 2 || int(val[1]) != len(val)-2) {
		return nil, nil, false
	}
	// The key and the value are valid UTF-8; the usual ASCII is seen at once,
	// tags and lengths included (all below 0x80 here).
	if !ascii(b0) && (!utf8.Valid(key) || len(val) > 0 && !utf8.Valid(val[2:])) {
		return nil, nil, false
	}
	return key, val, true
}

// validUTF8 is utf8.Valid, quicker for the usual ASCII.
func validUTF8(b []byte) bool { return ascii(b) || utf8.Valid(b) }

// ascii reports whether b holds only ASCII bytes.
func ascii(b []byte) bool {
	var or uint64
	for ; len(b) >= 8; b = b[8:] {
		or |= binary.LittleEndian.Uint64(b)
	}
	for _, c := range b {
		or |= uint64(c)
	}
	return or&0x8080808080808080 == 0
}

// anyValue checks an AnyValue.
func anyValue(b []byte, depth int) error {
	if depth >= maxDepth {
		return errRefused
	}
	set := 0
	for len(b) > 0 {
		num, wt, _, p, rest, err := next(b)
		if err != nil {
			return err
		}
		b = rest
		switch num {
		case 1, 7: // string_value, bytes_value
			if err := want(wt, wtLen); err != nil {
				return err
			}
			if num == 1 && !utf8.Valid(p) {
				return errRefused
			}
			set++
		case 2, 3: // bool_value, int_value
			if err := want(wt, wtVarint); err != nil {
				return err
			}
			set++
		case 4: // double_value
			if err := want(wt, wtFixed64); err != nil {
				return err
			}
			set++
		case 5, 6: // array_value, kvlist_value: repeated values, or key-values
			if err := want(wt, wtLen); err != nil {
				return err
			}
			set++
			for r := p; len(r) > 0; {
				n, wt, _, q, rest, err := next(r)
				if err != nil {
					return err
				}
				r = rest
				if n != 1 {
					continue
				}
				if err := want(wt, wtLen); err != nil {
					return err
				}
				if num == 5 {
					err = anyValue(q, depth+1)
				} else {
					_, _, err = keyValue(q, depth+1)
				}
				if err != nil {
					return err
				}
			}
		case 8: // string_value_strindex (profiles' dictionaries): for pdata
			return errRefused
		}
	}
	if set > 1 {
		return errRefused // a oneof set twice: pdata keeps the last, merged
	}
	return nil
}

// stringValue returns the string of an AnyValue that holds one.
func stringValue(b []byte) ([]byte, bool) {
	var s []byte
	ok := false
	for len(b) > 0 {
		num, _, _, p, rest, err := next(b)
		if err != nil {
			return nil, false
		}
		b = rest
		if num == 1 {
			s, ok = p, true
		}
	}
	return s, ok
}
