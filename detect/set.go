package detect

import (
	"sync"
	"time"
)

// SetOptions bounds a Set.
type SetOptions struct {
	// MaxSeries caps the number of tracked series; observing a new series when the
	// cap is reached drops the least recently observed one. Zero means 100,000.
	MaxSeries int
	// IdleAfter is how long, in sample time, a series may go without a sample
	// before Evict drops it. Zero means one hour.
	IdleAfter time.Duration
}

// Set holds one Detector per series, keyed by a caller-chosen series id (e.g. a
// hash of the labels). Memory is bounded by MaxSeries. Safe for concurrent use.
type Set struct {
	mu      sync.Mutex
	max     int
	idle    time.Duration
	series  map[uint64]*setEntry
	oldest  *setEntry // least recently observed
	newest  *setEntry
	evicted uint64
}

type setEntry struct {
	id         uint64
	last       time.Time // timestamp of the latest sample
	prev, next *setEntry // prev is older, next is newer
	d          Detector
	note       liveSeries // the Live engine's state beside d; dropped with it
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
	r, _ := s.observe(id, ts, v, opts)
	return r
}

// observe is Observe that also returns the series' note, for the Live engine to
// keep its own per-series state in the same entry (one map lookup, not two).
// Only the Set's single user goroutine may touch the note.
func (s *Set) observe(id uint64, ts time.Time, v float64, opts Options) (Result, *liveSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.series[id]
	if e == nil {
		if len(s.series) >= s.max {
			s.remove(s.oldest)
			s.evicted++
		}
		e = &setEntry{id: id, d: Detector{counter: opts.Counter}}
		s.series[id] = e
	} else {
		s.unlink(e)
	}
	s.push(e)
	if ts.After(e.last) {
		e.last = ts
	}
	return e.d.Observe(ts, v), &e.note
}

// Evict drops the series whose latest sample is older than now − IdleAfter and
// returns how many it dropped. now is the caller's clock (e.g. the newest sample
// time seen), never read here.
func (s *Set) Evict(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-s.idle)
	n := 0
	for e := s.oldest; e != nil; {
		next := e.next
		if e.last.Before(cut) {
			s.remove(e)
			n++
		}
		e = next
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

func (s *Set) remove(e *setEntry) {
	s.unlink(e)
	delete(s.series, e.id)
}

func (s *Set) unlink(e *setEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.newest = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *Set) push(e *setEntry) {
	e.prev = s.newest
	if s.newest != nil {
		s.newest.next = e
	} else {
		s.oldest = e
	}
	s.newest = e
}
