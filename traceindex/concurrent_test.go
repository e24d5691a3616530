package traceindex

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestConcurrentWritesReadsAndRetention runs writers (sharing group commits),
// readers and retention at once; run it with -race.
func TestConcurrentWritesReadsAndRetention(t *testing.T) {
	ix := openTest(t, &Options{PartitionDuration: time.Hour, MaxPast: 48 * time.Hour})
	ctx := context.Background()
	var (
		writers sync.WaitGroup
		wg      sync.WaitGroup
		written sync.Map // trace id -> spans
		stop    atomic.Bool
	)
	for w := 0; w < 4; w++ {
		writers.Go(func() {
			wl := newWorkload(uint64(100 + w))
			for i := 0; i < 15; i++ {
				// Writer 0 writes old data that retention removes meanwhile.
				start := t0.Add(-time.Duration(1+i%3) * time.Hour)
				if w == 0 {
					start = t0.Add(-30 * time.Hour)
				}
				td, ids := wl.request(100, start.UnixNano())
				if _, _, err := ix.WriteTraces(ctx, td); err != nil {
					t.Error(err)
					return
				}
				if w != 0 {
					for _, id := range ids {
						written.Store(id, true)
					}
				}
			}
		})
	}
	for rd := 0; rd < 2; rd++ {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := ix.Search(ctx, Query{Service: "frontend", Limit: 5}); err != nil {
					t.Error(err)
					return
				}
				if _, err := ix.Dependencies(ctx, t0.Add(-4*time.Hour), t0); err != nil {
					t.Error(err)
					return
				}
				if _, err := ix.Services(ctx, time.Time{}, time.Time{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			if _, err := ix.DropBefore(t0.Add(-24 * time.Hour)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	writers.Wait()
	stop.Store(true)
	wg.Wait()
	written.Range(func(k, _ any) bool {
		if _, err := ix.Trace(ctx, k.(pcommon.TraceID)); err != nil {
			t.Errorf("trace %v: %v", k, err)
			return false
		}
		return true
	})
	if _, err := ix.DropBefore(t0.Add(-24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	parts, _ := ix.Partitions()
	for _, p := range parts {
		if p.End.Before(t0.Add(-24 * time.Hour)) {
			t.Errorf("partition %v survived retention", p)
		}
	}
}
