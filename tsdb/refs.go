package tsdb

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// SeriesRef names a series of an open DB for AppendRefs: valid until the DB is
// closed, never across restarts. Zero means none.
type SeriesRef uint64

// ErrUnknownRef is returned by AppendRefs for a ref this DB never gave out.
var ErrUnknownRef = errors.New("unknown series ref")

// RefSample is one float sample for AppendRefs.
type RefSample struct {
	// Ref is the series, as an earlier AppendRefs set it. Zero: Labels name the
	// series (created if new) and AppendRefs sets Ref, for the caller to keep.
	Ref    SeriesRef
	Labels labels.Labels // read only while Ref is zero
	T      int64         // Unix milliseconds
	V      float64
}

// AppendRefs stores float samples of series the caller already knows by ref, like
// one WriteMetrics batch or one appender Commit: the same retention and
// out-of-order checks, one WAL record (the usual float-samples record, see
// FORMAT.md), durable on return through the shared WAL fsync, seen by the
// observer. It skips the per-sample label copy, hashing and series lookup of the
// appenders: a sample with a non-zero Ref goes straight to its series. A sample
// with a zero Ref is resolved by its Labels and gets its Ref set, unless it is
// refused as older than the retention (then the series is not created).
//
// An unknown ref fails the whole call (ErrUnknownRef) before anything is stored:
// one this DB never gave out, or one of a series removed from memory after its
// last sample was deleted (retention), unless the sample also has Labels, which
// then create the series anew (and set Ref).
// Refused samples are counted in rejected and make err wrap ErrRejected and
// storage.ErrOutOfOrderSample, as Commit's does; the others are stored.
func (db *DB) AppendRefs(samples []RefSample) (rejected int64, err error) {
	return db.appendRefs(samples, false)
}

// AppendDerived is AppendRefs for samples computed from samples the DB stored,
// such as an anomaly detector's scores: the observer does not see them (its
// own output need not come back to it), and the head counts them apart from
// HeadMaxSamples (up to as many again), so that they do not make flushes more
// frequent. Everything else is as with AppendRefs: the same checks, the same
// WAL record, durable on return.
func (db *DB) AppendDerived(samples []RefSample) (rejected int64, err error) {
	return db.appendRefs(samples, true)
}

func (db *DB) appendRefs(samples []RefSample, derived bool) (rejected int64, err error) {
	if len(samples) == 0 {
		return 0, nil
	}
	bufs := translatorPool.Get().(*translatorBufs)
	flat := grown(bufs.flat, len(samples))[:len(samples)]
	batch := grown(bufs.batch, len(samples))
	defer func() { bufs.put(batch, bufs.entries, flat) }()
	for i, s := range samples {
		flat[i] = sample{t: s.T, v: s.V}
		if n := len(batch); n > 0 && s.Ref != 0 && batch[n-1].ref == s.Ref {
			batch[n-1].samples = flat[i-len(batch[n-1].samples) : i+1]
			continue
		}
		batch = append(batch, seriesSamples{lset: s.Labels, ref: s.Ref, samples: flat[i : i+1 : i+1]})
	}
	rejected, reason, err := db.appendSamples(batch, derived)
	// Series resolved before a failure (e.g. of the WAL) exist: their refs are
	// valid too.
	setRefs(samples, batch)
	if err != nil {
		return 0, err
	}
	if rejected > 0 {
		return rejected, fmt.Errorf("%w: %s: %w", ErrRejected, reason, storage.ErrOutOfOrderSample)
	}
	return 0, nil
}

// setRefs copies the refs appendBatch resolved into the samples: those with
// none, and those whose ref named a collected series that their labels created
// anew.
func setRefs(samples []RefSample, batch []seriesSamples) {
	i := 0
	for _, b := range batch {
		for range b.samples {
			if b.ref != 0 {
				samples[i].Ref = b.ref
			}
			i++
		}
	}
}
