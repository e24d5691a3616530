package tsdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// AppenderV2 returns a Prometheus appender writing into the DB: samples are
// buffered until Commit, which stores them like one WriteMetrics batch (durable on
// return). Exemplars are not stored. With the appenders, *DB is a
// storage.Storage.
func (db *DB) AppenderV2(context.Context) storage.AppenderV2 {
	return &appender{db: db, idx: map[uint64][]int{}}
}

// Appender returns a Prometheus (v1) appender; see AppenderV2.
func (db *DB) Appender(context.Context) storage.Appender {
	return &appenderV1{appender{db: db, idx: map[uint64][]int{}}}
}

type appender struct {
	db    *DB
	batch []seriesSamples
	idx   map[uint64][]int // label hash → positions in batch
}

// ErrRejected wraps the reason a committed batch had samples refused.
var ErrRejected = errors.New("samples rejected")

func (a *appender) add(ls labels.Labels, s sample) storage.SeriesRef {
	h := ls.Hash()
	for _, i := range a.idx[h] {
		if labels.Equal(a.batch[i].lset, ls) {
			a.batch[i].samples = append(a.batch[i].samples, s)
			return storage.SeriesRef(h)
		}
	}
	a.idx[h] = append(a.idx[h], len(a.batch))
	a.batch = append(a.batch, seriesSamples{lset: ls.Copy(), samples: []sample{s}})
	return storage.SeriesRef(h)
}

func (a *appender) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	s := sample{t: t, st: st, v: v}
	switch {
	case fh != nil:
		s.fh = fh.Copy()
	case h != nil:
		s.fh = h.ToFloat(nil)
	}
	if s.fh != nil {
		if err := s.fh.Validate(); err != nil {
			return 0, fmt.Errorf("cannot append histogram: %w", err)
		}
	}
	return a.add(ls, s), nil
}

func (a *appender) Commit() error {
	batch := a.batch
	a.batch, a.idx = nil, map[uint64][]int{}
	if len(batch) == 0 {
		return nil
	}
	rejected, reason, err := a.db.appendBatch(batch)
	if err != nil {
		return err
	}
	if rejected > 0 {
		return fmt.Errorf("%w: %s: %w", ErrRejected, reason, storage.ErrOutOfOrderSample)
	}
	return nil
}

func (a *appender) Rollback() error {
	a.batch, a.idx = nil, map[uint64][]int{}
	return nil
}

type appenderV1 struct{ appender }

func (a *appenderV1) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	return a.appender.Append(ref, l, 0, t, v, nil, nil, storage.AppendV2Options{})
}

func (a *appenderV1) SetOptions(*storage.AppendOptions) {}

func (a *appenderV1) AppendExemplar(ref storage.SeriesRef, _ labels.Labels, _ exemplar.Exemplar) (storage.SeriesRef, error) {
	return ref, nil
}

func (a *appenderV1) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.appender.Append(ref, l, 0, t, 0, h, fh, storage.AppendV2Options{})
}

func (a *appenderV1) AppendHistogramSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if st >= t {
		return ref, storage.ErrOutOfOrderST
	}
	zero := &histogram.FloatHistogram{}
	switch {
	case fh != nil:
		zero = &histogram.FloatHistogram{Schema: fh.Schema, ZeroThreshold: fh.ZeroThreshold, CustomValues: fh.CustomValues}
	case h != nil:
		zero = &histogram.FloatHistogram{Schema: h.Schema, ZeroThreshold: h.ZeroThreshold, CustomValues: h.CustomValues}
	}
	return a.appender.Append(ref, l, 0, st, 0, nil, zero, storage.AppendV2Options{})
}

func (a *appenderV1) UpdateMetadata(ref storage.SeriesRef, l labels.Labels, m metadata.Metadata) (storage.SeriesRef, error) {
	a.db.meta.set(l.Get(labels.MetricName), Metadata{Type: string(m.Type), Help: m.Help, Unit: m.Unit})
	return ref, nil
}

func (a *appenderV1) AppendSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64) (storage.SeriesRef, error) {
	if st >= t {
		return ref, storage.ErrOutOfOrderST
	}
	return a.appender.Append(ref, l, 0, st, 0, nil, nil, storage.AppendV2Options{})
}
