package logindex

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search/query"

	"outpost/internal/atomicfile"
)

// partition is one day of records: a record log and its Bleve shards, fed by one
// indexer goroutine.
type partition struct {
	ix     *Index
	day    int
	dir    string
	path   string // record log path
	f      *os.File
	shards []bleve.Index
	sums   []*termSums // per shard: its segments' sums of day and hour terms
	cache  frameCache

	// users hold use.RLock while they read or write the partition; dropping
	// takes use.Lock and then sets dropped.
	use     sync.RWMutex
	dropped bool

	appendMu sync.Mutex
	size     atomic.Int64 // end of the last appended frame
	broken   error        // set under appendMu when an append or sync failed

	syncMu sync.Mutex
	synced int64 // guarded by syncMu: size known to be fsync'd

	// Writes waiting to be appended as one frame (groupWrite), and whether
	// one of them is appending.
	groupMu sync.Mutex
	waiting []*groupWrite
	leading bool

	queues []*shardQueue // one per shard
	stop   chan struct{}
	done   chan struct{} // closed when every shard's indexer has returned

	applied []int64 // per shard, owned by that shard's indexer goroutine
	// Per shard, owned by its indexer goroutine: the blocks and records it
	// indexed since the partition was opened, which turn Bleve's count of
	// unpersisted documents (blocks) into records (waitPersisted).
	docsIndexed, recsIndexed []int64

	// secs is the span of the records' times in whole seconds, [lo, hi]; lo > hi
	// while the partition is empty. A search whose time range covers it needs no
	// time filter on this partition.
	secsMu sync.Mutex
	secs   [2]int64

	progressMu   sync.Mutex
	shardIndexed []int64       // per shard: end of the last frame handed to Bleve
	indexed      int64         // the least of shardIndexed
	progress     chan struct{} // closed and replaced on every advance of indexed
}

// shardQueue holds the frames a shard's indexer has yet to index.
type shardQueue struct {
	mu     sync.Mutex
	frames []*pendingFrame
	wake   chan struct{} // capacity 1
}

type pendingFrame struct {
	off, end int64
	recs     []Record

	blocksOnce sync.Once
	blocks     [][]int32 // frameBlocks of recs
	shares     []int     // records per shard
}

// blockList returns the frame's blocks and how many of its records go to each
// of shards shards (blockShard), worked out once.
func (f *pendingFrame) blockList(shards int) ([][]int32, []int) {
	f.blocksOnce.Do(func() {
		var g frameBlocks
		f.blocks = g.split(f.recs) // g is not used again
		f.shares = make([]int, shards)
		for b, members := range f.blocks {
			f.shares[blockShard(f.off, b, shards)] += len(members)
		}
	})
	return f.blocks, f.shares
}

// share is how many of the frame's records go to shard k of shards.
func (f *pendingFrame) share(k, shards int) int {
	_, shares := f.blockList(shards)
	return shares[k]
}

const shardDirPrefix = "shard-"

// createPartitionDir builds a partition directory under a temporary name and
// renames it into place, so a crash never leaves a half-made partition under the
// final name.
func createPartitionDir(root string, day, shards int) error {
	final := filepath.Join(root, dayDirName(day))
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cannot remove leftover %q: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("cannot create partition %q: %w", tmp, err)
	}
	f, _, _, _, err := openRecordLog(filepath.Join(tmp, recordLogName), 0)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close new record log: %w", err)
	}
	for i := 0; i < shards; i++ {
		if err := createShard(filepath.Join(tmp, shardDirPrefix+strconv.Itoa(i))); err != nil {
			return err
		}
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("cannot rename partition %q into place: %w", final, err)
	}
	return atomicfile.SyncDir(root)
}

