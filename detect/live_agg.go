package detect

import (
	"math"
	"time"

	"outpost/tsdb"
)

// liveAgg gathers one series' samples into buckets of LiveOptions.Resolution,
// scored once each: the mean of a gauge's samples, the latest value of a
// counter's (its detector takes the rate itself), at the time of the bucket's
// latest sample.
//
// A bucket is scored when a sample of a later bucket arrives, or at once when
// the series' latest interval says its next sample will fall in a later bucket:
// a series sampled once a minute or less often is scored on each sample without
// delay, one sampled every 15 s on every fourth. A sample that then still falls
// in the scored bucket (the interval shrank) is not scored, nor is one before
// the Unix epoch.
type liveAgg struct {
	lastT  int64   // the latest sample taken, Unix ms (valid when started)
	gap    int64   // the interval before it, ms; zero while unknown
	bucket int64   // the latest bucket opened, t / Resolution: open while n > 0
	sum    float64 // gauges: the sum of the open bucket's values; counters: the latest value
	n      int32   // samples in the open bucket
	start  bool    // lastT is set
	closed bool    // bucket was scored (then n is zero, and lastT is in bucket)
}

// add takes sample s of the series of e into its bucket, scoring the buckets
// that close; res is the bucket width in milliseconds.
func (l *Live) add(e *setEntry, s *tsdb.ObservedSample, res int64) {
	a := &e.note.agg
	t, v := s.T, s.V
	if math.IsNaN(v) || math.IsInf(v, 0) || a.start && t <= a.lastT {
		return // the detector would skip it too (stale marker, out of order)
	}
	b := floorDiv(t, res)
	if a.n > 0 && b > a.bucket {
		l.score(e, s, a.lastT, a.value(e))
		a.n, a.sum, a.closed = 0, 0, true
	}
	if a.start {
		a.gap = t - a.lastT
	}
	a.lastT, a.start = t, true
	if a.closed && b <= a.bucket || b < 0 {
		return // its bucket was scored already, or is before the Unix epoch
	}
	a.bucket, a.closed = b, false
	a.n++
	if e.d.counter {
		a.sum = v
	} else {
		a.sum += v
	}
	if a.gap > 0 && t+a.gap >= (b+1)*res {
		l.score(e, s, t, a.value(e))
		a.n, a.sum, a.closed = 0, 0, true
	}
}

// value is the open bucket's value for the detector.
func (a *liveAgg) value(e *setEntry) float64 {
	if e.d.counter || a.n == 1 {
		return a.sum
	}
	return a.sum / float64(a.n)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// resolutionMillis is LiveOptions.Resolution in milliseconds: zero or less means
// every sample.
func resolutionMillis(d time.Duration) int64 {
	switch {
	case d == 0:
		return time.Minute.Milliseconds()
	case d < 0:
		return 0
	}
	return max(1, d.Milliseconds())
}

// pageMap holds pages by key and remembers the page of the latest lookup: the
// refs of one batch are mostly consecutive, so most lookups hit that page and
// hash nothing.
type pageMap[P any] struct {
	pages   map[uint64]*P
	lastKey uint64
	last    *P // the page of the latest lookup, nil if none
}

// find returns page k, nil if there is none.
func (m *pageMap[P]) find(k uint64) *P {
	if m.last != nil && k == m.lastKey {
		return m.last
	}
	p := m.pages[k]
	if p != nil {
		m.last, m.lastKey = p, k
	}
	return p
}

// make returns page k, creating it.
func (m *pageMap[P]) make(k uint64) *P {
	if p := m.find(k); p != nil {
		return p
	}
	if m.pages == nil {
		m.pages = map[uint64]*P{}
	}
	p := new(P)
	m.pages[k] = p
	return p
}

// drop removes page k.
func (m *pageMap[P]) drop(k uint64) {
	delete(m.pages, k)
	if m.lastKey == k {
		m.last = nil
	}
}

// reset removes every page.
func (m *pageMap[P]) reset() { m.pages, m.last = nil, nil }

// refIndex finds a watched series' Set entry by its TSDB ref without hashing:
// the refs sit in pages of refPageSize slots (a pageMap). A page is freed when
// its last entry leaves, so the index holds at most one page per watched series.
type refIndex struct{ pageMap[refPage] }

const (
	refPageBits = 8
	refPageSize = 1 << refPageBits
)

type refPage struct {
	n int // entries set
	e [refPageSize]*setEntry
}

func (x *refIndex) get(ref uint64) *setEntry {
	if p := x.find(ref >> refPageBits); p != nil {
		return p.e[ref&(refPageSize-1)]
	}
	return nil
}

func (x *refIndex) put(ref uint64, e *setEntry) {
	p := x.make(ref >> refPageBits)
	slot := &p.e[ref&(refPageSize-1)]
	if *slot == nil {
		p.n++
	}
	*slot = e
}

func (x *refIndex) remove(ref uint64) {
	k := ref >> refPageBits
	p := x.find(k)
	if p == nil {
		return
	}
	slot := &p.e[ref&(refPageSize-1)]
	if *slot == nil {
		return
	}
	*slot = nil
	if p.n--; p.n == 0 {
		x.drop(k)
	}
}
