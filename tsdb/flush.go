package tsdb

import (
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

const day = 24 * time.Hour

// Flush writes every sample in the head into compressed partitions now and drops
// the WAL segments that held them.
func (db *DB) Flush() error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	return db.flushLocked()
}

type frozenSeries struct {
	id      uint32
	lset    labels.Labels
	samples []sample
}

func (db *DB) flushLocked() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return errClosed
	}
	if db.headSamples == 0 {
		db.mu.Unlock()
		return nil
	}
	frozen := map[uint32][]sample{}
	var list []frozenSeries
	for _, s := range db.series {
		if len(s.head) > 0 {
			frozen[s.id] = s.head
			list = append(list, frozenSeries{id: s.id, lset: s.lset, samples: s.head})
			s.head = nil
		}
	}
	newSeg, err := db.w.cut()
	if err != nil {
		for _, f := range list {
			db.series[f.id].head = f.samples
		}
		db.mu.Unlock()
		return fmt.Errorf("cannot flush head: %w", err)
	}
	fz := &frozenHead{series: frozen}
	db.flushing = append(db.flushing, fz)
	n := db.headSamples
	db.headSamples = 0
	db.headSince = time.Time{}
	db.mu.Unlock()

	parts, err := db.writeFrozen(list)

	db.mu.Lock()
	for i, f := range db.flushing {
		if f == fz {
			db.flushing = append(db.flushing[:i], db.flushing[i+1:]...)
			break
		}
	}
	if err != nil {
		// Put the samples back so they stay served; the WAL still holds them.
		for _, f := range list {
			ms := db.series[f.id]
			for _, s := range f.samples {
				if !containsT(ms.head, s.t) {
					db.insertHead(ms, s)
				}
			}
		}
		if db.headSince.IsZero() {
			db.headSince = db.opts.Now()
		}
		db.mu.Unlock()
		for _, p := range parts {
			p.f.Close()
			os.Remove(p.path)
		}
		return fmt.Errorf("cannot flush head: %w", err)
	}
	db.parts = append(db.parts, parts...)
	db.mu.Unlock()
	db.stats.flushes.Add(1)
	db.log.Debug("tsdb: head flushed", "samples", n, "partitions", len(parts))
	return db.w.removeBefore(newSeg)
}

// frozenHead is a head taken out of service by Flush while it is written out.
type frozenHead struct {
	series map[uint32][]sample
}

func containsT(ss []sample, t int64) bool {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].t >= t })
	return i < len(ss) && ss[i].t == t
}

