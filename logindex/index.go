package logindex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"outpost/internal/atomicfile"
)

// Options configure an Index. The zero value of every field means its default;
// nil *Options means all defaults.
type Options struct {
	// Retention is how long records are kept. A partition (one UTC day) is dropped
	// once the whole day is older than Retention, and records older than that are
	// refused by WriteLogs. Zero means 7 days; negative means keep forever.
	Retention time.Duration
	// MaxFuture is how far in the future a record's time may be; later records
	// are refused. Zero means 24 hours.
	MaxFuture time.Duration
	// Shards is the number of Bleve indexes per new partition, indexed in
	// parallel. Zero means GOMAXPROCS, at most 8. Existing partitions keep theirs.
	Shards int
	// BatchRecords is the most records indexed into one shard in one Bleve batch.
	// Zero means 1000.
	BatchRecords int
	// MaxPendingRecords bounds the records acknowledged but not yet indexed; beyond
	// it WriteLogs answers with a back-pressure error. Zero means 100,000.
	MaxPendingRecords int
	// PendingWait is how long WriteLogs waits for indexing to make room when
	// MaxPendingRecords are waiting, before it answers with a back-pressure
	// error: a short wait is cheaper for everyone than a client's retry, which
	// sends and decodes the whole request again. Zero means 2 seconds; negative
	// means no wait.
	PendingWait time.Duration
	// MaxUnpersistedRecords bounds the records that a partition's Bleve shards
	// together hold in memory segments not yet persisted; beyond it indexing
	// waits (and MaxPendingRecords then turns writes away). Bleve's persister
	// stops while its merger lags behind, and during a long merge in-memory
	// segments would otherwise pile up at the rate of ingest: 2.7 GB in an
	// hour-long replay. Zero means 200,000.
	MaxUnpersistedRecords int
	// SearchTimeout bounds every search, histogram and facet request. Zero means
	// 30 seconds.
	SearchTimeout time.Duration
	// MaxLimit caps SearchRequest.Limit. Zero means 1000.
	MaxLimit int
	// FacetScanRecords bounds the records facets read from the record log: the
	// blocks only some of whose records match a query. Beyond it, a sample of
	// those blocks spread over the range is read and the others' attribute
	// counts are estimated from the index (Facets.Estimated). Zero means
	// 100,000.
	FacetScanRecords int
	// FrameCache is how many decompressed record-log frames each partition keeps
	// for reads. Zero means 32.
	FrameCache int
	// TailBuffer is how many records a tail subscriber may fall behind before it
	// is dropped. Zero means 1024.
	TailBuffer int
	// MaxTails is the most concurrent tail subscribers. Zero means 64.
	MaxTails int
	// Logger receives warnings (damaged tails truncated, replay counts, indexing
	// failures). Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Retention == 0 {
		r.Retention = 7 * 24 * time.Hour
	}
	if r.MaxFuture == 0 {
		r.MaxFuture = 24 * time.Hour
	}
	if r.Shards == 0 {
		r.Shards = min(runtime.GOMAXPROCS(0), 8)
	}
	if r.BatchRecords == 0 {
		r.BatchRecords = 1000
	}
	if r.MaxPendingRecords == 0 {
		r.MaxPendingRecords = 100_000
	}
	if r.PendingWait == 0 {
		r.PendingWait = 2 * time.Second
	}
	if r.MaxUnpersistedRecords == 0 {
		r.MaxUnpersistedRecords = 200_000
	}
	if r.SearchTimeout == 0 {
		r.SearchTimeout = 30 * time.Second
	}
	if r.MaxLimit == 0 {
		r.MaxLimit = 1000
	}
	if r.FacetScanRecords == 0 {
		r.FacetScanRecords = 100_000
	}
	if r.FrameCache == 0 {
		r.FrameCache = 32
	}
	if r.TailBuffer == 0 {
		r.TailBuffer = 1024
	}
	if r.MaxTails == 0 {
		r.MaxTails = 64
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// Index is a directory of day partitions of log records. It is safe for
// concurrent use.
type Index struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	closeMu sync.RWMutex // WriteLogs holds RLock; Close holds Lock
	closed  bool

	mu    sync.RWMutex
	parts map[int]*partition

	pending atomic.Int64
	// room is closed, and replaced, whenever indexing takes records off pending:
	// writers waiting for room wake on it.
	roomMu sync.Mutex
	room   chan struct{}
	// persistWait is the time, in nanoseconds, indexing has waited for Bleve to
	// persist (Stats.PersistWait).
	persistWait atomic.Int64

	tails tailHub

	stopRetention chan struct{}
	retentionDone chan struct{}
}

