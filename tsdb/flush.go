package tsdb

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/internal/atomicfile"
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
	id   uint32
	lset labels.Labels
	head *head
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
	frozen := map[uint32]*head{}
	var list []frozenSeries
	all := db.series // series are only ever appended: this prefix stays valid
	for _, s := range db.series {
		if s != nil && !s.head.empty() {
			frozen[s.id] = s.head
			list = append(list, frozenSeries{id: s.id, lset: s.lset, head: s.head})
			s.head = nil
		}
	}
	newSeg, err := db.w.cut()
	if err != nil {
		for _, f := range list {
			db.series[f.id].head = f.head
		}
		db.mu.Unlock()
		return fmt.Errorf("cannot flush head: %w", err)
	}
	fz := &frozenHead{series: frozen}
	db.flushing = append(db.flushing, fz)
	n := db.headSamples
	db.headSamples, db.headDerived = 0, 0
	db.headSince = time.Time{}
	db.mu.Unlock()

	parts, err := db.writeFrozen(db.inLabelOrder(list, all))

	db.mu.Lock()
	for i, f := range db.flushing {
		if f == fz {
			db.flushing = slices.Delete(db.flushing, i, i+1) // clears the slot left at the end
			break
		}
	}
	if err != nil {
		// Put the samples back so they stay served; the WAL still holds them.
		for _, f := range list {
			ms := db.series[f.id]
			for _, s := range f.head.samples(nil, math.MinInt64, math.MaxInt64) {
				if !ms.head.contains(s.t) {
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
	series map[uint32]*head
}

// inLabelOrder returns list, frozen series in id order out of all, in label
// order. It keeps the label order of every series between flushes (db.order,
// four bytes a series) and sorts only the series created since the last
// flush: sorting all of them by their labels at each flush took about half a
// second per 400,000 series, most of it in cache misses on the labels.
// db.flushMu must be held.
func (db *DB) inLabelOrder(list []frozenSeries, all []*memSeries) []frozenSeries {
	order := db.labelOrder(all)
	at := make([]int32, len(all)) // 1 + the index in list of series id, 0 if none
	for i, f := range list {
		at[f.id] = int32(i + 1)
	}
	out := make([]frozenSeries, 0, len(list))
	for _, id := range order {
		if i := at[id]; i > 0 {
			out = append(out, list[i-1])
		}
	}
	return out
}

// labelOrder extends db.order to every series of all (a longer prefix of
// db.series than the last call's) and returns it: the series new since the
// last call are sorted by their labels and each is put in place by binary
// search. db.flushMu must be held.
func (db *DB) labelOrder(all []*memSeries) []uint32 {
	old := db.order
	if db.ordered >= len(all) {
		return old
	}
	less := func(a, b uint32) int { return labels.Compare(all[a].lset, all[b].lset) }
	fresh := make([]uint32, 0, len(all)-db.ordered)
	for id := db.ordered; id < len(all); id++ {
		if all[id] != nil {
			fresh = append(fresh, uint32(id))
		}
	}
	db.ordered = len(all)
	slices.SortFunc(fresh, less)
	order := make([]uint32, 0, len(all))
	for _, id := range fresh {
		i, _ := slices.BinarySearchFunc(old, id, less)
		order = append(order, old[:i]...)
		order = append(order, id)
		old = old[i:]
	}
	db.order = append(order, old...)
	return db.order
}

// writeFrozen writes frozen head series, in label order, into one partition
// per aligned range. Each series is decoded once per range it has samples in,
// while its partition is written, so a flush never holds the whole head
// decoded.
func (db *DB) writeFrozen(list []frozenSeries) ([]*partition, error) {
	dur := db.opts.PartitionDuration.Milliseconds()
	dayMs := day.Milliseconds()
	// Samples of days that are over go straight into daily partitions, so a
	// backfill of old data does not write one small file per 2 hours.
	doneBefore := floorDiv(db.opts.Now().Add(-db.opts.PartitionDuration-max(db.opts.OutOfOrderWindow, 0)).UnixMilli(), dayMs) * dayMs
	bucketOf := func(t int64) (start, end int64) {
		width := dur
		if floorDiv(t, dayMs)*dayMs+dayMs <= doneBefore {
			width = dayMs
		}
		start = floorDiv(t, width) * width
		if start > math.MaxInt64-width {
			return start, math.MaxInt64
		}
		return start, start + width
	}
	// The ranges each series may have samples in, from its chunks' bounds and
	// its overflow samples.
	buckets := map[int64][]int{} // range start → indexes into list
	ends := map[int64]int64{}
	for i, f := range list {
		seen := map[int64]bool{}
		add := func(lo, hi int64) {
			for t := lo; ; {
				start, end := bucketOf(t)
				if !seen[start] {
					seen[start] = true
					buckets[start] = append(buckets[start], i)
					ends[start] = end
				}
				if end > hi || end == math.MaxInt64 {
					return
				}
				t = end
			}
		}
		h := f.head
		spans := func(lo, hi int64) bool {
			_, end := bucketOf(lo)
			return hi >= end && uint64(hi-end)/uint64(dur) >= 8
		}
		for _, c := range h.sealed {
			if !spans(c.mint, c.maxt) {
				add(c.mint, c.maxt)
				continue
			}
			// A chunk spanning many ranges (a gap in the data, or absurd
			// timestamps): look at its samples rather than at every range
			// between its bounds.
			h.chunkSamples(c.mint, c.maxt, func(s sample) { add(s.t, s.t) })
		}
		if h.openN() > 0 {
			if !spans(h.openLo, h.openHi()) {
				add(h.openLo, h.openHi())
			} else {
				h.chunkSamples(h.openLo, h.openHi(), func(s sample) { add(s.t, s.t) })
			}
		}
		for _, s := range h.raw {
			add(s.t, s.t)
		}
	}
	starts := make([]int64, 0, len(buckets))
	for s := range buckets {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	var parts []*partition
	var buf []sample
	for _, start := range starts {
		idx := buckets[start]
		end := ends[start]
		db.mu.Lock()
		seq := db.nextSeq
		db.nextSeq++
		db.mu.Unlock()
		p, err := writePartition(db.partDir, seq, len(idx), func(i int) (partSeries, error) {
			f := list[idx[i]]
			buf = f.head.samples(buf[:0], start, end-1)
			return partSeries{lset: f.lset, id: f.id, samples: buf}, nil
		})
		if err != nil {
			return parts, err
		}
		if p != nil {
			parts = append(parts, p)
		}
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

// Compact merges the partitions of each finished UTC day into one partition,
// and those of each finished partition range of a day not yet over, and deletes
// partitions older than the retention.
func (db *DB) Compact() error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	if err := db.applyRetention(); err != nil {
		return err
	}
	return db.mergeDays()
}

// applyRetention deletes the partitions older than the retention, then removes
// from memory the series left without samples by them or by a quarantine.
func (db *DB) applyRetention() error {
	cutoff := db.opts.Now().Add(-db.opts.Retention).UnixMilli()
	if db.opts.Retention < 0 {
		cutoff = math.MinInt64
	}
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
	if len(drop) > 0 {
		db.change(math.MinInt64)
	}
	for _, p := range drop {
		p.f.Close()
		if err := os.Remove(p.path); err != nil {
			return fmt.Errorf("cannot delete expired partition: %w", err)
		}
		db.stats.retention.Add(1)
		db.log.Info("tsdb: partition deleted by retention", "partition", p.path)
	}
	if len(drop) > 0 {
		if err := atomicfile.SyncDir(db.partDir); err != nil {
			return err
		}
	}
	db.mu.Lock()
	drop = append(drop, db.orphaned...)
	db.orphaned = nil
	db.mu.Unlock()
	db.collectSeries(drop)
	return nil
}

// collectSeries removes from memory the series of the removed partitions gone
// that hold no sample any more: none in the head, none in a partition. Their
// labels leave the label index, so queries, label values and the series count
// no longer see them, and memory follows the series stored rather than every
// series seen since the DB was opened. Their ids are never given out again:
// a ref to one is unknown from then on (AppendRefs), and a write by labels
// creates the series anew. db.flushMu must be held, so that no flush or merge
// is writing partitions meanwhile.
func (db *DB) collectSeries(gone []*partition) {
	if len(gone) == 0 {
		return
	}
	n := 0
	db.mu.Lock()
	for _, g := range gone {
		g.series.each(func(id uint32) {
			if s := db.series[id]; s != nil && db.unused(s) {
				db.removeSeries(s)
				n++
			}
		})
	}
	if n > 0 {
		// Under db.mu: a write may grow db.series meanwhile.
		order := db.order[:0]
		for _, id := range db.order {
			if db.series[id] != nil {
				order = append(order, id)
			}
		}
		db.order = order
	}
	db.mu.Unlock()
	if n == 0 {
		return
	}
	db.stats.collected.Add(int64(n))
	db.log.Info("tsdb: series without samples removed from memory", "series", n)
}

// unused reports whether series s holds no sample: none in the head, in a head
// being flushed or in a partition. db.mu must be held.
func (db *DB) unused(s *memSeries) bool {
	if !s.head.empty() {
		return false
	}
	for _, f := range db.flushing {
		if f.series[s.id] != nil {
			return false
		}
	}
	for _, p := range db.parts {
		if p.series.has(s.id) {
			return false
		}
	}
	return true
}

// removeSeries takes series s out of the series table, the hash chains and the
// label index. db.mu must be held for writing.
func (db *DB) removeSeries(s *memSeries) {
	h := s.lset.Hash()
	var prev *memSeries
	for c := db.byHash[h]; c != nil; prev, c = c, c.next {
		if c != s {
			continue
		}
		switch {
		case prev != nil:
			prev.next = s.next
		case s.next != nil:
			db.byHash[h] = s.next
		default:
			delete(db.byHash, h)
		}
		break
	}
	s.lset.Range(func(l labels.Label) { db.postings.remove(l.Name, l.Value, s.id) })
	db.allPostings.Remove(s.id)
	db.series[s.id] = nil
	db.live--
}

// mergeDays merges the partitions of every UTC day that ended more than one
// partition duration plus the out-of-order window ago, when the day has more than
// one partition. In a day not over yet, it merges the partitions of each aligned
// partition range that ended that long ago, when it has more than one (several
// flushes of a large or backfilled head write one each).
func (db *DB) mergeDays() error {
	dayMs := day.Milliseconds()
	dur := db.opts.PartitionDuration.Milliseconds()
	limit := db.opts.Now().Add(-db.opts.PartitionDuration - max(db.opts.OutOfOrderWindow, 0)).UnixMilli()
	type span struct{ start, width int64 }
	db.mu.RLock()
	groups := map[span][]*partition{}
	for _, p := range db.parts {
		d := floorDiv(p.mint, dayMs)
		if floorDiv(p.maxt, dayMs) != d {
			continue
		}
		if (d+1)*dayMs <= limit {
			groups[span{d * dayMs, dayMs}] = append(groups[span{d * dayMs, dayMs}], p)
			continue
		}
		r := floorDiv(p.mint, dur)
		if floorDiv(p.maxt, dur) == r && (r+1)*dur <= limit {
			groups[span{r * dur, dur}] = append(groups[span{r * dur, dur}], p)
		}
	}
	db.mu.RUnlock()
	spans := make([]span, 0, len(groups))
	for s, g := range groups {
		if len(g) > 1 {
			spans = append(spans, s)
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for _, s := range spans {
		if err := db.mergeParts(groups[s]); err != nil {
			return err
		}
	}
	return nil
}

// mergeParts writes the samples of parts (sorted by seq) into one partition and
// removes them. On equal timestamps the partition with the higher seq wins.
func (db *DB) mergeParts(parts []*partition) error {
	idset := map[uint32]struct{}{}
	for _, p := range parts {
		p.series.each(func(id uint32) { idset[id] = struct{}{} })
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
	caches := make([]frameCache, len(parts)) // series come in label order, as in each part
	// Each series' samples are encoded before the next is read, so the buffers
	// serve every series in turn.
	lists := make([][]sample, len(parts))
	var m sampleMerger
	np, err := writePartition(db.partDir, seq, len(ids), func(i int) (partSeries, error) {
		for k, p := range parts {
			ss, err := p.readChunk(lists[k][:0], ids[i].id, math.MinInt64, math.MaxInt64, &caches[k])
			if err != nil {
				bad, badErr = p, err
				return partSeries{}, err
			}
			lists[k] = ss
		}
		return partSeries{lset: ids[i].lset, id: ids[i].id, samples: m.merge(lists)}, nil
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
	db.parts = keep
	if np != nil {
		db.parts = append(db.parts, np)
	}
	db.mu.Unlock()
	for _, p := range parts {
		p.f.Close()
		if err := os.Remove(p.path); err != nil {
			return fmt.Errorf("cannot remove merged partition: %w", err)
		}
	}
	db.stats.merges.Add(1)
	return atomicfile.SyncDir(db.partDir)
}

// dropPartition takes a partition found corrupt while reading out of service and
// quarantines its file.
func (db *DB) dropPartition(bad *partition, cause error) {
	db.mu.Lock()
	found := false
	for i, p := range db.parts {
		if p == bad {
			db.parts = slices.Delete(db.parts, i, i+1)
			found = true
			break
		}
	}
	if found {
		db.orphaned = append(db.orphaned, bad) // its series are looked at by the next retention pass
	}
	db.mu.Unlock()
	if found {
		db.change(math.MinInt64)
		bad.f.Close()
		db.quarantine(bad.path, cause)
	}
}

// mergeSamples merges sorted sample lists; on equal timestamps the later list wins.
func mergeSamples(lists [][]sample) []sample { return new(sampleMerger).merge(lists) }

// sampleMerger merges sample lists in a buffer it keeps for the next call.
type sampleMerger struct{ buf []sample }

// merge is mergeSamples. When more than one list is not empty it merges them
// in m's buffer, and the answer is valid until the next call; otherwise it
// returns the one list. Lists that follow one another in time, as partitions
// of consecutive ranges do, are joined without sorting.
func (m *sampleMerger) merge(lists [][]sample) []sample {
	var (
		nonEmpty, total int
		only            []sample
		ordered         = true // each list starts after the one before ends
		lastT           = int64(math.MinInt64)
	)
	for _, l := range lists {
		if len(l) == 0 {
			continue
		}
		if nonEmpty > 0 && l[0].t <= lastT {
			ordered = false
		}
		nonEmpty++
		total += len(l)
		only, lastT = l, l[len(l)-1].t
	}
	switch nonEmpty {
	case 0:
		return nil
	case 1:
		return only
	}
	out := m.buf[:0]
	if cap(out) < total {
		out = make([]sample, 0, total)
	}
	for _, l := range lists {
		out = append(out, l...)
	}
	m.buf = out[:0]
	if ordered {
		return out
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

// headFull reports whether the head is due to be flushed for its size: its
// samples other than derived ones (AppendDerived) reach HeadMaxSamples, or all
// its samples twice that. Derived samples thus do not make flushes more
// frequent while there are fewer of them than ingested ones (the anomaly
// detector writes three samples every five minutes for each series it
// watches): a flush has a cost per series, and derived series are many and
// sparse. The caller holds db.mu.
func (db *DB) headFull() bool {
	limit := db.opts.HeadMaxSamples
	return limit > 0 && (db.headSamples-db.headDerived >= limit || db.headSamples >= 2*limit)
}

// maintain is the DB's one background goroutine: it flushes the head when it is
// old or large (woken at once when an append brings it to HeadMaxSamples),
// merges finished days and applies the retention.
func (db *DB) maintain() {
	defer db.stopped.Done()
	t := time.NewTicker(db.opts.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		case <-db.flushDue:
		}
		db.mu.RLock()
		n, since, full := db.headSamples, db.headSince, db.headFull()
		db.mu.RUnlock()
		if n > 0 && (full ||
			(db.opts.HeadMaxAge > 0 && !since.IsZero() && db.opts.Now().Sub(since) >= db.opts.HeadMaxAge)) {
			if err := db.Flush(); err != nil {
				db.log.Error("tsdb: cannot flush head", "err", err)
			}
		}
		if err := db.Compact(); err != nil {
			db.log.Error("tsdb: cannot compact partitions", "err", err)
		}
		db.otlp.forget(db.opts.Now().Add(-deltaIdle).UnixMilli())
	}
}
