package tsdb

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// labelCache maps the OTLP identity of a series (its scope labels, metric name,
// extra label and point attributes, as sent) to the Prometheus labels the mapping
// gives it and, once the series exists, to its SeriesRef, so that a series seen
// before costs one map lookup instead of building, sanitizing and sorting labels
// and then hashing them to find the series, for every data point. It has two
// levels: a translator looks its scope up once per scope, then each point in the
// scope's own small map, with a short key. It is bounded: when full it starts
// over, which only costs the rebuilds.
type labelCache struct {
	mu     sync.RWMutex
	scopes map[string]*scopeCache // by scope key: the scope's labels as bytes
	n      atomic.Int64           // entries in all scopes
	max    int64
	// resources holds the labels of the resources of requests on the wire.
	resources resourceCache
}

// scopeCache holds the entries of one scope. A translator reads m holding mu
// read-locked for all of a scope's points; putHeld takes the write lock.
type scopeCache struct {
	c  *labelCache
	mu sync.RWMutex
	m  map[string]*cachedLabels // by appendSignature
	// wire holds the series of requests read on the wire (WriteMetricsWire),
	// by appendSignature over the point's attributes as sent (otlpwire.Point's
	// Attrs) rather than appendAttrsSignature's form: a key space of its own.
	wire map[string]*cachedLabels
	// order is the series of the scope's latest request on the wire, in the
	// order of its points (see wireOrder).
	order atomic.Pointer[wireOrder[cachedLabels]]
	// families holds the scope's metrics on the wire by their header as sent,
	// and familyOrder those of its latest request, in order.
	families    map[string]*family
	familyOrder atomic.Pointer[wireOrder[family]]
}

// family is what a metric's header as sent (its kind, name, unit and
// description) maps to: its Prometheus name and metadata, which are the DB's
// metadata for that name as of generation gen (see metaStore.gen). A request
// that finds the generation unchanged need neither map the name again nor set
// the metadata.
type family struct {
	name string
	hist histogramSeries // the series names of a histogram
	md   Metadata
	gen  atomic.Uint64
}

// wireOrder is the sequence of series of one request's points in a scope (or
// of its metrics), with their keys in the scope's wire map (or families).
// Exporters send a scope's points in the same order every time, so the next
// request's point i is first checked against entry i: a comparison of bytes
// read in order, where a lookup in a map of many series costs a few cache
// misses.
type wireOrder[T any] struct {
	keys    []byte  // the keys, one after the other
	ends    []int32 // where key i ends in keys
	entries []*T
}

func (o *wireOrder[T]) key(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = o.ends[i-1]
	}
	return o.keys[start:o.ends[i]]
}

// prefix is the order of o's first n entries. It shares o's memory, which is
// never changed once stored: appending to the prefix copies.
func (o *wireOrder[T]) prefix(n int) *wireOrder[T] {
	if o == nil || n == 0 {
		return &wireOrder[T]{}
	}
	end := o.ends[n-1]
	return &wireOrder[T]{keys: o.keys[:end:end], ends: o.ends[:n:n], entries: o.entries[:n:n]}
}

func (o *wireOrder[T]) add(key []byte, e *T) {
	o.keys = append(o.keys, key...)
	o.ends = append(o.ends, int32(len(o.keys)))
	o.entries = append(o.entries, e)
}

// orderWalk follows one request's keys in a scope against the order of the
// scope's previous request (see wireOrder).
type orderWalk[T any] struct {
	prev   *wireOrder[T]
	at     int           // the place of the next key
	differ *wireOrder[T] // this request's order once it departs from prev
}

// find returns the entry of key: the one at its place in the previous order
// when the key is the same, else the one in m (nil if none). The caller holds
// the scope's lock, and notes the entry it uses with add.
func (w *orderWalk[T]) find(key []byte, m map[string]*T) *T {
	i := w.at
	w.at++
	if w.differ == nil && w.prev != nil && i < len(w.prev.entries) && bytes.Equal(w.prev.key(i), key) {
		return w.prev.entries[i]
	}
	if w.differ == nil {
		// The first key not as before: the order from here on is new.
		w.differ = w.prev.prefix(i)
	}
	return m[string(key)]
}

// add notes e, found or made for key, in this request's order.
func (w *orderWalk[T]) add(key []byte, e *T) {
	if w.differ != nil {
		w.differ.add(key, e)
	}
}

