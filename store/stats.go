package store

import (
	"io/fs"
	"path/filepath"
	"sync"
	"time"
)

// Rates are accepted items per second, averaged over the last Window.
type Rates struct {
	Points     float64       `json:"points"`
	LogRecords float64       `json:"log_records"`
	Spans      float64       `json:"spans"`
	Window     time.Duration `json:"-"`
}

// rateTracker keeps one sample of the totals per second in a ring.
type rateTracker struct {
	mu      sync.Mutex
	samples []rateSample
	next    int
	n       int
}

type rateSample struct {
	at     time.Time
	totals Counts
}

func newRateTracker(size int) *rateTracker {
	return &rateTracker{samples: make([]rateSample, size)}
}

func (r *rateTracker) record(at time.Time, c Counts) {
	r.mu.Lock()
	r.samples[r.next] = rateSample{at, c}
	r.next = (r.next + 1) % len(r.samples)
	r.n = min(r.n+1, len(r.samples))
	r.mu.Unlock()
}

// rates compares the newest sample with the one about window before it.
func (r *rateTracker) rates(window time.Duration) Rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n < 2 {
		return Rates{}
	}
	newest := r.samples[(r.next-1+len(r.samples))%len(r.samples)]
	oldest := newest
	for i := 2; i <= r.n; i++ {
		s := r.samples[(r.next-i+len(r.samples))%len(r.samples)]
		oldest = s
		if newest.at.Sub(s.at) >= window {
			break
		}
	}
	dt := newest.at.Sub(oldest.at).Seconds()
	if dt <= 0 {
		return Rates{}
	}
	return Rates{
		Points:     float64(newest.totals.Points-oldest.totals.Points) / dt,
		LogRecords: float64(newest.totals.LogRecords-oldest.totals.LogRecords) / dt,
		Spans:      float64(newest.totals.Spans-oldest.totals.Spans) / dt,
		Window:     newest.at.Sub(oldest.at),
	}
}

func (s *Store) sampleRates() {
	defer s.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	s.rates.record(time.Now(), s.Totals())
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.rates.record(now, s.Totals())
		}
	}
}

// Rates returns accepted items per second over about the last ten seconds.
func (s *Store) Rates() Rates { return s.rates.rates(10 * time.Second) }

// diskUsageCache remembers the size of the data directory for a few seconds, so
// that a page refreshing every second does not walk the tree every second.
type diskUsageCache struct {
	mu    sync.Mutex
	at    time.Time
	bytes int64
}

// DiskUsage returns the bytes the data directory holds (file sizes, recomputed at
// most every 10 seconds).
func (s *Store) DiskUsage() int64 {
	s.du.mu.Lock()
	defer s.du.mu.Unlock()
	if time.Since(s.du.at) < 10*time.Second && !s.du.at.IsZero() {
		return s.du.bytes
	}
	var total int64
	filepath.WalkDir(s.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // files vanish while we walk (retention, compaction)
		}
		if !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	s.du.at, s.du.bytes = time.Now(), total
	return total
}