// openPartition opens the partition directory of day, replays what its shards had
// not persisted and starts its indexer.
func openPartition(ix *Index, day int) (*partition, error) {
	dir := filepath.Join(ix.dir, dayDirName(day))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open partition %q: %w", dir, err)
	}
	var nums []int
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), shardDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		if old, ok := strings.CutSuffix(n, oldShardSuffix); ok {
			// A shard being rebuilt when the process stopped (openShard):
			// it is made again, empty, and filled from the record log.
			k, err := strconv.Atoi(old)
			if err != nil {
				continue
			}
			path := filepath.Join(dir, shardDirPrefix+old)
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				if err := createShard(path); err != nil {
					return nil, err
				}
				nums = append(nums, k)
			}
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("cannot remove the old index %q: %w", e.Name(), err)
			}
			continue
		}
		if k, err := strconv.Atoi(n); err == nil {
			nums = append(nums, k)
		}
	}
	sort.Ints(nums)
	for i, k := range nums {
		if i != k {
			return nil, fmt.Errorf("cannot open partition %q: shard %d missing", dir, i)
		}
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("cannot open partition %q: no shards", dir)
	}
	p := &partition{
		ix: ix, day: day, dir: dir, path: filepath.Join(dir, recordLogName),
		cache: frameCache{max: ix.opts.FrameCache},
		stop:  make(chan struct{}), done: make(chan struct{}),
		progress: make(chan struct{}),
	}
	minApplied := int64(-1)
	for _, k := range nums {
		sh, applied, rebuilt, err := openShard(filepath.Join(dir, shardDirPrefix+strconv.Itoa(k)))
		if err != nil {
			p.closeShards()
			return nil, err
		}
		if rebuilt {
			ix.log.Info("rebuilding a log index shard of an older format from its record log", "partition", dayDirName(day), "shard", k, "format", shardFormat)
		}
		p.shards = append(p.shards, sh)
		p.sums = append(p.sums, &termSums{})
		p.applied = append(p.applied, applied)
		p.docsIndexed = append(p.docsIndexed, 0)
		p.recsIndexed = append(p.recsIndexed, 0)
		if minApplied < 0 || applied < minApplied {
			minApplied = applied
		}
	}
	f, size, frames, damage, err := openRecordLog(p.path, minApplied)
	if err != nil {
		p.closeShards()
		return nil, err
	}
	if damage != nil {
		ix.log.Warn("truncated the damaged tail of a record log", "path", p.path, "err", damage)
	}
	p.f = f
	p.size.Store(size)
	p.synced = size
	for k, applied := range p.applied {
		if applied > size {
			// The record log lost frames the shard had indexed (damage found
			// above): forget their documents.
			n, err := deleteDocsFrom(p.shards[k], day, size)
			if err != nil {
				p.closeShards()
				p.f.Close()
				return nil, fmt.Errorf("cannot remove documents of lost records from shard %d of %q: %w", k, dir, err)
			}
			ix.log.Warn("removed index entries of records lost from a damaged record log", "path", p.path, "documents", n)
			p.applied[k] = size
		}
	}
	// Replay: index every frame some shard has not applied.
	var batch []*pendingFrame
	batchRecs := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := p.indexFrames(batch)
		batch, batchRecs = batch[:0], 0
		return err
	}
	replayed := 0
	for _, off := range frames {
		fr, err := readFrame(p.f, p.path, off, size)
		if err != nil {
			p.closeShards()
			p.f.Close()
			return nil, fmt.Errorf("cannot replay partition %q: %w", dir, err)
		}
		pf := &pendingFrame{off: fr.off, end: fr.end, recs: make([]Record, len(fr.recs))}
		for i, b := range fr.recs {
			if err := decodeRecord(b, &pf.recs[i]); err != nil {
				p.closeShards()
				p.f.Close()
				return nil, &CorruptionError{Path: p.path, Offset: off, Err: err}
			}
			pf.recs[i].ID = makeDocID(day, off, i).String()
		}
		batch = append(batch, pf)
		batchRecs += len(pf.recs)
		replayed += len(pf.recs)
		if batchRecs >= ix.opts.BatchRecords*len(p.shards) {
			if err := flush(); err != nil {
				p.closeShards()
				p.f.Close()
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		p.closeShards()
		p.f.Close()
		return nil, err
	}
	if replayed > 0 {
		ix.log.Info("replayed records into the index", "partition", dayDirName(day), "records", replayed)
	}
	p.secs = [2]int64{1, 0}
	for _, sh := range p.shards {
		lo, hi, err := shardSeconds(sh)
		if err != nil {
			p.closeShards()
			p.f.Close()
			return nil, fmt.Errorf("cannot read the time span of partition %q: %w", dir, err)
		}
		p.noteSeconds(lo, hi)
	}
	p.indexed = size
	for range p.shards {
		p.queues = append(p.queues, &shardQueue{wake: make(chan struct{}, 1)})
		p.shardIndexed = append(p.shardIndexed, size)
	}
	var wg sync.WaitGroup
	for k := range p.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(k)
		}()
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *partition) closeShards() {
	for _, sh := range p.shards {
		_ = sh.Close()
	}
}

