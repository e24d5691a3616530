package logindex

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// TestBackpressure checks what WriteLogs does when MaxPendingRecords are waiting
// to be indexed: it waits up to PendingWait for indexing to make room, stores
// the batch once there is room, and otherwise answers with a *BackpressureError
// (or the context's error) having stored nothing. The backlog is simulated by
// raising the pending count, as a slow indexer would.
func TestBackpressure(t *testing.T) {
	const limit = 1000
	base := time.Now().Add(-time.Minute)
	batch := func(word string) plog.Logs {
		recs := make([]genRecord, 10)
		for i := range recs {
			recs[i] = genRecord{t: base.Add(time.Duration(i) * time.Millisecond), service: "api",
				sev: plog.SeverityNumberInfo, body: word + " request served"}
		}
		return makeLogs(recs)
	}
	type result struct {
		err error
		in  time.Duration
	}
	writeAsync := func(ix *Index, ctx context.Context, word string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			t0 := time.Now()
			_, _, err := ix.WriteLogs(ctx, batch(word))
			ch <- result{err, time.Since(t0)}
		}()
		return ch
	}
	isBackpressure := func(err error) bool {
		var bp *BackpressureError
		return errors.As(err, &bp) && bp.Pending == limit && bp.RetryAfter() > 0
	}

	t.Run("no wait", func(t *testing.T) {
		ix, _ := openTest(t, &Options{MaxPendingRecords: limit, PendingWait: -1})
		ix.pending.Add(limit)
		if _, _, err := ix.WriteLogs(context.Background(), batch("refused")); !isBackpressure(err) {
			t.Fatalf("WriteLogs = %v, want a *BackpressureError with 1000 pending", err)
		}
		ix.indexed(limit)
		flush(t, ix)
		if n := count(t, ix, "refused", base.Add(-time.Hour), base.Add(time.Hour)); n != 0 {
			t.Errorf("a refused batch stored %d records", n)
		}
	})

	t.Run("room made while waiting", func(t *testing.T) {
		ix, _ := openTest(t, &Options{MaxPendingRecords: limit, PendingWait: time.Minute})
		ix.pending.Add(limit)
		done := writeAsync(ix, context.Background(), "waited")
		select {
		case r := <-done:
			t.Fatalf("WriteLogs returned %v while nothing was indexed, want it to wait", r.err)
		case <-time.After(100 * time.Millisecond):
		}
		// Room for less than the batch does not let it in.
		ix.indexed(5)
		select {
		case r := <-done:
			t.Fatalf("WriteLogs returned %v with room for 5 of 10 records, want it to wait", r.err)
		case <-time.After(100 * time.Millisecond):
		}
		ix.indexed(limit - 5)
		if r := <-done; r.err != nil {
			t.Fatalf("WriteLogs after room was made = %v", r.err)
		}
		flush(t, ix)
		if n := count(t, ix, "waited", base.Add(-time.Hour), base.Add(time.Hour)); n != 10 {
			t.Errorf("found %d records of the batch that waited, want 10", n)
		}
	})

	t.Run("no room in time", func(t *testing.T) {
		const wait = 200 * time.Millisecond
		ix, _ := openTest(t, &Options{MaxPendingRecords: limit, PendingWait: wait})
		ix.pending.Add(limit)
		r := <-writeAsync(ix, context.Background(), "late")
		if !isBackpressure(r.err) {
			t.Fatalf("WriteLogs = %v, want a *BackpressureError with 1000 pending", r.err)
		}
		if r.in < wait {
			t.Errorf("WriteLogs gave up after %s, want after PendingWait (%s)", r.in, wait)
		}

		ctx, cancel := context.WithCancel(context.Background())
		done := writeAsync(ix, ctx, "cancelled")
		time.Sleep(20 * time.Millisecond)
		cancel()
		if r := <-done; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("WriteLogs with its context cancelled while waiting = %v, want context.Canceled", r.err)
		}
		ix.indexed(limit)
		flush(t, ix)
		if n := count(t, ix, "late OR cancelled", base.Add(-time.Hour), base.Add(time.Hour)); n != 0 {
			t.Errorf("refused batches stored %d records", n)
		}
	})
}
