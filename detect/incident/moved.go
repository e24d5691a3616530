package incident

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"outpost/detect"
)

// Moved is a series of an incident's service that changed around the time the
// incident opened, with how much.
type Moved struct {
	Labels   map[string]string `json:"labels"`
	Metric   string            `json:"metric"`
	Selector string            `json:"selector"`
	Counter  bool              `json:"counter"` // Before and After are rates per second
	// Before is the median of the hour before (up to five minutes before the
	// incident opened); After the median from then to fifteen minutes after.
	Before float64 `json:"before"`
	After  float64 `json:"after"`
	Peak   float64 `json:"peak"` // the value farthest from Before in the later window
	// Change is how far After (or half of how far Peak) lies from Before, in
	// robust standard deviations of the hour before.
	Change float64 `json:"change"`
}

// Windows Moved compares, around the time an incident opened.
const (
	movedBefore = time.Hour
	movedGap    = 5 * time.Minute
	movedAfter  = 15 * time.Minute
	// movedMaxSeries caps the series one call reads.
	movedMaxSeries = 5000
	// movedMinChange is the least Change reported.
	movedMinChange = 3
)

// Moved ranks the other series of the incident's service (the label that named
// it, e.g. job="checkout") by how much they changed around the time the
// incident opened, largest first; at most limit (≤ 0: 10). The incident's own
// anomalous series, Outpost's own output series and histogram buckets are left
// out. An incident without a service, or a Manager without Queryable, has none.
func (m *Manager) Moved(ctx context.Context, id uint64, limit int) ([]Moved, error) {
	inc, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	if m.opts.Queryable == nil || inc.Service == "" || inc.ServiceBy == "" {
		return nil, nil
	}
	if limit <= 0 {
		limit = 10
	}
	at := inc.OpenedAt
	for _, mem := range inc.Members {
		if !mem.Since.IsZero() && mem.Since.Before(at) {
			at = mem.Since
		}
	}
	from, split, to := at.Add(-movedBefore), at.Add(-movedGap), at.Add(movedAfter)
	if now := m.opts.Now(); to.After(now) {
		to = now
	}
	own := map[string]bool{}
	for _, mem := range inc.Members {
		if mem.Kind == KindAnomaly {
			own[mem.Key] = true
		}
	}
	q, err := m.opts.Queryable.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("cannot query series of %s: %w", inc.Service, err)
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, inc.ServiceBy, inc.Service))
	var out []Moved
	var it chunkenc.Iterator
	var before, after []float64
	n := 0
	for set.Next() && n < movedMaxSeries {
		s := set.At()
		lset := s.Labels()
		name := lset.Get(labels.MetricName)
		if strings.HasPrefix(name, "outpost_") || strings.HasPrefix(name, "ALERTS") || strings.HasSuffix(name, "_bucket") {
			continue
		}
		sel := detect.Selector(lset)
		if own[sel] {
			continue
		}
		n++
		counter := detect.IsCounterName(name) // buckets were left out above
		before, after = before[:0], after[:0]
		it = s.Iterator(it)
		var pt int64
		var pv float64
		first := true
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			x := v
			if counter {
				if first || t <= pt {
					pt, pv, first = t, v, false
					continue
				}
				d := v - pv
				if d < 0 { // reset
					d = v
				}
				x = d / (float64(t-pt) / 1000)
				pt, pv = t, v
			}
			if t < split.UnixMilli() {
				before = append(before, x)
			} else {
				after = append(after, x)
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", sel, err)
		}
		if len(before) < 3 || len(after) < 1 {
			continue
		}
		mv, ok := change(before, after)
		if !ok {
			continue
		}
		mv.Labels, mv.Metric, mv.Selector, mv.Counter = lset.Map(), name, sel, counter
		out = append(out, mv)
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("cannot query series of %s: %w", inc.Service, err)
	}
	slices.SortFunc(out, func(a, b Moved) int {
		if c := cmp.Compare(b.Change, a.Change); c != 0 {
			return c
		}
		return strings.Compare(a.Selector, b.Selector)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// change measures how far after lies from before. It sorts both in place.
func change(before, after []float64) (Moved, bool) {
	slices.Sort(before)
	medB := median(before)
	dev := make([]float64, len(before))
	for i, x := range before {
		dev[i] = math.Abs(x - medB)
	}
	slices.Sort(dev)
	spread := 1.4826 * median(dev)
	spread = max(spread, 1e-3*math.Abs(medB), 1e-9)
	peak := after[0]
	for _, x := range after {
		if math.Abs(x-medB) > math.Abs(peak-medB) {
			peak = x
		}
	}
	slices.Sort(after)
	medA := median(after)
	c := max(math.Abs(medA-medB)/spread, math.Abs(peak-medB)/spread/2)
	c = min(c, 1e6)
	if c < movedMinChange {
		return Moved{}, false
	}
	return Moved{Before: medB, After: medA, Peak: peak, Change: math.Round(c*10) / 10}, true
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