// acquire takes a user reference; it fails when the partition was dropped.
func (p *partition) acquire() bool {
	p.use.RLock()
	if p.dropped {
		p.use.RUnlock()
		return false
	}
	return true
}

func (p *partition) release() { p.use.RUnlock() }

// append writes recs (encoded in wb.enc) to the record log, assigns their
// ids, fsyncs and queues them for indexing. recs[i].ID is set. It returns how
// many records it queued for indexing (all of them unless it fails).
//
// Concurrent writes are appended together (group commit): while one write is
// being appended and synced, the writes that arrive wait, and the first of
// them then appends them all as one frame. A frame's records are indexed in
// blocks by service and level, so small concurrent writes make a few large
// blocks instead of many small ones. A write of more than half a frame is
// appended on its own.
func (p *partition) append(recs []Record, wb *writeBuffers) (queued int, err error) {
	if len(recs) > maxFrameRecords/2 {
		return p.appendAlone(recs, wb)
	}
	g := &groupWrite{recs: recs, enc: wb.enc[:len(recs)], done: make(chan bool, 1)}
	p.groupMu.Lock()
	p.waiting = append(p.waiting, g)
	if p.leading {
		p.groupMu.Unlock()
		if lead := <-g.done; !lead {
			return g.queued, g.err
		}
		p.groupMu.Lock() // handed the lead: g is first in p.waiting
	}
	p.leading = true
	n, records := 0, 0
	for n < len(p.waiting) && (n == 0 || records+len(p.waiting[n].recs) <= maxFrameRecords) {
		records += len(p.waiting[n].recs)
		n++
	}
	group := slices.Clone(p.waiting[:n])
	clear(p.waiting[:n]) // the waiting list's array keeps no finished writes alive
	p.waiting = p.waiting[n:]
	p.groupMu.Unlock()

	p.appendGroup(group, records, wb)

	p.groupMu.Lock()
	if len(p.waiting) > 0 {
		p.waiting[0].done <- true // the next group's first write leads it
	} else {
		p.leading = false
		p.waiting = nil
	}
	p.groupMu.Unlock()
	return g.queued, g.err
}

// groupWrite is one write waiting in a group (partition.append).
type groupWrite struct {
	recs []Record
	enc  [][]byte
	// Set by the write that appends the group, before done.
	queued int
	err    error
	done   chan bool // receives false when appended, true when handed the lead
}

// appendGroup appends the records of group as one frame (records in all),
// syncs, and tells every write of the group but the first (its caller's) that
// it is done.
func (p *partition) appendGroup(group []*groupWrite, records int, wb *writeBuffers) {
	all := group[0].recs
	enc := group[0].enc
	if len(group) > 1 {
		all = make([]Record, 0, records)
		enc = make([][]byte, 0, records)
		for _, g := range group {
			all = append(all, g.recs...)
			enc = append(enc, g.enc...)
		}
	}
	wb.frame, wb.block = appendFrame(wb.frame[:0], wb.block, enc)
	end, err := p.appendFrame(wb.frame, all)
	if err == nil {
		err = p.syncTo(end)
	}
	i := 0
	for k, g := range group {
		if end > 0 { // appended: queued for indexing, ids assigned
			g.queued = len(g.recs)
			if len(group) > 1 {
				for j := range g.recs {
					g.recs[j].ID = all[i+j].ID
				}
			}
		}
		i += len(g.recs)
		g.err = err
		if k > 0 {
			g.done <- false
		}
	}
}

// appendAlone appends recs as frames of their own.
func (p *partition) appendAlone(recs []Record, wb *writeBuffers) (queued int, err error) {
	enc := wb.enc
	for len(recs) > 0 {
		n := min(len(recs), maxFrameRecords)
		wb.frame, wb.block = appendFrame(wb.frame[:0], wb.block, enc[:n])
		end, err := p.appendFrame(wb.frame, recs[:n])
		if err != nil {
			return queued, err
		}
		queued += n
		if err := p.syncTo(end); err != nil {
			return queued, err
		}
		recs, enc = recs[n:], enc[n:]
	}
	return queued, nil
}