// end stores this request's order in p, if it is not the previous one, and
// starts w afresh.
func (w *orderWalk[T]) end(p *atomic.Pointer[wireOrder[T]]) {
	switch {
	case w.differ != nil:
		p.Store(w.differ)
	case w.prev != nil && w.at < len(w.prev.entries):
		p.Store(w.prev.prefix(w.at)) // fewer than last time
	}
	*w = orderWalk[T]{}
}

// resourceCache maps a resource as sent on the wire (its Resource message)
// to the labels its series carry and its target_info labels (see
// translator.resourceLabels), so that a resource seen before is neither
// decoded nor mapped again: exporters send the same resource with every
// request. It is bounded: when full it starts over, which only costs the
// rebuilds.
type resourceCache struct {
	mu sync.RWMutex
	m  map[string]resourceEntry
}

type resourceEntry struct{ base, info labels.Labels }

// resourceCacheSize bounds the entries.
const resourceCacheSize = 1 << 12

// get returns the labels of the resource raw, from make the first time.
func (c *resourceCache) get(raw []byte, make func() (base, info labels.Labels)) (base, info labels.Labels) {
	c.mu.RLock()
	r, ok := c.m[string(raw)]
	c.mu.RUnlock()
	if ok {
		return r.base, r.info
	}
	r.base, r.info = make()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= resourceCacheSize {
		c.m = map[string]resourceEntry{}
	}
	c.m[string(raw)] = r
	c.mu.Unlock()
	return r.base, r.info
}

type cachedLabels struct {
	lset labels.Labels
	ref  atomic.Uint64 // the series' SeriesRef in this DB once known, else 0
	mark atomic.Uint64 // translator id << 32 | index of the series in its batch
}

// labelCacheSize bounds the entries: about 400 bytes each.
const labelCacheSize = 1 << 17

// scope returns the cache of the scope with key scopeKey.
func (c *labelCache) scope(scopeKey []byte) *scopeCache {
	c.mu.RLock()
	sc := c.scopes[string(scopeKey)]
	c.mu.RUnlock()
	if sc != nil && c.n.Load() < c.max {
		return sc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scopes == nil || c.n.Load() >= c.max {
		c.scopes = map[string]*scopeCache{}
		c.n.Store(0)
	}
	if sc = c.scopes[string(scopeKey)]; sc == nil {
		sc = &scopeCache{c: c, m: map[string]*cachedLabels{}, wire: map[string]*cachedLabels{}, families: map[string]*family{}}
		c.scopes[string(scopeKey)] = sc
		c.n.Add(1)
	}
	return sc
}

// putHeld adds v under key to m, one of sc's maps, unless the key has an
// entry already, and returns the entry m holds. The caller holds sc.mu
// read-locked, as a translator does for a whole scope: putHeld lets it go for
// the write and takes it again.
func putHeld[T any](sc *scopeCache, m map[string]*T, key []byte, v *T) *T {
	sc.mu.RUnlock()
	sc.mu.Lock()
	if old := m[string(key)]; old != nil {
		v = old
	} else {
		m[string(key)] = v
		sc.c.n.Add(1)
	}
	sc.mu.Unlock()
	sc.mu.RLock()
	return v
}

// appendSignature appends the identity of a series inside its scope, as sent:
// the point's attributes as appendAttrsSignature encoded them, the name and the
// extra label. Every part is length-prefixed, so no two identities share a
// signature whatever bytes their strings hold.
func appendSignature(buf, attrsSig []byte, name, extraName, extraValue string) []byte {
	buf = appendSigString(buf, attrsSig)
	buf = appendSigString(buf, name)
	buf = appendSigString(buf, extraName)
	return appendSigString(buf, extraValue)
}

func appendSigString[S string | []byte](buf []byte, s S) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// appendAttrsSignature appends the attributes in the order they came. Two orders
// of the same attributes give two cache entries with equal labels, which is
// harmless.
func appendAttrsSignature(buf []byte, attrs pcommon.Map) []byte {
	attrs.Range(func(k string, v pcommon.Value) bool {
		buf = appendSigString(buf, k)
		buf = append(buf, byte(v.Type()))
		switch v.Type() {
		case pcommon.ValueTypeStr:
			buf = appendSigString(buf, v.Str())
		case pcommon.ValueTypeInt:
			buf = binary.AppendVarint(buf, v.Int())
		case pcommon.ValueTypeDouble:
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v.Double()))
		case pcommon.ValueTypeBool:
			buf = strconv.AppendBool(buf, v.Bool())
		default:
			buf = appendSigString(buf, v.AsString())
		}
		return true
	})
	return buf
}
