package tsdb

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// DB is an open metric store. All methods are safe for concurrent use.
type DB struct {
	dir     string
	partDir string
	quarDir string
	opts    Options
	log     *slog.Logger
	w       *wal

	flushMu sync.Mutex // serialises Flush, Compact and retention
	// order holds the ids of the first ordered series in label order (see
	// labelOrder), less those collected since; guarded by flushMu.
	order   []uint32
	ordered int

	mu          sync.RWMutex          // guards everything below
	series      []*memSeries          // by id; nil once collected (collectSeries)
	live        int                   // series not collected
	orphaned    []*partition          // quarantined partitions whose series collectSeries has not looked at
	byHash      map[uint64]*memSeries // by label hash; collisions chain through memSeries.next
	postings    postings
	allPostings *roaring.Bitmap
	flushing    []*frozenHead // heads being written to partitions
	parts       []*partition  // sorted by seq
	nextSeq     uint64
	headSamples int
	headDerived int       // of headSamples, those written by AppendDerived
	headSince   time.Time // when the oldest sample in the head was written
	closed      bool

	meta   metaStore
	otlp   otlpState
	lcache labelCache
	walBuf []byte
	recBuf []byte
	serBuf []byte // a series record being built (appendBatch)
	stats  stats
	// observer, if set, sees each committed batch's float samples (SetObserver).
	observer atomic.Pointer[Observer]
	// changed hear of each change to what queries read (OnChange).
	changed  atomic.Pointer[[]func(from int64)]
	changeMu sync.Mutex // serialises OnChange
	stop     chan struct{}
	// flushDue wakes the maintenance goroutine when the head reaches
	// HeadMaxSamples, so that the head does not grow past it by a whole
	// MaintenanceInterval of ingest.
	flushDue chan struct{}
	stopped  sync.WaitGroup
}

// memSeries is one series known to the DB, with its head samples.
type memSeries struct {
	id     uint32
	lset   labels.Labels
	head   *head      // samples not yet flushed; nil when there are none
	maxT   int64      // newest timestamp accepted or stored, math.MinInt64 if none
	walSeg int        // WAL segment holding this series' record, -1 if none
	next   *memSeries // next series with the same label hash
}

// Stats are counters since Open.
type Stats struct {
	Series              int   // series known
	HeadSamples         int   // samples in memory not yet in partitions
	HeadDerivedSamples  int   // of HeadSamples, those written by AppendDerived
	Partitions          int   // partition files
	PartitionBytes      int64 // size of the partition files
	OutOfOrderRejected  int64 // samples refused: older than the out-of-order window
	TooOldRejected      int64 // samples refused: older than the retention
	QuarantinedParts    int64 // partitions moved to quarantine
	WALCorruptions      int64 // damaged WAL segments found (and cut) on open
	WALSamplesReplayed  int64 // samples restored from the WAL on open
	Flushes             int64 // head flushes
	Merges              int64 // partition merges
	RetentionDropped    int64 // partitions deleted by retention
	SamplesAppended     int64 // samples accepted
	UnknownWALReference int64 // WAL samples whose series record was lost
	SeriesCollected     int64 // series removed from memory once their last sample was deleted
}

type stats struct {
	oooRejected, tooOld, quarantined, walCorrupt, walReplayed   atomic.Int64
	flushes, merges, retention, appended, unknownRef, collected atomic.Int64
}

// Open opens (creating if needed) the DB in dir, replaying its WAL. opts may be nil.
func Open(dir string, opts *Options) (*DB, error) {
	o := opts.withDefaults()
	db := &DB{
		dir:         dir,
		partDir:     filepath.Join(dir, "partitions"),
		quarDir:     filepath.Join(dir, "quarantine"),
		opts:        o,
		log:         o.Logger,
		byHash:      map[uint64]*memSeries{},
		postings:    newPostings(),
		allPostings: newBitmap(),
		nextSeq:     1,
		stop:        make(chan struct{}),
		flushDue:    make(chan struct{}, 1),
	}
	db.otlp.init()
	db.lcache.max = labelCacheSize
	for _, d := range []string{dir, db.partDir, db.quarDir, filepath.Join(dir, "wal")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create directory: %w", err)
		}
	}
	if err := db.loadPartitions(); err != nil {
		return nil, err
	}
	lastSeg, err := db.replayWAL()
	if err != nil {
		db.closeParts()
		return nil, err
	}
	if err := db.meta.load(filepath.Join(dir, metaFile)); err != nil {
		db.log.Warn("tsdb: cannot load metric metadata, starting without it", "err", err)
	}
	if db.w, err = openWAL(filepath.Join(dir, "wal"), lastSeg+1); err != nil {
		db.closeParts()
		return nil, err
	}
	if db.headSamples > 0 {
		db.headSince = o.Now()
	}
	if o.MaintenanceInterval > 0 {
		db.stopped.Add(1)
		go db.maintain()
	}
	return db, nil
}

