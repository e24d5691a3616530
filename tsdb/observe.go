package tsdb

import (
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// ObservedSample is one accepted float sample as an observer sees it (see
// SetObserver): the series' Prometheus labels, the timestamp in Unix milliseconds
// and the value.
type ObservedSample struct {
	Labels labels.Labels // the DB's own copy; immutable, may be kept
	// Ref identifies the series while the DB is open (not across restarts): a
	// cheaper key than a hash of Labels, and free of collisions.
	Ref uint64
	T   int64
	V   float64
}

// Observer receives the float samples of each committed batch. It runs on the
// writer's goroutine after the batch is durable and outside the DB's locks, so it
// must not block: hand the samples to a queue (dropping when it is full) and
// return. The observer owns batch and may keep it; once done with it, it may
// hand it back with RecycleObserved.
type Observer func(batch []ObservedSample)

// observedPool holds batches handed back with RecycleObserved.
var observedPool sync.Pool

// RecycleObserved hands back a batch an Observer received, for the memory of a
// later one. Nothing may use batch, or a slice of it, afterwards.
func RecycleObserved(batch []ObservedSample) {
	if cap(batch) == 0 || cap(batch) > maxPooled {
		return
	}
	batch = batch[:cap(batch)]
	clear(batch) // the labels
	observedPool.Put(&batch)
}

// newObserved returns an empty batch with room for n samples.
func newObserved(n int64) []ObservedSample {
	if p, ok := observedPool.Get().(*[]ObservedSample); ok && int64(cap(*p)) >= n {
		return (*p)[:0]
	}
	return make([]ObservedSample, 0, n)
}

// SetObserver installs fn as the observer of accepted float samples (from
// WriteMetrics and the appenders alike), replacing any previous one; nil removes
// it. Histogram samples are not observed. The cost to ingest when set is one slice
// of len(samples) per batch (one handed back with RecycleObserved, when there is
// one) and the call itself.
func (db *DB) SetObserver(fn Observer) {
	if fn == nil {
		db.observer.Store(nil)
		return
	}
	db.observer.Store(&fn)
}

// OnChange adds fn to the functions called after each change to what queries
// read, with the earliest time (Unix milliseconds) at which samples may have
// changed: once a batch's samples are visible to queries, with its earliest
// sample's time; once a partition is removed (retention, quarantine), with
// math.MinInt64. A query that reads after fn has returned sees the change. fn
// runs on the writer's goroutine and must be quick and not call the DB.
func (db *DB) OnChange(fn func(from int64)) {
	db.changeMu.Lock()
	defer db.changeMu.Unlock()
	var fns []func(int64)
	if p := db.changed.Load(); p != nil {
		fns = append(fns, *p...)
	}
	fns = append(fns, fn)
	db.changed.Store(&fns)
}

// change tells the OnChange functions that samples from from on may have
// changed.
func (db *DB) change(from int64) {
	if p := db.changed.Load(); p != nil {
		for _, fn := range *p {
			fn(from)
		}
	}
}

// observe hands the committed float samples of a batch to the observer, if any.
func (db *DB) observe(applied []*memSeries, samples [][]sample, n int64) {
	p := db.observer.Load()
	if p == nil || n == 0 {
		return
	}
	out := newObserved(n)
	for i, ms := range applied {
		for _, s := range samples[i] {
			if s.fh == nil {
				out = append(out, ObservedSample{Labels: ms.lset, Ref: uint64(ms.id), T: s.t, V: s.v})
			}
		}
	}
	if len(out) > 0 {
		(*p)(out)
	}
}