// ErrNotFound is returned (wrapped) by Get for an id that is not stored.
var ErrNotFound = errors.New("record not found")

// ErrClosed is returned by operations on a closed Index.
var ErrClosed = errors.New("log index is closed")

// BackpressureError is returned by WriteLogs when indexing has fallen too far
// behind ingest; nothing of the batch was stored and the client should retry after
// RetryAfter.
type BackpressureError struct {
	Pending int64
	After   time.Duration
}

func (e *BackpressureError) Error() string {
	return fmt.Sprintf("cannot accept log records: %d records are waiting to be indexed", e.Pending)
}

// RetryAfter says how long the client should wait before retrying.
func (e *BackpressureError) RetryAfter() time.Duration { return e.After }

// Open opens the Index in dir, creating dir if needed, and replays into Bleve
// whatever a crash left unindexed. Only one Index may have dir open at a time.
func Open(dir string, opts *Options) (*Index, error) {
	o := opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create log index directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	ix := &Index{
		dir: dir, opts: o, log: o.Logger, lock: lock,
		parts:         make(map[int]*partition),
		room:          make(chan struct{}),
		stopRetention: make(chan struct{}),
		retentionDone: make(chan struct{}),
	}
	ix.tails.init(o.TailBuffer, o.MaxTails)
	ents, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("cannot read log index directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				ix.closeParts()
				lock.Close()
				return nil, fmt.Errorf("cannot remove leftover %q: %w", name, err)
			}
			continue
		}
		day, ok := parseDayDir(name)
		if !ok || !e.IsDir() {
			continue
		}
		p, err := openPartition(ix, day)
		if err != nil {
			ix.closeParts()
			lock.Close()
			return nil, err
		}
		ix.parts[day] = p
	}
	if _, err := ix.applyRetention(); err != nil {
		ix.closeParts()
		lock.Close()
		return nil, err
	}
	go ix.retentionLoop()
	return ix, nil
}

func parseDayDir(name string) (int, bool) {
	if len(name) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", name)
	if err != nil {
		return 0, false
	}
	return dayOf(t), true
}

func (ix *Index) closeParts() {
	for day, p := range ix.parts {
		_ = p.close()
		delete(ix.parts, day)
	}
}

// Close stops accepting writes, indexes everything acknowledged, ends every tail
// and closes the files. It is safe to call more than once.
func (ix *Index) Close() error {
	ix.closeMu.Lock()
	if ix.closed {
		ix.closeMu.Unlock()
		return nil
	}
	ix.closed = true
	ix.closeMu.Unlock()
	close(ix.stopRetention)
	<-ix.retentionDone
	ix.tails.closeAll()
	ix.mu.Lock()
	var first error
	for day, p := range ix.parts {
		p.use.Lock()
		p.dropped = true
		if err := p.close(); err != nil && first == nil {
			first = err
		}
		p.use.Unlock()
		delete(ix.parts, day)
	}
	ix.mu.Unlock()
	if err := ix.lock.Close(); err != nil && first == nil {
		first = fmt.Errorf("cannot release log index lock: %w", err)
	}
	return first
}

// partition returns the partition of day, creating it when create is set, with a
// user reference the caller must release. It returns nil when the partition does
// not exist (and create is false).
func (ix *Index) partition(day int, create bool) (*partition, error) {
	for {
		ix.mu.RLock()
		p := ix.parts[day]
		ix.mu.RUnlock()
		if p == nil {
			if !create {
				return nil, nil
			}
			ix.mu.Lock()
			if ix.parts[day] == nil {
				if err := createPartitionDir(ix.dir, day, ix.opts.Shards); err != nil {
					ix.mu.Unlock()
					return nil, err
				}
				np, err := openPartition(ix, day)
				if err != nil {
					ix.mu.Unlock()
					return nil, err
				}
				ix.parts[day] = np
			}
			ix.mu.Unlock()
			continue
		}
		if p.acquire() {
			return p, nil
		}
	}
}