// writeFrozen writes frozen head series into one partition per aligned range.
func (db *DB) writeFrozen(list []frozenSeries) ([]*partition, error) {
	sort.Slice(list, func(i, j int) bool { return labels.Compare(list[i].lset, list[j].lset) < 0 })
	dur := db.opts.PartitionDuration.Milliseconds()
	dayMs := day.Milliseconds()
	// Samples of days that are over go straight into daily partitions, so a
	// backfill of old data does not write one small file per 2 hours.
	doneBefore := floorDiv(db.opts.Now().Add(-db.opts.PartitionDuration-max(db.opts.OutOfOrderWindow, 0)).UnixMilli(), dayMs) * dayMs
	buckets := map[int64][]partSeries{}
	for _, f := range list {
		ss := f.samples
		for i := 0; i < len(ss); {
			width := dur
			if floorDiv(ss[i].t, dayMs)*dayMs+dayMs <= doneBefore {
				width = dayMs
			}
			start := floorDiv(ss[i].t, width) * width
			j := sort.Search(len(ss), func(k int) bool { return ss[k].t >= start+width })
			buckets[start] = append(buckets[start], partSeries{lset: f.lset, id: f.id, samples: ss[i:j]})
			i = j
		}
	}
	starts := make([]int64, 0, len(buckets))
	for s := range buckets {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	var parts []*partition
	for _, start := range starts {
		series := buckets[start]
		mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
		for _, s := range series {
			mint = min(mint, s.samples[0].t)
			maxt = max(maxt, s.samples[len(s.samples)-1].t)
		}
		db.mu.Lock()
		seq := db.nextSeq
		db.nextSeq++
		db.mu.Unlock()
		p, err := writePartition(db.partDir, seq, mint, maxt, len(series), func(i int) (partSeries, error) { return series[i], nil })
		if err != nil {
			return parts, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Compact merges the partitions of each finished UTC day into one partition and
// deletes partitions older than the retention.
func (db *DB) Compact() error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	if err := db.applyRetention(); err != nil {
		return err
	}
	return db.mergeDays()
}

func (db *DB) applyRetention() error {
	if db.opts.Retention < 0 {
		return nil
	}
	cutoff := db.opts.Now().Add(-db.opts.Retention).UnixMilli()
	db.mu.Lock()
	var keep, drop []*partition
	for _, p := range db.parts {
		if p.maxt < cutoff {
			drop = append(drop, p)
		} else {
			keep = append(keep, p)
		}
	}
	db.parts = keep
	db.mu.Unlock()
	for _, p := range drop {
		p.f.Close()
		if err := os.Remove(p.path); err != nil {
			return fmt.Errorf("cannot delete expired partition: %w", err)
		}
		db.stats.retention.Add(1)
		db.log.Info("tsdb: partition deleted by retention", "partition", p.path)
	}
	if len(drop) > 0 {
		return syncDir(db.partDir)
	}
	return nil
}

// mergeDays merges the partitions of every UTC day that ended more than one
// partition duration plus the out-of-order window ago, when the day has more than
// one partition.
func (db *DB) mergeDays() error {
	dayMs := day.Milliseconds()
	limit := db.opts.Now().Add(-db.opts.PartitionDuration - max(db.opts.OutOfOrderWindow, 0)).UnixMilli()
	db.mu.RLock()
	groups := map[int64][]*partition{}
	for _, p := range db.parts {
		d := floorDiv(p.mint, dayMs)
		if floorDiv(p.maxt, dayMs) != d || (d+1)*dayMs > limit {
			continue
		}
		groups[d] = append(groups[d], p)
	}
	db.mu.RUnlock()
	days := make([]int64, 0, len(groups))
	for d, g := range groups {
		if len(g) > 1 {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	for _, d := range days {
		if err := db.mergeParts(groups[d]); err != nil {
			return err
		}
	}
	return nil
}

// mergeParts writes the samples of parts (sorted by seq) into one partition and
// removes them. On equal timestamps the partition with the higher seq wins.
func (db *DB) mergeParts(parts []*partition) error {
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	idset := map[uint32]struct{}{}
	for _, p := range parts {
		mint, maxt = min(mint, p.mint), max(maxt, p.maxt)
		for id := range p.series {
			idset[id] = struct{}{}
		}
	}
	db.mu.RLock()
	ids := make([]frozenSeries, 0, len(idset))
	for id := range idset {
		ids = append(ids, frozenSeries{id: id, lset: db.series[id].lset})
	}
	seq := db.nextSeq
	db.nextSeq++ // a harmless race: only Flush and Compact take seqs, both under flushMu
	db.mu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return labels.Compare(ids[i].lset, ids[j].lset) < 0 })
	var bad *partition
	var badErr error
	np, err := writePartition(db.partDir, seq, mint, maxt, len(ids), func(i int) (partSeries, error) {
		var lists [][]sample
		for _, p := range parts {
			ss, err := p.readChunk(nil, ids[i].id, math.MinInt64, math.MaxInt64)
			if err != nil {
				bad, badErr = p, err
				return partSeries{}, err
			}
			lists = append(lists, ss)
		}
		return partSeries{lset: ids[i].lset, id: ids[i].id, samples: mergeSamples(lists)}, nil
	})
	if err != nil {
		if bad != nil {
			db.dropPartition(bad, badErr)
		}
		return fmt.Errorf("cannot merge partitions: %w", err)
	}
	db.mu.Lock()
	keep := db.parts[:0]
	for _, p := range db.parts {
		merged := false
		for _, q := range parts {
			merged = merged || p == q
		}
		if !merged {
			keep = append(keep, p)
		}
	}
	db.parts = append(keep, np)
	db.mu.Unlock()
	for _, p := range parts {
		p.f.Close()
		if err := os.Remove(p.path); err != nil {
			return fmt.Errorf("cannot remove merged partition: %w", err)
		}
	}
	db.stats.merges.Add(1)
	return syncDir(db.partDir)
}

// dropPartition takes a partition found corrupt while reading out of service and
// quarantines its file.
func (db *DB) dropPartition(bad *partition, cause error) {
	db.mu.Lock()
	found := false
	for i, p := range db.parts {
		if p == bad {
			db.parts = append(db.parts[:i], db.parts[i+1:]...)
			found = true
			break
		}
	}
	db.mu.Unlock()
	if found {
		bad.f.Close()
		db.quarantine(bad.path, cause)
	}
}

// mergeSamples merges sorted sample lists; on equal timestamps the later list wins.
func mergeSamples(lists [][]sample) []sample {
	var nonEmpty [][]sample
	total := 0
	for _, l := range lists {
		if len(l) > 0 {
			nonEmpty = append(nonEmpty, l)
			total += len(l)
		}
	}
	switch len(nonEmpty) {
	case 0:
		return nil
	case 1:
		return nonEmpty[0]
	}
	out := make([]sample, 0, total)
	for _, l := range nonEmpty {
		out = append(out, l...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].t < out[j].t })
	w := 0
	for i := range out {
		if w > 0 && out[w-1].t == out[i].t {
			out[w-1] = out[i]
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// maintain is the DB's one background goroutine: it flushes the head when it is
// old or large, merges finished days and applies the retention.
func (db *DB) maintain() {
	defer db.stopped.Done()
	t := time.NewTicker(db.opts.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		db.mu.RLock()
		n, since := db.headSamples, db.headSince
		db.mu.RUnlock()
		if n > 0 && ((db.opts.HeadMaxSamples > 0 && n >= db.opts.HeadMaxSamples) ||
			(db.opts.HeadMaxAge > 0 && !since.IsZero() && db.opts.Now().Sub(since) >= db.opts.HeadMaxAge)) {
			if err := db.Flush(); err != nil {
				db.log.Error("tsdb: cannot flush head", "err", err)
			}
		}
		if err := db.Compact(); err != nil {
			db.log.Error("tsdb: cannot compact partitions", "err", err)
		}
	}
}
