package demo

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// faultKind names one kind of trouble the demo injects into the shop.
type faultKind int

const (
	// latencySpike makes one service answer several times slower (and busier).
	latencySpike faultKind = iota
	// errorBurst makes one service fail a large share of its requests.
	errorBurst
	// novelErrorLog makes one service log an error line never seen before in the run.
	novelErrorLog

	numFaultKinds = 3
)

func (k faultKind) String() string {
	switch k {
	case latencySpike:
		return "latency_spike"
	case errorBurst:
		return "error_burst"
	case novelErrorLog:
		return "new_error_log"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// fault is one injected incident: a kind, the service it hits and when.
type fault struct {
	kind       faultKind
	service    string
	start, end time.Time
	// factor is the latency multiplier of a latencySpike and the failure
	// probability of an errorBurst; it is unused for novelErrorLog.
	factor float64
	// message is the new log line of a novelErrorLog; empty otherwise.
	message string
}

// activeAt reports whether t falls in [start, end).
func (f fault) activeAt(t time.Time) bool {
	return !t.Before(f.start) && t.Before(f.end)
}

// Which services each kind of fault may hit. The frontend is the entry point and
// only shows the consequences; it is never the culprit of a spike or a burst.
var (
	spikeTargets = []string{"catalog", "cart", "checkout", "payment", "assistant"}
	burstTargets = []string{"catalog", "cart", "payment", "assistant"}
	novelTargets = []string{"frontend", "catalog", "cart", "checkout", "payment", "assistant"}
)

// The new error lines are made of a component and a failure that never appear in
// the shop's ordinary logs, so each pair is a log template nobody has seen before.
var (
	novelComponents = []string{
		"ledger sync", "audit publisher", "feature flag client", "tax rate cache",
		"session store", "image resizer", "fraud scorer", "search indexer",
	}
	novelFailures = []string{
		"x509: certificate has expired or is not yet valid",
		"read tcp 10.0.3.17:51432->10.0.7.2:9093: connection reset by peer",
		"proto: cannot parse invalid wire-format data",
		"write /var/spool/shop/segment-000183: disk quota exceeded",
		"lease lost: another leader was elected",
		"unsupported schema version 7 (want <= 6)",
		"context deadline exceeded after 3 retries",
		"unexpected EOF while reading frame header",
	}
)

// faultSchedule lays out faults one after another, never overlapping, from its own
// random source: the same seed gives the same schedule whatever else the demo does.
type faultSchedule struct {
	rng           *rand.Rand
	every, length time.Duration
	prevEnd       time.Time
	bag           []faultKind // kinds left in the current round, so all kinds recur
	novel         []string    // unused new error lines, in a seeded order
	novelRound    int
}

// newFaultSchedule returns a schedule whose first fault starts about every after
// start. every is the mean quiet time between faults, length the typical duration.
func newFaultSchedule(rng *rand.Rand, start time.Time, every, length time.Duration) *faultSchedule {
	return &faultSchedule{rng: rng, every: every, length: length, prevEnd: start}
}

// next returns the fault that follows the previous one.
func (s *faultSchedule) next() fault {
	if len(s.bag) == 0 {
		s.bag = []faultKind{latencySpike, errorBurst, novelErrorLog}
		s.rng.Shuffle(len(s.bag), func(i, j int) { s.bag[i], s.bag[j] = s.bag[j], s.bag[i] })
	}
	kind := s.bag[0]
	s.bag = s.bag[1:]

	gap := scaleDuration(s.every, 0.5+s.rng.Float64())      // 0.5–1.5 × every
	dur := scaleDuration(s.length, 0.8+0.4*s.rng.Float64()) // 0.8–1.2 × length
	f := fault{kind: kind, start: s.prevEnd.Add(gap)}
	f.end = f.start.Add(dur)
	switch kind {
	case latencySpike:
		f.service = pick(s.rng, spikeTargets)
		f.factor = 5 + 10*s.rng.Float64()
	case errorBurst:
		f.service = pick(s.rng, burstTargets)
		f.factor = 0.3 + 0.4*s.rng.Float64()
	case novelErrorLog:
		f.service = pick(s.rng, novelTargets)
		f.message = s.novelMessage()
	}
	s.prevEnd = f.end
	return f
}

// novelMessage returns a line not returned before by this schedule.
func (s *faultSchedule) novelMessage() string {
	if len(s.novel) == 0 {
		// After all 64 pairs were used (hours of demo), start over with a round
		// number in the text so the lines stay new.
		for _, c := range novelComponents {
			for _, f := range novelFailures {
				s.novel = append(s.novel, c+" failed: "+f)
			}
		}
		s.rng.Shuffle(len(s.novel), func(i, j int) { s.novel[i], s.novel[j] = s.novel[j], s.novel[i] })
		if s.novelRound > 0 {
			for i := range s.novel {
				s.novel[i] = fmt.Sprintf("%s [shard %d]", s.novel[i], s.novelRound)
			}
		}
		s.novelRound++
	}
	m := s.novel[0]
	s.novel = s.novel[1:]
	return m
}

func scaleDuration(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * f)
}

func pick[T any](rng *rand.Rand, xs []T) T {
	return xs[rng.IntN(len(xs))]
}