func (db *DB) loadPartitions() error {
	ents, err := os.ReadDir(db.partDir)
	if err != nil {
		return fmt.Errorf("cannot list partitions: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(db.partDir, name)
		if strings.HasPrefix(name, ".tmp-") {
			// Left by a crash while writing; the data is still in the WAL or in the
			// partitions it was merged from.
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("cannot remove leftover %q: %w", p, err)
			}
			continue
		}
		if !strings.HasSuffix(name, partSuffix) {
			continue
		}
		part, err := db.openPartition(p, name)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				db.quarantine(p, err)
				continue
			}
			return err
		}
		db.parts = append(db.parts, part)
		if part.seq >= db.nextSeq {
			db.nextSeq = part.seq + 1
		}
	}
	sort.Slice(db.parts, func(i, j int) bool { return db.parts[i].seq < db.parts[j].seq })
	return nil
}

func (db *DB) openPartition(path, name string) (*partition, error) {
	var seq uint64
	f := strings.Split(strings.TrimSuffix(name, partSuffix), "-")
	if len(f) >= 4 {
		seq, _ = strconv.ParseUint(f[len(f)-1], 10, 64)
	}
	if seq == 0 {
		return nil, corruptf(path, -1, "file name %q does not carry a sequence number", name)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open partition: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("cannot stat partition: %w", err)
	}
	pi, err := readPartitionIndex(path, fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	ids := make([]uint32, len(pi.lsets))
	for i, lset := range pi.lsets {
		s := db.getOrCreate(lset)
		ids[i] = s.id
		if pi.refs[i].maxt > s.maxT {
			s.maxT = pi.refs[i].maxt
		}
	}
	part := &partition{path: path, seq: seq, mint: pi.mint, maxt: pi.maxt, size: st.Size(), f: fh, series: newPartRefs(pi.mint, ids, pi.refs)}
	return part, nil
}

// quarantine moves a damaged partition file aside; it is never fatal.
func (db *DB) quarantine(path string, cause error) {
	db.stats.quarantined.Add(1)
	dst := filepath.Join(db.quarDir, filepath.Base(path))
	if err := os.Rename(path, dst); err != nil {
		db.log.Error("tsdb: corrupt partition could not be moved to quarantine; ignoring it", "partition", path, "err", cause, "rename_err", err)
		return
	}
	db.log.Error("tsdb: corrupt partition moved to quarantine; its samples are not served", "partition", path, "quarantined_as", dst, "err", cause)
}

// replayWAL restores the head from the WAL and returns the last segment number.
func (db *DB) replayWAL() (int, error) {
	dir := filepath.Join(db.dir, "wal")
	segs, err := walSegments(dir)
	if err != nil {
		return 0, err
	}
	last := 0
	for _, seg := range segs {
		last = seg
		path := walSegmentPath(dir, seg)
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("cannot read wal segment: %w", err)
		}
		refs := map[uint64]*memSeries{}
		good, derr := decodeWALSegment(path, b, func(typ byte, payload []byte) error {
			return db.replayRecord(refs, typ, payload)
		})
		if derr != nil {
			if !errors.Is(derr, ErrCorrupt) {
				return 0, derr
			}
			db.stats.walCorrupt.Add(1)
			db.log.Error("tsdb: damaged wal segment cut at its last intact record; later records of the segment are lost", "segment", path, "kept_bytes", good, "dropped_bytes", int64(len(b))-good, "err", derr)
			if good < walHeaderSize {
				err = os.Remove(path)
			} else {
				err = os.Truncate(path, good)
			}
			if err != nil {
				return 0, fmt.Errorf("cannot repair wal segment %q: %w", path, err)
			}
		}
	}
	return last, nil
}

func (db *DB) replayRecord(refs map[uint64]*memSeries, typ byte, payload []byte) error {
	r := &blockReader{b: payload}
	switch typ {
	case recSeries:
		ref := r.uvarint()
		var sb labels.ScratchBuilder
		lset := r.labels(&sb)
		if r.err != nil {
			return r.err
		}
		refs[ref] = db.getOrCreate(lset)
	case recFloats, recHistograms:
		n := r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			ref := r.uvarint()
			s := sample{t: r.varint(), st: r.varint()}
			if typ == recFloats {
				s.v = math.Float64frombits(r.u64())
			} else {
				s.fh = r.histogram()
			}
			if r.err != nil {
				break
			}
			ms := refs[ref]
			if ms == nil {
				db.stats.unknownRef.Add(1)
				continue
			}
			db.insertHead(ms, s)
			db.stats.walReplayed.Add(1)
		}
		if r.err == nil && r.off != len(payload) {
			r.fail("%d trailing bytes", len(payload)-r.off)
		}
		return r.err
	default:
		return fmt.Errorf("%w: unknown wal record type %d", errFormat, typ)
	}
	return nil
}

