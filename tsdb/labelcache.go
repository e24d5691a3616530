package tsdb

import (
	"math"
	"strconv"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// labelCache maps the OTLP identity of a series (its scope labels, metric name,
// extra label and point attributes, as sent) to the Prometheus labels the mapping
// gives it, so that a series seen before costs one map lookup instead of building,
// sanitizing and sorting labels for every data point. It is bounded: when full it
// starts over, which only costs the rebuilds.
type labelCache struct {
	mu  sync.RWMutex
	m   map[string]cachedLabels
	max int
}

type cachedLabels struct {
	lset labels.Labels
	key  string // lset.Bytes, the batch's series key
}

// labelCacheSize bounds the entries: about 400 bytes each.
const labelCacheSize = 1 << 17

func (c *labelCache) get(sig []byte) (cachedLabels, bool) {
	c.mu.RLock()
	e, ok := c.m[string(sig)]
	c.mu.RUnlock()
	return e, ok
}

func (c *labelCache) put(sig []byte, e cachedLabels) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]cachedLabels, 1024)
	}
	c.m[string(sig)] = e
	c.mu.Unlock()
}

// appendSignature appends the identity of a series as sent: name, extra label
// and the attributes in the order they came. Two orders of the same attributes
// give two entries with equal labels, which is harmless.
func appendSignature(buf, scopeKey []byte, name, extraName, extraValue string, attrs pcommon.Map) []byte {
	buf = append(buf, scopeKey...)
	buf = append(buf, 0xff)
	buf = append(buf, name...)
	buf = append(buf, 0xff)
	buf = append(buf, extraName...)
	buf = append(buf, 0xff)
	buf = append(buf, extraValue...)
	attrs.Range(func(k string, v pcommon.Value) bool {
		buf = append(buf, 0xfe)
		buf = append(buf, k...)
		buf = append(buf, 0xfd, byte(v.Type()))
		switch v.Type() {
		case pcommon.ValueTypeStr:
			buf = append(buf, v.Str()...)
		case pcommon.ValueTypeInt:
			buf = strconv.AppendInt(buf, v.Int(), 10)
		case pcommon.ValueTypeDouble:
			buf = strconv.AppendUint(buf, math.Float64bits(v.Double()), 16)
		case pcommon.ValueTypeBool:
			buf = strconv.AppendBool(buf, v.Bool())
		default:
			buf = append(buf, v.AsString()...)
		}
		return true
	})
	return buf
}