// WriteLogs stores every log record of ld and returns once they are durable.
// Records whose time is older than the retention or too far in the future are
// refused and counted in rejected. A *BackpressureError means nothing was stored.
// Records become searchable shortly after WriteLogs returns (see Flush).
func (ix *Index) WriteLogs(ctx context.Context, ld plog.Logs) (rejected int64, reason string, err error) {
	n := ld.LogRecordCount()
	// Wait for room before taking closeMu, so that Close never waits for it.
	if err := ix.waitRoom(ctx, n); err != nil {
		return 0, "", err
	}
	ix.closeMu.RLock()
	defer ix.closeMu.RUnlock()
	if ix.closed {
		return 0, "", ErrClosed
	}
	if n == 0 {
		return 0, "", nil
	}
	now := ix.opts.Now()
	recs := appendRecordsFromLogs(make([]Record, 0, n), ld, now)
	minDay, maxTime := ix.writableRange(now)
	// The records kept, split by day. Most requests hold one day's records:
	// those are kept in place, not copied.
	days := make([]int, 0, 1)
	perDay := make(map[int]int, 1)
	var tooOld, tooNew int64
	kept := recs[:0]
	for _, r := range recs {
		d := dayOf(r.Time)
		switch {
		case d < minDay:
			tooOld++
			continue
		case r.Time.After(maxTime):
			tooNew++
			continue
		}
		if perDay[d] == 0 {
			days = append(days, d)
		}
		perDay[d]++
		kept = append(kept, r)
	}
	sort.Ints(days)
	byDay := map[int][]Record{}
	if len(days) == 1 {
		byDay[days[0]] = kept
	} else {
		for _, d := range days {
			byDay[d] = make([]Record, 0, perDay[d])
		}
		for _, r := range kept {
			d := dayOf(r.Time)
			byDay[d] = append(byDay[d], r)
		}
	}
	rejected = tooOld + tooNew
	if tooOld > 0 {
		reason = fmt.Sprintf("%d log records older than the retention of %s", tooOld, ix.opts.Retention)
	}
	if tooNew > 0 {
		if reason != "" {
			reason += "; "
		}
		reason += fmt.Sprintf("%d log records more than %s in the future", tooNew, ix.opts.MaxFuture)
	}
	wb := getWriteBuffers()
	defer putWriteBuffers(wb)
	stored := 0
	for _, d := range days {
		dr := byDay[d]
		wb.encode(dr)
		p, err := ix.partition(d, true)
		if err != nil {
			return 0, "", err
		}
		ix.pending.Add(int64(len(dr)))
		queued, err := p.append(dr, wb)
		p.release()
		ix.indexed(int64(len(dr) - queued)) // what the indexer will never see
		if err != nil {
			if stored > 0 {
				return 0, "", fmt.Errorf("cannot store log records (%d of the batch were stored and will be stored again on retry): %w", stored, err)
			}
			return 0, "", err
		}
		stored += len(dr)
		ix.tails.publish(dr)
	}
	return rejected, reason, nil
}

