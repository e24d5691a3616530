package logindex

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestGroupCommitOneFrame holds the lead of a partition's appends while five
// writes arrive, then hands it to the first: all five are appended as one
// frame, each record with its own id, readable by it, in the order of the
// writes.
func TestGroupCommitOneFrame(t *testing.T) {
	ix, _ := openTest(t, nil)
	now := time.Now().UTC()
	p, err := ix.partition(dayOf(now), true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.release()
	p.groupMu.Lock()
	p.leading = true // as if a write were being appended
	p.groupMu.Unlock()
	const writes, per = 5, 3
	recs := make([][]Record, writes)
	var wg sync.WaitGroup
	for w := range writes {
		gen := make([]genRecord, per)
		for i := range gen {
			gen[i] = genRecord{t: now, service: "api", sev: genLevels[0], body: fmt.Sprintf("write %d record %d", w, i)}
		}
		recs[w] = appendRecordsFromLogs(nil, makeLogs(gen), now)
		ix.pending.Add(per)
		wg.Add(1)
		go func() {
			defer wg.Done()
			wb := getWriteBuffers()
			defer putWriteBuffers(wb)
			wb.encode(recs[w])
			if queued, err := p.append(recs[w], wb); err != nil || queued != per {
				t.Errorf("write %d: queued %d, %v", w, queued, err)
			}
		}()
		for { // one at a time, so that they wait in order
			p.groupMu.Lock()
			n := len(p.waiting)
			p.groupMu.Unlock()
			if n == w+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	p.groupMu.Lock()
	p.waiting[0].done <- true
	p.groupMu.Unlock()
	wg.Wait()
	var off int64 = -1
	for w := range recs {
		for i, r := range recs[w] {
			id, err := parseDocID(r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if off == -1 {
				off = id.off()
			}
			if id.off() != off || id.idx() != w*per+i {
				t.Errorf("write %d record %d: id %s (frame %d, index %d), want frame %d index %d", w, i, r.ID, id.off(), id.idx(), off, w*per+i)
			}
			got, err := ix.Get(r.ID)
			if err != nil || got.Body != r.Body {
				t.Errorf("Get(%s) = %q, %v, want %q", r.ID, got.Body, err, r.Body)
			}
		}
	}
	if p.leading || len(p.waiting) != 0 {
		t.Errorf("after the group: leading %v, %d waiting", p.leading, len(p.waiting))
	}
}

// TestGroupCommitConcurrentWrites writes small batches from many goroutines
// at once: every record is found once, by search and by its id. Run it with
// -race.
func TestGroupCommitConcurrentWrites(t *testing.T) {
	ix, _ := openTest(t, nil)
	now := time.Now().UTC().Add(-time.Minute)
	const writers, batches, per = 16, 30, 7
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				recs := make([]genRecord, per)
				for i := range recs {
					recs[i] = genRecord{t: now.Add(time.Duration(w*batches*per+b*per+i) * time.Microsecond), service: genServices[(w+i)%len(genServices)],
						sev: genLevels[i%len(genLevels)], body: fmt.Sprintf("gc w%d b%d r%d", w, b, i)}
				}
				if _, _, err := ix.WriteLogs(context.Background(), makeLogs(recs)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	flush(t, ix)
	seen := map[string]string{} // body → id
	frames := map[int64]bool{}
	cursor := ""
	for {
		res, err := ix.Search(context.Background(), SearchRequest{Query: "gc", Start: now.Add(-time.Minute), End: now.Add(time.Minute), Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != writers*batches*per {
			t.Fatalf("total %d, want %d", res.Total, writers*batches*per)
		}
		for _, r := range res.Records {
			if id, ok := seen[r.Body]; ok {
				t.Fatalf("%q twice: %s and %s", r.Body, id, r.ID)
			}
			seen[r.Body] = r.ID
			id, _ := parseDocID(r.ID)
			frames[id.off()] = true
			if got, err := ix.Get(r.ID); err != nil || got.Body != r.Body {
				t.Fatalf("Get(%s) = %q, %v, want %q", r.ID, got.Body, err, r.Body)
			}
		}
		if cursor = res.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != writers*batches*per {
		t.Errorf("%d records found, want %d", len(seen), writers*batches*per)
	}
	t.Logf("%d writes in %d frames", writers*batches, len(frames))
}