func (p *partition) appendFrame(buf []byte, recs []Record) (int64, error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if p.broken != nil {
		return 0, fmt.Errorf("cannot write to partition %s after an earlier failure: %w", dayDirName(p.day), p.broken)
	}
	off := p.size.Load()
	if off+int64(len(buf)) >= 1<<48 {
		return 0, fmt.Errorf("cannot append %d bytes to record log %q: file is full", len(buf), p.path)
	}
	if _, err := p.f.WriteAt(buf, off); err != nil {
		// Undo what may have been written; the next append overwrites it anyway.
		_ = p.f.Truncate(off)
		return 0, fmt.Errorf("cannot append to record log %q: %w", p.path, err)
	}
	end := off + int64(len(buf))
	lo, hi := int64(1), int64(0)
	for i := range recs {
		recs[i].ID = makeDocID(p.day, off, i).String()
		sec := floorDiv(recs[i].Time.UnixMilli(), 1000)
		if lo > hi {
			lo, hi = sec, sec
		}
		lo, hi = min(lo, sec), max(hi, sec)
	}
	p.noteSeconds(lo, hi) // before the records can be indexed, and so found
	p.size.Store(end)
	pf := &pendingFrame{off: off, end: end, recs: recs}
	for _, q := range p.queues {
		q.mu.Lock()
		q.frames = append(q.frames, pf)
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return end, nil
}

// noteSeconds widens the partition's time span to hold [lo, hi] (seconds);
// lo > hi is an empty span.
func (p *partition) noteSeconds(lo, hi int64) {
	if lo > hi {
		return
	}
	p.secsMu.Lock()
	defer p.secsMu.Unlock()
	if p.secs[0] > p.secs[1] {
		p.secs = [2]int64{lo, hi}
		return
	}
	p.secs = [2]int64{min(p.secs[0], lo), max(p.secs[1], hi)}
}

// coveredBy reports whether every record of the partition (indexed or not yet)
// has its time in [lo, hi) milliseconds.
func (p *partition) coveredBy(lo, hi int64) bool {
	p.secsMu.Lock()
	defer p.secsMu.Unlock()
	return p.secs[0] <= p.secs[1] && lo <= p.secs[0]*1000 && hi >= (p.secs[1]+1)*1000
}

// span returns the times its records have, [lo, hi) milliseconds; ok is false
// while it is empty.
func (p *partition) span() (lo, hi int64, ok bool) {
	p.secsMu.Lock()
	defer p.secsMu.Unlock()
	return p.secs[0] * 1000, (p.secs[1] + 1) * 1000, p.secs[0] <= p.secs[1]
}

// shardSeconds returns the first and last second of the records of a shard's
// blocks (the first t0 term and the last t term); lo > hi when it has none.
func shardSeconds(sh bleve.Index) (lo, hi int64, err error) {
	first, _, err := dictEnds(sh, fieldTimeFirst)
	if err != nil {
		return 0, 0, err
	}
	_, last, err := dictEnds(sh, fieldTime)
	if err != nil || first == "" || last == "" {
		return 1, 0, err
	}
	return parseTimeTerm([]byte(first)) / 1000, parseTimeTerm([]byte(last)) / 1000, nil
}

// dictEnds returns the first and last terms of field; empty if it has none.
// It walks the dictionary without keeping it (a shard's t0 field has a term
// per block).
func dictEnds(sh bleve.Index, field string) (first, last string, err error) {
	d, err := sh.FieldDict(field)
	if err != nil {
		return "", "", err
	}
	defer d.Close()
	for {
		e, err := d.Next()
		if err != nil {
			return "", "", err
		}
		if e == nil {
			return first, last, nil
		}
		if first == "" {
			first = e.Term
		}
		last = e.Term
	}
}

// syncTo makes the record log durable at least up to end; concurrent callers share
// one fsync.
func (p *partition) syncTo(end int64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if p.synced >= end {
		return nil
	}
	target := p.size.Load()
	if err := p.f.Sync(); err != nil {
		err = fmt.Errorf("cannot sync record log %q: %w", p.path, err)
		p.appendMu.Lock()
		p.broken = err
		p.appendMu.Unlock()
		return err
	}
	p.synced = target
	return nil
}

// run is the indexer goroutine of shard k: it feeds the shard's queued frames to
// Bleve in batches until stop is closed and the queue is empty.
func (p *partition) run(k int) {
	q := p.queues[k]
	for {
		select {
		case <-q.wake:
		case <-p.stop:
			for p.indexQueued(k) {
			}
			return
		}
		for {
			p.waitPersisted(k)
			if !p.indexQueued(k) {
				break
			}
		}
	}
}

// waitPersisted waits while shard k holds more than its share of
// Options.MaxUnpersistedRecords in memory segments, or until the partition
// stops.
func (p *partition) waitPersisted(k int) {
	limit := uint64(max(p.ix.opts.MaxUnpersistedRecords/len(p.shards), p.ix.opts.BatchRecords))
	if p.unpersistedRecords(k) <= limit {
		return
	}
	began := time.Now()
	for p.unpersistedRecords(k) > limit {
		select {
		case <-p.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	waited := time.Since(began)
	p.ix.persistWait.Add(int64(waited))
	if waited >= 5*time.Second {
		p.ix.log.Info("log indexing waited for Bleve to persist its segments", "partition", dayDirName(p.day), "shard", k, "waited", waited.Round(time.Millisecond))
	}
}

// unpersistedRecords estimates the records shard k holds in memory segments:
// its unpersisted blocks times the records per block it indexed so far.
func (p *partition) unpersistedRecords(k int) uint64 {
	docs := unpersistedDocs(p.shards[k])
	if p.docsIndexed[k] == 0 {
		return docs
	}
	return docs * uint64(p.recsIndexed[k]) / uint64(p.docsIndexed[k])
}

// unpersistedDocs is the number of documents sh holds in memory segments, not
// persisted yet.
func unpersistedDocs(sh bleve.Index) uint64 {
	adv, err := sh.Advanced()
	if err != nil {
		return 0
	}
	sc, ok := adv.(*scorch.Scorch)
	if !ok {
		return 0
	}
	st, ok := sc.Stats().(*scorch.Stats)
	if !ok {
		return 0
	}
	return atomic.LoadUint64(&st.TotItemsToPersist)
}

// indexQueued indexes up to one batch of shard k's queued frames; false when
// none was queued.
func (p *partition) indexQueued(k int) bool {
	q := p.queues[k]
	nsh := len(p.shards)
	limit := p.ix.opts.BatchRecords
	q.mu.Lock()
	n, recs := 0, 0
	for n < len(q.frames) && (n == 0 || recs+q.frames[n].share(k, nsh) <= limit) {
		recs += q.frames[n].share(k, nsh)
		n++
	}
	frames := append([]*pendingFrame(nil), q.frames[:n]...)
	copy(q.frames, q.frames[n:])
	for i := len(q.frames) - n; i < len(q.frames); i++ {
		q.frames[i] = nil
	}
	q.frames = q.frames[:len(q.frames)-n]
	q.mu.Unlock()
	if n == 0 {
		return false
	}
	end := frames[n-1].end
	if err := p.syncTo(end); err != nil {
		p.ix.log.Error("cannot index records", "partition", dayDirName(p.day), "err", err)
	} else if err := p.indexShard(k, frames); err != nil {
		// The shard's applied offset did not move: the records are indexed again
		// when the partition is next opened.
		p.ix.log.Error("cannot index records", "partition", dayDirName(p.day), "shard", k, "records", recs, "err", err)
	}
	p.ix.indexed(int64(recs))
	p.progressMu.Lock()
	p.shardIndexed[k] = end
	least := end
	for _, e := range p.shardIndexed {
		least = min(least, e)
	}
	if least > p.indexed {
		p.indexed = least
		close(p.progress)
		p.progress = make(chan struct{})
	}
	p.progressMu.Unlock()
	return true
}

// indexFrames indexes the records of frames (in file order) into every shard that
// has not applied them, the shards in parallel (replay on open).
func (p *partition) indexFrames(frames []*pendingFrame) error {
	errs := make([]error, len(p.shards))
	var wg sync.WaitGroup
	for k := range p.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = p.indexShard(k, frames)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// indexShard indexes shard k's records of frames (in file order) that the shard
// has not applied, in one Bleve batch that also records the offset the shard has
// now applied.
func (p *partition) indexShard(k int, frames []*pendingFrame) error {
	end := frames[len(frames)-1].end
	if p.applied[k] >= end {
		return nil
	}
	sh := p.shards[k]
	// The documents are built for this batch only: once Batch returns, Bleve
	// holds none of them, and the builder's space is reused by the next batch
	// of any shard.
	docs := blockBuilderPool.Get().(*blockBuilder)
	defer func() {
		docs.reset()
		blockBuilderPool.Put(docs)
	}()
	b := sh.NewBatch()
	for _, fr := range frames {
		if fr.end <= p.applied[k] {
			continue
		}
		blocks, _ := fr.blockList(len(p.shards))
		for bi, members := range blocks {
			if blockShard(fr.off, bi, len(p.shards)) != k {
				continue
			}
			id := makeDocID(p.day, fr.off, bi)
			if err := b.IndexAdvanced(docs.document(id, fr.recs, members)); err != nil {
				return fmt.Errorf("cannot index block %s: %w", id, err)
			}
			p.docsIndexed[k]++
			p.recsIndexed[k] += int64(len(members))
		}
	}
	b.SetInternal([]byte(internalApplied), appliedValue(end))
	if err := sh.Batch(b); err != nil {
		return fmt.Errorf("cannot index batch into shard %d of %s: %w", k, dayDirName(p.day), err)
	}
	p.applied[k] = end
	return nil
}

// waitIndexed waits until every frame ending at or before target is indexed.
func (p *partition) waitIndexed(ctx context.Context, target int64) error {
	for {
		p.progressMu.Lock()
		if p.indexed >= target {
			p.progressMu.Unlock()
			return nil
		}
		ch := p.progress
		p.progressMu.Unlock()
		select {
		case <-ch:
		case <-p.done:
			return fmt.Errorf("cannot wait for partition %s: it is closed", dayDirName(p.day))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close stops the indexer after it indexed everything queued, waits until the
// shards persisted it, and closes the shards and the record log.
func (p *partition) close() error {
	close(p.stop)
	<-p.done
	var first error
	if err := p.persist(); err != nil {
		first = err
	}
	for k, sh := range p.shards {
		if err := sh.Close(); err != nil && first == nil {
			first = fmt.Errorf("cannot close shard %d of %s: %w", k, dayDirName(p.day), err)
		}
	}
	if err := p.f.Close(); err != nil && first == nil {
		first = fmt.Errorf("cannot close record log %q: %w", p.path, err)
	}
	return first
}

// persist waits until every shard has persisted all it indexed (Bleve's Close
// does not), so a clean shutdown needs no replay.
func (p *partition) persist() error {
	errs := make(chan error, len(p.shards))
	for k, sh := range p.shards {
		b := sh.NewBatch()
		b.SetInternal([]byte(internalApplied), appliedValue(p.applied[k]))
		b.SetPersistedCallback(func(err error) { errs <- err })
		if err := sh.Batch(b); err != nil {
			return fmt.Errorf("cannot persist shard %d of %s: %w", k, dayDirName(p.day), err)
		}
	}
	var first error
	for range p.shards {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("cannot persist a shard of %s: %w", dayDirName(p.day), err)
		}
	}
	return first
}

// deleteDocsFrom deletes the documents of shard whose ids point at or beyond
// offset off of the record log of day, returning how many it deleted.
func deleteDocsFrom(sh bleve.Index, day int, off int64) (int, error) {
	lo := makeDocID(day, off, 0)
	hi := makeDocID(day+1, 0, 0)
	t, f := true, false
	q := query.NewTermRangeInclusiveQuery(string(lo[:]), string(hi[:]), &t, &f)
	q.SetField("_id")
	total := 0
	for {
		req := bleve.NewSearchRequestOptions(q, 1000, 0, false)
		res, err := sh.Search(req)
		if err != nil {
			return total, err
		}
		if len(res.Hits) == 0 {
			return total, nil
		}
		b := sh.NewBatch()
		for _, h := range res.Hits {
			b.Delete(h.ID)
		}
		if err := sh.Batch(b); err != nil {
			return total, err
		}
		total += len(res.Hits)
	}
}

// record reads the record with the given id from the record log.
func (p *partition) record(id docID, r *Record) error {
	off := id.off()
	fr, err := p.frame(off)
	if err != nil {
		return err
	}
	if id.idx() >= len(fr.recs) {
		return fmt.Errorf("cannot find record %s: frame at %d has %d records: %w", id, off, len(fr.recs), ErrNotFound)
	}
	if err := decodeRecord(fr.recs[id.idx()], r); err != nil {
		return &CorruptionError{Path: p.path, Offset: off, Err: err}
	}
	r.ID = id.String()
	return nil
}