// waitRoom returns once n more records fit under MaxPendingRecords (or nothing
// is pending: a batch larger than the bound is taken alone), waiting up to
// PendingWait for indexing to make room. It returns a *BackpressureError when
// the wait ends without room, and ctx's error when ctx ends first.
func (ix *Index) waitRoom(ctx context.Context, n int) error {
	limit := int64(ix.opts.MaxPendingRecords)
	full := func() (int64, bool) {
		p := ix.pending.Load()
		return p, p > 0 && p+int64(n) > limit
	}
	p, over := full()
	if !over {
		return ctx.Err()
	}
	if ix.opts.PendingWait < 0 {
		return &BackpressureError{Pending: p, After: time.Second}
	}
	timer := time.NewTimer(ix.opts.PendingWait)
	defer timer.Stop()
	for {
		// Take the channel before looking again: a wake-up in between is
		// not lost.
		ix.roomMu.Lock()
		room := ix.room
		ix.roomMu.Unlock()
		if p, over = full(); !over {
			return ctx.Err()
		}
		select {
		case <-room:
		case <-timer.C:
			return &BackpressureError{Pending: p, After: time.Second}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// indexed takes n records off the pending count and wakes the writers waiting
// for room. Nothing taken off (a write whose records all went to the indexer)
// wakes no one.
func (ix *Index) indexed(n int64) {
	if n == 0 {
		return
	}
	ix.pending.Add(-n)
	ix.roomMu.Lock()
	close(ix.room)
	ix.room = make(chan struct{})
	ix.roomMu.Unlock()
}

// writableRange returns the oldest day records may be written to and the latest
// time a record may have.
func (ix *Index) writableRange(now time.Time) (int, time.Time) {
	minDay := 0 // ids hold days since 1970 in 16 bits: 1970-01-01 to 2149-06-06
	if ix.opts.Retention > 0 {
		minDay = max(minDay, dayOf(now.Add(-ix.opts.Retention)))
	}
	maxTime := now.Add(ix.opts.MaxFuture)
	if last := dayStart(1 << 16).Add(-time.Nanosecond); maxTime.After(last) {
		maxTime = last
	}
	return minDay, maxTime
}

// Flush waits until every record acknowledged before the call is searchable.
func (ix *Index) Flush(ctx context.Context) error {
	ix.mu.RLock()
	type target struct {
		p   *partition
		end int64
	}
	var ts []target
	for _, p := range ix.parts {
		ts = append(ts, target{p, p.size.Load()})
	}
	ix.mu.RUnlock()
	for _, t := range ts {
		if err := t.p.waitIndexed(ctx, t.end); err != nil {
			return fmt.Errorf("cannot flush log index: %w", err)
		}
	}
	return nil
}

// Get returns the record with the given id (Record.ID).
func (ix *Index) Get(id string) (Record, error) {
	var r Record
	did, err := parseDocID(id)
	if err != nil {
		return r, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	p, err := ix.partition(did.day(), false)
	if err != nil {
		return r, err
	}
	if p == nil {
		return r, fmt.Errorf("cannot get record %s: %w", id, ErrNotFound)
	}
	defer p.release()
	if did.off() < headerSize || did.off() >= p.size.Load() {
		return r, fmt.Errorf("cannot get record %s: %w", id, ErrNotFound)
	}
	err = p.record(did, &r)
	return r, err
}

// DropBefore drops every partition whose whole day ends at or before t and
// returns how many it dropped.
func (ix *Index) DropBefore(t time.Time) (int, error) {
	limit := dayOf(t) // days < limit end at or before the start of t's day
	if dayStart(limit + 1).Equal(t) {
		limit++
	}
	ix.mu.Lock()
	var victims []*partition
	for day, p := range ix.parts {
		if day < limit {
			victims = append(victims, p)
			delete(ix.parts, day)
		}
	}
	ix.mu.Unlock()
	var first error
	for _, p := range victims {
		p.use.Lock()
		p.dropped = true
		err := p.close()
		if err == nil {
			err = os.RemoveAll(p.dir)
		}
		p.use.Unlock()
		if err != nil && first == nil {
			first = fmt.Errorf("cannot drop partition %s: %w", dayDirName(p.day), err)
		}
	}
	if len(victims) > 0 {
		if err := atomicfile.SyncDir(ix.dir); err != nil && first == nil {
			first = err
		}
	}
	return len(victims), first
}

func (ix *Index) applyRetention() (int, error) {
	if ix.opts.Retention < 0 {
		return 0, nil
	}
	return ix.DropBefore(ix.opts.Now().Add(-ix.opts.Retention))
}

// partitionList returns the partitions open now, oldest day first. A caller
// still takes each one (acquire) before using it, since it may be dropped
// meanwhile.
func (ix *Index) partitionList() []*partition {
	ix.mu.RLock()
	parts := make([]*partition, 0, len(ix.parts))
	for _, p := range ix.parts {
		parts = append(parts, p)
	}
	ix.mu.RUnlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].day < parts[j].day })
	return parts
}

// retentionLoop applies the retention every minute and gives the segments'
// mapped pages back every releaseEvery (release.go).
func (ix *Index) retentionLoop() {
	defer close(ix.retentionDone)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	rel := time.NewTicker(releaseEvery)
	defer rel.Stop()
	for {
		select {
		case <-ix.stopRetention:
			return
		case <-rel.C:
			ix.releaseMapped()
		case <-t.C:
			if n, err := ix.applyRetention(); err != nil {
				ix.log.Error("cannot apply log retention", "err", err)
			} else if n > 0 {
				ix.log.Info("dropped log partitions past retention", "partitions", n)
			}
		}
	}
}

// Stats describes what the Index holds.
type Stats struct {
	Partitions int
	// DiskBytes is the size of every file under the directory.
	DiskBytes int64
	// RecordLogBytes is the size of the record logs alone.
	RecordLogBytes int64
	// Pending is the number of records acknowledged but not yet indexed.
	Pending int64
	// PersistWait is how long indexing has waited, in all, for Bleve to persist
	// its in-memory segments (see Options.MaxUnpersistedRecords).
	PersistWait time.Duration
}

// Stats walks the directory and reports sizes.
func (ix *Index) Stats() (Stats, error) {
	var s Stats
	ix.mu.RLock()
	s.Partitions = len(ix.parts)
	for _, p := range ix.parts {
		s.RecordLogBytes += p.size.Load()
	}
	ix.mu.RUnlock()
	s.Pending = ix.pending.Load()
	s.PersistWait = time.Duration(ix.persistWait.Load())
	err := filepath.WalkDir(ix.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				s.DiskBytes += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("cannot measure log index: %w", err)
	}
	return s, nil
}
