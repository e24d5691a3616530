package detect

import (
	"slices"
	"sync"
	"time"
)

// SetOptions bounds a Set.
type SetOptions struct {
	// MaxSeries caps the number of tracked series; observing a new series when the
	// cap is reached drops the least recently observed ones (the oldest 1/64 of
	// the cap at once, at least one, so that the cost per sample stays constant).
	// Zero means 100,000.
	MaxSeries int
	// IdleAfter is how long, in sample time, a series may go without a sample
	// before Evict drops it. Zero means one hour.
	IdleAfter time.Duration
}

// Set holds one Detector per series, keyed by a caller-chosen series id (e.g. a
// hash of the labels). Memory is bounded by MaxSeries. Safe for concurrent use.
//
// Observing a sample touches only the series' own entry: recency is a sequence
// number in the entry, not a shared list, so that 100,000 series scattered in
// memory cost one entry's cache lines each rather than also their neighbours'.
type Set struct {
	mu      sync.Mutex
	max     int
	idle    time.Duration
	series  map[uint64]*setEntry
	seq     uint64   // observations so far; an entry's seen is the seq of its latest
	scratch []uint64 // reused by shrink
	evicted uint64
	dropped func(*setEntry) // called for each entry removed, under mu (Live's index)
}

// setEntry is one series. The fields holding pointers come first: the garbage
// collector scans an object only up to its last pointer, so the Detector's
// ~1 KiB of floats after them is never scanned.
type setEntry struct {
	note liveSeries // the Live engine's state beside d; dropped with it
	id   uint64
	seen uint64 // Set.seq at the latest observation
	last int64  // timestamp of the latest sample, Unix nanoseconds
	d    Detector
}

// NewSet returns an empty Set; nil options mean the defaults.
func NewSet(opts *SetOptions) *Set {
	s := &Set{max: 100000, idle: time.Hour, series: map[uint64]*setEntry{}}
	if opts != nil {
		if opts.MaxSeries > 0 {
			s.max = opts.MaxSeries
		}
		if opts.IdleAfter > 0 {
			s.idle = opts.IdleAfter
		}
	}
	return s
}

// Observe feeds one sample of series id to its detector, creating it with opts if
// the series is new, and returns the verdict.
func (s *Set) Observe(id uint64, ts time.Time, v float64, opts Options) Result {
	r, _ := s.observe(id, ts, v, func() Options { return opts })
	return r
}

// observe is Observe that also returns the series' entry, for the Live engine to
// keep its own per-series state in the same entry (one map lookup, not two), and
// that asks for the options only when the series is new. Only the Set's single
// user goroutine may touch the entry's note.
func (s *Set) observe(id uint64, ts time.Time, v float64, opts func() Options) (Result, *setEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(id, opts)
	s.touch(e, ts.UnixNano())
	return e.d.Observe(ts, v), e
}

// entry returns the entry of series id, creating it with opts() if the series is
// new (which may drop the least recently observed ones). For a Set with a single
// user goroutine (the Live engine's) that keeps the entries it is given: it may
// then touch them and use their Detector without the lock, since only entry and
// Evict, on that same goroutine, read or change them.
func (s *Set) entry(id uint64, opts func() Options) *setEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entryLocked(id, opts)
}

func (s *Set) entryLocked(id uint64, opts func() Options) *setEntry {
	e := s.series[id]
	if e == nil {
		if len(s.series) >= s.max {
			s.shrink()
		}
		e = &setEntry{id: id, d: Detector{counter: opts().Counter}}
		s.series[id] = e
	}
	return e
}

// touch records a sample of e at t (Unix nanoseconds) for recency and idleness.
func (s *Set) touch(e *setEntry, t int64) {
	s.seq++
	e.seen = s.seq
	if t > e.last {
		e.last = t
	}
}

// shrink drops the least recently observed max/64 series (at least one).
func (s *Set) shrink() {
	k := max(1, s.max/64)
	seen := s.scratch[:0]
	for _, e := range s.series {
		seen = append(seen, e.seen)
	}
	slices.Sort(seen)
	cut := seen[min(k, len(seen))-1]
	s.scratch = seen[:0]
	for id, e := range s.series {
		if e.seen <= cut {
			delete(s.series, id)
			s.evicted++
			if s.dropped != nil {
				s.dropped(e)
			}
		}
	}
}

// Evict drops the series whose latest sample is older than now − IdleAfter and
// returns how many it dropped. now is the caller's clock (e.g. the newest sample
// time seen), never read here.
func (s *Set) Evict(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-s.idle).UnixNano()
	n := 0
	for id, e := range s.series {
		if e.last < cut {
			delete(s.series, id)
			n++
			if s.dropped != nil {
				s.dropped(e)
			}
		}
	}
	s.evicted += uint64(n)
	return n
}

// Len returns the number of tracked series.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// Evicted returns how many series were dropped so far, by the cap or by Evict.
func (s *Set) Evicted() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}
