package demo

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func testSchedule(seed uint64, start time.Time) *faultSchedule {
	return newFaultSchedule(rand.New(rand.NewPCG(seed, streamFaults)), start, 4*time.Minute, time.Minute)
}

func TestFaultScheduleIsDeterministic(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := testSchedule(1, start), testSchedule(1, start), testSchedule(2, start)
	same := true
	for range 50 {
		fa, fb, fc := a.next(), b.next(), c.next()
		if fa != fb {
			t.Fatalf("same seed, different faults: %+v vs %+v", fa, fb)
		}
		if fa != fc {
			same = false
		}
	}
	if same {
		t.Error("seeds 1 and 2 gave the same 50 faults")
	}
}

func TestFaultScheduleShape(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := testSchedule(42, start)
	prevEnd := start
	kinds := map[faultKind]int{}
	messages := map[string]bool{}
	for i := range 300 {
		f := s.next()
		if gap := f.start.Sub(prevEnd); gap < 2*time.Minute || gap > 6*time.Minute {
			t.Errorf("fault %d starts %v after the previous one ends, want 2–6 min", i, gap)
		}
		if d := f.end.Sub(f.start); d < 48*time.Second || d > 72*time.Second {
			t.Errorf("fault %d lasts %v, want 48–72 s", i, d)
		}
		if !f.activeAt(f.start) || f.activeAt(f.end) || f.activeAt(f.start.Add(-time.Nanosecond)) {
			t.Errorf("fault %d: activeAt is not [start, end)", i)
		}
		kinds[f.kind]++
		switch f.kind {
		case latencySpike:
			if !slices.Contains(spikeTargets, f.service) || f.factor < 5 || f.factor > 15 {
				t.Errorf("spike %d on %q with factor %.1f", i, f.service, f.factor)
			}
		case errorBurst:
			if !slices.Contains(burstTargets, f.service) || f.factor < 0.3 || f.factor > 0.7 {
				t.Errorf("burst %d on %q with error rate %.2f", i, f.service, f.factor)
			}
		case novelErrorLog:
			if !slices.Contains(novelTargets, f.service) || f.message == "" {
				t.Errorf("new error log %d on %q with message %q", i, f.service, f.message)
			}
			if messages[f.message] {
				t.Errorf("new error log %d repeats %q", i, f.message)
			}
			messages[f.message] = true
		}
		prevEnd = f.end
	}
	// Kinds come in shuffled rounds of three, so each appears once per round.
	for k := range faultKind(numFaultKinds) {
		if kinds[k] != 100 {
			t.Errorf("%v appeared %d times in 300 faults, want 100", k, kinds[k])
		}
	}
}

// TestNovelMessagesNeverAppearInOrdinaryLogs checks that a new error line is new:
// its failure text is not something the shop logs when healthy.
func TestNovelMessagesNeverAppearInOrdinaryLogs(t *testing.T) {
	p := newTestPlanner(t, 5)
	seen := map[string]bool{}
	for range 3000 {
		forEachLog(p.planTrace(), func(body string) { seen[body] = true })
	}
	for body := range seen {
		for _, f := range novelFailures {
			if containsFold(body, f) {
				t.Errorf("ordinary log %q contains the new failure %q", body, f)
			}
		}
	}
}