// getOrCreate returns the series with labels lset, creating it. db.mu must be held
// for writing (or Open must be running).
func (db *DB) getOrCreate(lset labels.Labels) *memSeries {
	h := lset.Hash()
	if s := db.lookup(h, lset); s != nil {
		return s
	}
	s := &memSeries{id: uint32(len(db.series)), lset: lset.Copy(), maxT: math.MinInt64, walSeg: -1}
	db.series = append(db.series, s)
	db.live++
	s.next = db.byHash[h]
	db.byHash[h] = s
	s.lset.Range(func(l labels.Label) { db.postings.add(l.Name, l.Value, s.id) })
	db.allPostings.Add(s.id)
	return s
}

// newestSample returns the newest stored sample of the series with labels lset,
// unless there is none or it is a staleness marker. A damaged partition reads
// as no sample here; the next query of the series reports it.
func (db *DB) newestSample(lset labels.Labels) (sample, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	ms := db.lookup(lset.Hash(), lset)
	if ms == nil || ms.maxT == math.MinInt64 {
		return sample{}, false
	}
	_, ss, _, err := db.collect(nil, ms, ms.maxT, ms.maxT)
	if err != nil || len(ss) == 0 {
		return sample{}, false
	}
	last := ss[len(ss)-1]
	if last.fh == nil && value.IsStaleNaN(last.v) || last.fh != nil && value.IsStaleNaN(last.fh.Sum) {
		return sample{}, false
	}
	return last, true
}

// lookup returns the series with labels lset, whose hash is h, or nil. db.mu
// must be held.
func (db *DB) lookup(h uint64, lset labels.Labels) *memSeries {
	for s := db.byHash[h]; s != nil; s = s.next {
		if labels.Equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

// insertHead puts s into the series' head, replacing a sample with the same
// timestamp.
func (db *DB) insertHead(ms *memSeries, s sample) {
	if ms.head == nil {
		ms.head = &head{}
	}
	if ms.head.insert(s) {
		db.headSamples++
	}
	if s.t > ms.maxT {
		ms.maxT = s.t
	}
}

// Stats returns the DB's counters.
func (db *DB) Stats() Stats {
	db.mu.RLock()
	st := Stats{Series: db.live, HeadSamples: db.headSamples, HeadDerivedSamples: db.headDerived, Partitions: len(db.parts)}
	for _, p := range db.parts {
		st.PartitionBytes += p.size
	}
	db.mu.RUnlock()
	st.OutOfOrderRejected = db.stats.oooRejected.Load()
	st.TooOldRejected = db.stats.tooOld.Load()
	st.QuarantinedParts = db.stats.quarantined.Load()
	st.WALCorruptions = db.stats.walCorrupt.Load()
	st.WALSamplesReplayed = db.stats.walReplayed.Load()
	st.Flushes = db.stats.flushes.Load()
	st.Merges = db.stats.merges.Load()
	st.RetentionDropped = db.stats.retention.Load()
	st.SamplesAppended = db.stats.appended.Load()
	st.UnknownWALReference = db.stats.unknownRef.Load()
	st.SeriesCollected = db.stats.collected.Load()
	return st
}

// Close stops the background goroutine, makes the WAL durable and closes every
// file. The head is not flushed: the WAL already holds it.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	close(db.stop)
	db.stopped.Wait()

	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	err := db.w.close()
	if merr := db.meta.save(filepath.Join(db.dir, metaFile)); merr != nil && err == nil {
		err = merr
	}
	db.closeParts()
	return err
}

func (db *DB) closeParts() {
	for _, p := range db.parts {
		p.f.Close()
	}
	db.parts = nil
}

var errClosed = errors.New("tsdb is closed")

func newBitmap() *roaring.Bitmap { return roaring.New() }

// headBytes estimates the memory the heads take.
func (db *DB) headBytes() int {
	db.mu.RLock()
	defer db.mu.RUnlock()
	n := 0
	for _, s := range db.series {
		if s != nil {
			n += s.head.bytes()
		}
	}
	return n
}
