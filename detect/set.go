package detect

import (
	"math"
	"sync"
	"time"
)

// SetOptions bounds a Set.
type SetOptions struct {
	// MaxSeries caps the number of tracked series. A new series that comes when
	// the cap is reached takes the place of series that have been idle for
	// StaleAfter; when there are none, it is not tracked (and counted in
	// Refused). Series being watched are never dropped for newcomers: with more
	// active series than the cap, making room would evict series before they
	// had learnt anything, over and over. Zero means 100,000.
	MaxSeries int
	// IdleAfter is how long, in sample time, a series may go without a sample
	// before Evict drops it. Zero means one hour.
	IdleAfter time.Duration
	// StaleAfter is how long, in sample time, a series must have gone without
	// a sample before a new series may take its place when the cap is reached.
	// Zero means five minutes (PromQL's lookback: the series has ended).
	StaleAfter time.Duration
}

// rescanEvery is the least time, in sample time, between two looks of a full Set
// for stale series while it turns newcomers away, so that the cost per sample
// stays constant. It waits longer when no series can be stale sooner: until
// the oldest latest sample of its series is StaleAfter old.
const rescanEvery = time.Minute

// Set holds one Detector per series, keyed by a caller-chosen series id (e.g. a
// hash of the labels). Memory is bounded by MaxSeries. Safe for concurrent use.
//
// Observing a sample touches only the series' own entry: recency is the time of
// its latest sample in the entry, not a shared list, so that 100,000 series
// scattered in memory cost one entry's cache lines each rather than also their
// neighbours'.
type Set struct {
	mu       sync.Mutex
	max      int
	idle     time.Duration
	stale    int64 // StaleAfter in nanoseconds
	series   map[uint64]*setEntry
	nextScan int64 // while full: no stale series before this sample time (ns)
	evicted  uint64
	refused  uint64
	dropped  func(id uint64) // called for each series removed, under mu (Live's index)
}

// setEntry is one series. The fields holding pointers come first (after the time
// of the latest sample, which shares the first cache line with the engine's
// open bucket, see liveSeries): the garbage collector scans an object only up
// to its last pointer, so the Detector's ~630 bytes of numbers after them are
// never scanned. The series id is the entry's key in Set.series, not kept in
// it.
type setEntry struct {
	last int64      // timestamp of the latest sample, Unix nanoseconds
	note liveSeries // the Live engine's state beside d; dropped with it
	d    Detector
}

// NewSet returns an empty Set; nil options mean the defaults.
func NewSet(opts *SetOptions) *Set {
	s := &Set{max: 100000, idle: time.Hour, stale: int64(5 * time.Minute), series: map[uint64]*setEntry{}}
	if opts != nil {
		if opts.MaxSeries > 0 {
			s.max = opts.MaxSeries
		}
		if opts.IdleAfter > 0 {
			s.idle = opts.IdleAfter
		}
		if opts.StaleAfter > 0 {
			s.stale = int64(opts.StaleAfter)
		}
	}
	return s
}

// Observe feeds one sample of series id to its detector, creating it with opts if
// the series is new, and returns the verdict. A new series that finds the Set
// full of active series is not tracked: its verdict is Skipped.
func (s *Set) Observe(id uint64, ts time.Time, v float64, opts Options) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := ts.UnixNano()
	e := s.entryLocked(id, t, func() Options { return opts })
	if e == nil {
		return Result{Skipped: true}
	}
	s.touch(e, t)
	return e.d.Observe(ts, v)
}

// entry returns the entry of series id, creating it with opts() if the series is
// new, or nil when the Set is full of series that are not stale at sample time
// now (Unix nanoseconds). For a Set with a single user goroutine (the Live
// engine's) that keeps the entries it is given: it may then touch them and use
// their Detector without the lock, since only entry and Evict, on that same
// goroutine, read or change them.
func (s *Set) entry(id uint64, now int64, opts func() Options) *setEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entryLocked(id, now, opts)
}

func (s *Set) entryLocked(id uint64, now int64, opts func() Options) *setEntry {
	e := s.series[id]
	if e != nil {
		return e
	}
	if len(s.series) >= s.max && !s.makeRoom(now) {
		s.refused++
		return nil
	}
	e = &setEntry{d: Detector{counter: opts().Counter}}
	s.series[id] = e
	return e
}

// makeRoom drops the series that have been stale at sample time now, when it is
// time to look again, and reports whether there is room for one more.
func (s *Set) makeRoom(now int64) bool {
	if now < s.nextScan {
		return false
	}
	oldest := int64(math.MaxInt64) // the oldest latest sample of the series kept
	s.dropIf(func(e *setEntry) bool {
		if e.last < now-s.stale {
			return true
		}
		oldest = min(oldest, e.last)
		return false
	})
	if len(s.series) < s.max {
		return true
	}
	// A series' latest sample only grows newer, so none goes stale before
	// the oldest of them is StaleAfter old.
	s.nextScan = max(now+int64(rescanEvery), oldest+s.stale)
	return false
}

// noRoomBefore is the sample time (Unix nanoseconds) before which the full Set
// refuses a new series without looking for stale ones again.
func (s *Set) noRoomBefore() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextScan
}

// dropIf removes the entries for which drop is true and counts them.
func (s *Set) dropIf(drop func(*setEntry) bool) int {
	n := 0
	for id, e := range s.series {
		if drop(e) {
			delete(s.series, id)
			n++
			if s.dropped != nil {
				s.dropped(id)
			}
		}
	}
	s.evicted += uint64(n)
	return n
}

// forEach calls fn with every entry, under the Set's lock.
func (s *Set) forEach(fn func(*setEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.series {
		fn(e)
	}
}

// touch records a sample of e at t (Unix nanoseconds) for idleness.
func (s *Set) touch(e *setEntry, t int64) {
	if t > e.last {
		e.last = t
	}
}

// Evict drops the series whose latest sample is older than now − IdleAfter and
// returns how many it dropped. now is the caller's clock (e.g. the newest sample
// time seen), never read here.
func (s *Set) Evict(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-s.idle).UnixNano()
	return s.dropIf(func(e *setEntry) bool { return e.last < cut })
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

// Refused returns how many times a new series was not tracked because the Set
// was full of active series.
func (s *Set) Refused() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}
