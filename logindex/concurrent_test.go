package logindex

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// TestConcurrentWritesAndSearches writes from several goroutines while others
// search and tail; at the end every record is found once. Run it with -race.
// The tail's buffer holds every record it is sent: a reader that falls behind
// is dropped by design (tail_test.go), and whether this one does depends only
// on how the machine schedules it beside the searches.
func TestConcurrentWritesAndSearches(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchRecords: 100, TailBuffer: 4000})
	tl, err := ix.Tail("severity>=ERROR")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	now := time.Now()
	const writers, batches, per = 4, 20, 50
	errorsWant := 0
	for i := 0; i < per; i++ {
		if genLevels[i%len(genLevels)] >= plog.SeverityNumberError {
			errorsWant++
		}
	}
	errorsWant *= writers * batches
	tailed := make(chan int)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n := 0
		for n < errorsWant && tl.Next(ctx) {
			if tl.Record().SeverityNumber < int32(plog.SeverityNumberError) {
				t.Errorf("tail sent %+v", tl.Record())
			}
			n++
		}
		tailed <- n
	}()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				recs := make([]genRecord, per)
				for i := range recs {
					recs[i] = genRecord{t: now.Add(-time.Duration(i) * time.Millisecond), service: fmt.Sprintf("w%d", w), sev: genLevels[i%len(genLevels)], body: fmt.Sprintf("writer %d batch %d record %d", w, b, i)}
				}
				if _, _, err := ix.WriteLogs(context.Background(), makeLogs(recs)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ix.Search(context.Background(), SearchRequest{Query: "writer", Limit: 10}); err != nil {
				t.Error(err)
				return
			}
			if _, err := ix.Facets(context.Background(), FacetsRequest{}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	rg.Wait()
	flush(t, ix)
	if n := count(t, ix, "writer", time.Time{}, time.Time{}); n != writers*batches*per {
		t.Fatalf("found %d records, want %d", n, writers*batches*per)
	}
	if n := <-tailed; n != errorsWant {
		t.Fatalf("tail delivered %d of %d records: %v", n, errorsWant, tl.Err())
	}
}
