package logindex

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestUnpersistedRecordsBounded checks that indexing waits while a shard holds
// MaxUnpersistedRecords in memory segments. Bleve's persister naps between
// rounds (persisterNap), so a writer faster than that fills memory segments:
// without the wait all 4,000 records would be held in memory at once.
func TestUnpersistedRecordsBounded(t *testing.T) {
	const limit, batch = 1000, 200
	ix, _ := openTest(t, &Options{Shards: 1, BatchRecords: batch, MaxUnpersistedRecords: limit})
	base := time.Now().Add(-time.Minute)
	for r := range 4000 / batch {
		var recs []genRecord
		for i := r * batch; i < (r+1)*batch; i++ {
			recs = append(recs, genRecord{t: base.Add(time.Duration(i) * time.Millisecond), service: "api",
				sev: plog.SeverityNumberInfo, body: fmt.Sprintf("request %d served", i)})
		}
		write(t, ix, recs)
	}

	p := ix.partitionList()[0]
	var most atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := unpersistedDocs(p.shards[0]); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	flush(t, ix)
	close(stop)
	<-sampled

	// The count is taken before each batch and Bleve updates it one batch late.
	if m := most.Load(); m == 0 || m > limit+2*batch {
		t.Errorf("most records held unpersisted = %d, want 1..%d", m, limit+2*batch)
	}
	st, err := ix.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PersistWait <= 0 {
		t.Errorf("PersistWait = %s, want > 0", st.PersistWait)
	}
	var m dto.Metric
	if err := ix.Collectors()[1].(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != st.PersistWait.Seconds() {
		t.Errorf("outpost_logs_persist_wait_seconds_total = %v, want %v", got, st.PersistWait.Seconds())
	}
	if n := count(t, ix, "served", base.Add(-time.Hour), base.Add(time.Hour)); n != 4000 {
		t.Errorf("found %d records, want 4000", n)
	}
}
