package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// seriesSamples is a batch's samples for one series: the series is ref when it is
// non-zero (see AppendRefs), else the one with labels lset. appendBatch sets ref
// once it has resolved lset.
type seriesSamples struct {
	lset    labels.Labels
	ref     SeriesRef
	samples []sample
}

// appliedBufs holds appendBatch's lists of the series applied and their
// samples between calls: as long as a batch each, allocating them afresh was a
// sixth of what OTLP ingest allocated besides decoding.
type appliedBufs struct {
	series  []*memSeries
	samples [][]sample
}

var appliedPool = sync.Pool{New: func() any { return new(appliedBufs) }}

// maxPooled is the longest slice a pool keeps: a rare huge batch does not pin
// its buffers.
const maxPooled = 1 << 16

// put keeps the lists for the next call, without what they point to.
func (ab *appliedBufs) put(series []*memSeries, samples [][]sample) {
	if cap(series) > maxPooled || cap(samples) > maxPooled {
		return
	}
	clear(series)
	clear(samples)
	ab.series, ab.samples = series[:0], samples[:0]
	appliedPool.Put(ab)
}

// appendBatch stores a batch: it checks every sample, logs the accepted ones to the
// WAL, puts them into the head and returns once the WAL record is durable.
func (db *DB) appendBatch(batch []seriesSamples) (rejected int64, reason string, err error) {
	return db.appendSamples(batch, false)
}

// appendSamples is appendBatch; derived marks samples computed from stored ones
// (AppendDerived): the observer does not see them, and the head counts them
// apart (DB.headFull).
func (db *DB) appendSamples(batch []seriesSamples, derived bool) (rejected int64, reason string, err error) {
	now := db.opts.Now()
	var minT int64 = math.MinInt64
	if db.opts.Retention > 0 {
		minT = now.Add(-db.opts.Retention).UnixMilli()
	}
	window := db.opts.OutOfOrderWindow.Milliseconds()

	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return 0, "", errClosed
	}
	if db.w.size > walSegmentSize {
		if _, err := db.w.cut(); err != nil {
			db.mu.Unlock()
			return 0, "", &BackpressureError{Err: err, After: 5 * time.Second}
		}
	}
	for _, b := range batch {
		// A ref of a collected series (collectSeries) is as good as its
		// labels, when the caller has them: the series is created anew.
		if b.ref != 0 && (uint64(b.ref) > uint64(len(db.series)) || db.series[b.ref-1] == nil && b.lset.IsEmpty()) {
			db.mu.Unlock()
			return 0, "", fmt.Errorf("cannot append: series ref %d: %w", b.ref, ErrUnknownRef)
		}
	}
	seg := db.w.segment()
	var (
		recs           = db.walBuf[:0]
		fl, hi         = db.recBuf[:0], []byte(nil)
		nf, nh         uint64
		ooo, old       int64
		accepted       int64
		from           int64 = math.MaxInt64 // the earliest sample accepted
		seriesRec            = db.serBuf[:0]
		wasEmpty             = db.headSamples == 0
		ab                   = appliedPool.Get().(*appliedBufs)
		applied              = ab.series[:0]
		appliedSamples       = ab.samples[:0]
	)
	for i := range batch {
		b := &batch[i]
		var ms *memSeries
		var ok []sample
		all := true // every sample so far accepted: ok is b.samples[:j]
		for j, s := range b.samples {
			if s.t < minT {
				old++
				if all {
					ok, all = slices.Clone(b.samples[:j]), false
				}
				continue
			}
			if ms == nil {
				if b.ref != 0 {
					ms = db.series[b.ref-1]
				}
				if ms == nil {
					ms = db.getOrCreate(b.lset)
					b.ref = SeriesRef(ms.id) + 1
				}
			}
			if window >= 0 && ms.maxT != math.MinInt64 && s.t < ms.maxT-window ||
				window < 0 && s.t < ms.maxT {
				ooo++
				if all {
					ok, all = slices.Clone(b.samples[:j]), false
				}
				continue
			}
			if !all {
				ok = append(ok, s)
			}
			if s.t > ms.maxT {
				ms.maxT = s.t
			}
		}
		if all {
			ok = b.samples // not kept past this call
		}
		if len(ok) == 0 {
			continue
		}
		if ms.walSeg != seg {
			seriesRec = binary.AppendUvarint(seriesRec[:0], uint64(ms.id))
			seriesRec = appendLabels(seriesRec, ms.lset)
			recs = appendWALRecord(recs, recSeries, seriesRec)
			ms.walSeg = seg
		}
		for _, s := range ok {
			from = min(from, s.t)
			if s.fh == nil {
				fl = binary.AppendUvarint(fl, uint64(ms.id))
				fl = binary.AppendVarint(fl, s.t)
				fl = binary.AppendVarint(fl, s.st)
				fl = binary.LittleEndian.AppendUint64(fl, math.Float64bits(s.v))
				nf++
			} else {
				hi = binary.AppendUvarint(hi, uint64(ms.id))
				hi = binary.AppendVarint(hi, s.t)
				hi = binary.AppendVarint(hi, s.st)
				hi = appendHistogram(hi, s.fh)
				nh++
			}
		}
		applied = append(applied, ms)
		appliedSamples = append(appliedSamples, ok)
		accepted += int64(len(ok))
	}
	var cnt []byte
	if nf > 0 {
		cnt = binary.AppendUvarint(cnt[:0], nf)
		recs = appendWALRecord2(recs, recFloats, cnt, fl)
	}
	if nh > 0 {
		cnt = binary.AppendUvarint(cnt[:0], nh)
		recs = appendWALRecord2(recs, recHistograms, cnt, hi)
	}
	db.recBuf, db.serBuf = fl[:0], seriesRec[:0]
	var seq uint64
	if len(recs) > 0 {
		seq, err = db.w.add(recs)
		if err != nil {
			db.walBuf = recs[:0]
			db.mu.Unlock()
			return 0, "", &BackpressureError{Err: err, After: 5 * time.Second}
		}
		n0 := db.headSamples
		for i, ms := range applied {
			for _, s := range appliedSamples[i] {
				db.insertHead(ms, s)
			}
		}
		if derived {
			db.headDerived += db.headSamples - n0
		}
		if wasEmpty && db.headSamples > 0 {
			db.headSince = now
		}
		if db.headFull() {
			select {
			case db.flushDue <- struct{}{}:
			default:
			}
		}
	}
	if cap(recs) <= 8<<20 {
		db.walBuf = recs[:0]
	} else {
		db.walBuf = nil
	}
	db.mu.Unlock()
	if accepted > 0 {
		db.change(from)
	}

	db.stats.oooRejected.Add(ooo)
	db.stats.tooOld.Add(old)
	db.stats.appended.Add(accepted)
	if seq > 0 {
		if err := db.w.sync(seq); err != nil {
			return 0, "", &BackpressureError{Err: err, After: 5 * time.Second}
		}
	}
	// The batch is durable: show it to the observer, outside the lock.
	if !derived {
		db.observe(applied, appliedSamples, accepted)
	}
	ab.put(applied, appliedSamples)
	rejected = ooo + old
	switch {
	case ooo > 0 && old > 0:
		reason = fmt.Sprintf("%d samples older than the out-of-order window and %d older than the retention", ooo, old)
	case ooo > 0:
		reason = fmt.Sprintf("%d samples older than the out-of-order window of %v", ooo, db.opts.OutOfOrderWindow)
	case old > 0:
		reason = fmt.Sprintf("%d samples older than the retention of %v", old, db.opts.Retention)
	}
	return rejected, reason, nil
}
