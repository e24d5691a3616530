package detect

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// A full Set keeps the series it watches while they are active, turns newcomers
// away, and gives their places to newcomers once they have gone quiet.
func TestSetCap(t *testing.T) {
	s := NewSet(&SetOptions{MaxSeries: 3, IdleAfter: time.Hour, StaleAfter: 5 * time.Minute})
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for id := uint64(1); id <= 3; id++ {
		s.Observe(id, at(0), 1, Options{})
	}
	// Six series take turns, minute after minute: the first three stay.
	for m := 1; m <= 10; m++ {
		for id := uint64(1); id <= 6; id++ {
			r := s.Observe(id, at(m), 1, Options{})
			if r.Skipped != (id > 3) {
				t.Fatalf("minute %d: series %d skipped=%v", m, id, r.Skipped)
			}
		}
	}
	if s.Len() != 3 || s.Evicted() != 0 || s.Refused() != 30 {
		t.Fatalf("len %d evicted %d refused %d, want 3, 0 and 30", s.Len(), s.Evicted(), s.Refused())
	}
	// Series 2 goes quiet: four minutes later it still holds its place, six
	// minutes later series 4 takes it.
	for m := 11; m <= 16; m++ {
		s.Observe(1, at(m), 1, Options{})
		s.Observe(3, at(m), 1, Options{})
		r := s.Observe(4, at(m), 1, Options{})
		if want := m < 16; r.Skipped != want {
			t.Fatalf("minute %d: series 4 skipped=%v, want %v", m, r.Skipped, want)
		}
	}
	if _, ok := s.series[2]; ok || s.Evicted() != 1 {
		t.Fatalf("series 2 kept (evicted %d); it was quiet for six minutes", s.Evicted())
	}
	// Evict drops what has been idle for IdleAfter, and only that.
	s.Observe(4, at(100), 1, Options{})
	if n := s.Evict(at(100)); n != 2 || s.Len() != 1 {
		t.Fatalf("Evict dropped %d, %d left; want 2 and 1", n, s.Len())
	}
	if _, ok := s.series[4]; !ok {
		t.Fatal("the fresh series was evicted")
	}
}

// TestSeriesHeap measures the heap a watched series costs the live detector: its
// Set entry (one allocation, rounded up to Go's size class), its share of the
// Set's map and its slot in the engine's ref index (refs numbered from 1, as the
// TSDB's are), over 100,000 series. It must stay within 1 KiB.
// A full Set whose series are all active does not look for stale ones again
// before the oldest of them could be stale, and a newcomer gets the place of
// one that went quiet within rescanEvery of its going stale.
func TestSetRescanBound(t *testing.T) {
	s := NewSet(&SetOptions{MaxSeries: 2, StaleAfter: 5 * time.Minute})
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	for _, sec := range []int{0, 15} {
		s.Observe(1, at(sec), 1, Options{})
		s.Observe(2, at(sec), 1, Options{})
	}
	if r := s.Observe(3, at(30), 1, Options{}); !r.Skipped {
		t.Fatal("newcomer watched in a full set")
	}
	// Both latest samples are at 0:15: none can be stale before 5:15.
	if got, want := s.noRoomBefore(), at(315).UnixNano(); got != want {
		t.Fatalf("no room before %v, want %v", time.Unix(0, got).UTC(), time.Unix(0, want).UTC())
	}
	// Series 2 goes quiet after 0:15; series 1 and the newcomer go on every
	// 15 s. At 5:15 the Set looks again and series 2 is just not stale yet
	// (its latest sample is exactly 5 minutes old), so the newcomer is turned
	// away until the next look, a minute later.
	refused := 1
	for sec := 45; sec <= 390; sec += 15 {
		s.Observe(1, at(sec), 1, Options{})
		r := s.Observe(3, at(sec), 1, Options{})
		if want := sec < 375; r.Skipped != want {
			t.Fatalf("%d s: newcomer skipped=%v, want %v", sec, r.Skipped, want)
		}
		if r.Skipped {
			refused++
		}
	}
	if int(s.Refused()) != refused || s.Evicted() != 1 {
		t.Fatalf("refused %d, evicted %d; want %d and 1", s.Refused(), s.Evicted(), refused)
	}
}

func TestSeriesHeap(t *testing.T) {
	const series = 100000
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewSet(&SetOptions{MaxSeries: series})
	var index refIndex
	for id := uint64(1); id <= series; id++ {
		s.Observe(id, start, 1, Options{})
		index.put(id, s.series[id])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / series
	runtime.KeepAlive(s)
	runtime.KeepAlive(&index)
	t.Logf("%.0f bytes of heap per series (entry %d bytes)", per, unsafe.Sizeof(setEntry{}))
	if per > 1024 {
		t.Errorf("a watched series takes %.0f bytes of heap, over 1 KiB", per)
	}
}
