package traceindex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/internal/atomicfile"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("trace index is closed")

const (
	partPrefix  = "traces-"
	partSuffix  = ".bolt"
	partTimeFmt = "20060102T150405Z"
)

// Index is the span store: a directory of time-partitioned bbolt files. All
// methods are safe for concurrent use.
type Index struct {
	dir   string
	opts  Options
	codec *codec

	mu     sync.RWMutex // guards parts and closed; held shared by reads and writes
	parts  []*partition // sorted by start, non-overlapping
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup // the retention goroutine
}

// partition is one bbolt file holding the spans that start in [start, end).
type partition struct {
	path       string
	start, end int64 // Unix ns
	db         *bolt.DB

	// Group commit: writers queue their prepared blocks; one of them (the
	// committer) writes everything queued in one transaction and tells each
	// writer the outcome. cmu guards queue and committing.
	cmu        sync.Mutex
	queue      []*commitJob
	committing bool

	// The name caches and spread are used only by the committer (readers read
	// names inside their transaction).
	svcIDs  map[string]uint32
	opIDs   map[opName]uint32
	attrIDs map[string]uint32
	spread  int64 // largest (latest - earliest span start) of one block

	// Giving the mapped pages back (release.go): released is when that was last
	// done (Unix ns, monotonic within the process), by any goroutine; touched
	// counts the B+tree nodes commits read since then (committer only);
	// releaseNodes is the budget that forces a release.
	released     atomic.Int64
	touched      int64
	releaseNodes int64
}

type opName struct {
	svc  uint32
	kind ptrace.SpanKind
	name string
}

// Open opens (creating if needed) the span store in dir. A nil opts means
// defaults.
func Open(dir string, opts *Options) (*Index, error) {
	o := opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create trace directory %q: %w", dir, err)
	}
	c, err := newCodec(maxBlockRaw)
	if err != nil {
		return nil, err
	}
	ix := &Index{dir: dir, opts: o, codec: c, stop: make(chan struct{})}
	names, err := filepath.Glob(filepath.Join(dir, partPrefix+"*"+partSuffix))
	if err != nil {
		c.close()
		return nil, fmt.Errorf("cannot list partitions in %q: %w", dir, err)
	}
	for _, name := range names {
		p, err := openPartition(name, &o, 0, 0)
		if err != nil {
			ix.closeParts()
			c.close()
			return nil, err
		}
		ix.parts = append(ix.parts, p)
	}
	slices.SortFunc(ix.parts, func(a, b *partition) int { return cmpInt64(a.start, b.start) })
	for i := 1; i < len(ix.parts); i++ {
		if ix.parts[i].start < ix.parts[i-1].end {
			err := fmt.Errorf("cannot open trace directory %q: partitions %s and %s overlap",
				dir, filepath.Base(ix.parts[i-1].path), filepath.Base(ix.parts[i].path))
			ix.closeParts()
			c.close()
			return nil, err
		}
	}
	if o.Retention > 0 {
		if _, err := ix.DropBefore(o.Now().Add(-o.Retention)); err != nil {
			ix.closeParts()
			c.close()
			return nil, err
		}
		ix.wg.Add(1)
		go ix.retentionLoop()
	}
	return ix, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Close stops retention and closes every partition file. It is idempotent.
func (ix *Index) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return nil
	}
	ix.closed = true
	close(ix.stop)
	ix.mu.Unlock()
	ix.wg.Wait()

	ix.mu.Lock()
	defer ix.mu.Unlock()
	err := ix.closeParts()
	ix.codec.close()
	return err
}

func (ix *Index) closeParts() error {
	var errs []error
	for _, p := range ix.parts {
		if err := p.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot close partition %q: %w", p.path, err))
		}
	}
	ix.parts = nil
	return errors.Join(errs...)
}

func (ix *Index) retentionLoop() {
	defer ix.wg.Done()
	t := time.NewTicker(ix.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-ix.stop:
			return
		case <-t.C:
			if _, err := ix.DropBefore(ix.opts.Now().Add(-ix.opts.Retention)); err != nil && !errors.Is(err, ErrClosed) {
				ix.opts.Logger.Error("trace retention failed", "err", err)
			}
		}
	}
}

// DropBefore deletes every partition whose whole time range is before t and
// returns how many it deleted. Queries and writes wait while files are removed.
func (ix *Index) DropBefore(t time.Time) (int, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return 0, ErrClosed
	}
	cut := t.UnixNano()
	n := 0
	for len(ix.parts) > 0 && ix.parts[0].end <= cut {
		p := ix.parts[0]
		if err := p.db.Close(); err != nil {
			return n, fmt.Errorf("cannot close partition %q: %w", p.path, err)
		}
		if err := os.Remove(p.path); err != nil {
			return n, fmt.Errorf("cannot remove partition %q: %w", p.path, err)
		}
		ix.parts = ix.parts[1:]
		n++
		ix.opts.Logger.Info("dropped trace partition", "file", filepath.Base(p.path),
			"start", time.Unix(0, p.start).UTC(), "end", time.Unix(0, p.end).UTC())
	}
	if n > 0 {
		if err := atomicfile.SyncDir(ix.dir); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Backup writes a consistent copy of every partition file into dst (which must
// exist) while writers continue. The copies open as an Index.
func (ix *Index) Backup(dst string) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	for _, p := range ix.parts {
		if err := backupPartition(p, filepath.Join(dst, filepath.Base(p.path))); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(dst)
}

func backupPartition(p *partition, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create backup of partition %q: %w", p.path, err)
	}
	err = p.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot back up partition %q to %q: %w", p.path, path, err)
	}
	return nil
}

// PartitionInfo describes one partition file.
type PartitionInfo struct {
	Path       string
	Start, End time.Time
	FileBytes  int64 // file size, including space bbolt preallocated
	Bytes      int64 // pages in use: the file's high-water mark minus free pages
}

// Partitions lists the partition files, oldest first.
func (ix *Index) Partitions() ([]PartitionInfo, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	var r []PartitionInfo
	for _, p := range ix.parts {
		info := PartitionInfo{Path: p.path, Start: time.Unix(0, p.start).UTC(), End: time.Unix(0, p.end).UTC()}
		if fi, err := os.Stat(p.path); err == nil {
			info.FileBytes = fi.Size()
		}
		err := p.db.View(func(tx *bolt.Tx) error {
			info.Bytes = tx.Size() - int64(p.db.Stats().FreePageN)*int64(tx.DB().Info().PageSize)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cannot read size of partition %q: %w", p.path, err)
		}
		r = append(r, info)
	}
	return r, nil
}

// partitionFor returns the partition holding time ts (Unix ns), creating it if
// needed. The caller holds ix.mu shared; it is released and retaken to create.
func (ix *Index) partitionFor(ts int64) (*partition, error) {
	if p := ix.findPart(ts); p != nil {
		return p, nil
	}
	ix.mu.RUnlock()
	defer ix.mu.RLock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil, ErrClosed
	}
	if p := ix.findPart(ts); p != nil {
		return p, nil
	}
	d := int64(ix.opts.PartitionDuration)
	start := ts - ts%d
	if ts < 0 && ts%d != 0 {
		start -= d
	}
	end := start + d
	for _, q := range ix.parts {
		if q.end > start && q.end <= ts {
			start = q.end
		}
		if q.start > ts && q.start < end {
			end = q.start
		}
	}
	name := partPrefix + time.Unix(0, start).UTC().Format(partTimeFmt) + partSuffix
	p, err := openPartition(filepath.Join(ix.dir, name), &ix.opts, start, end)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(ix.dir); err != nil {
		p.db.Close()
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(ix.parts, start, func(q *partition, s int64) int { return cmpInt64(q.start, s) })
	ix.parts = slices.Insert(ix.parts, i, p)
	ix.opts.Logger.Info("created trace partition", "file", name,
		"start", time.Unix(0, start).UTC(), "end", time.Unix(0, end).UTC())
	return p, nil
}

func (ix *Index) findPart(ts int64) *partition {
	i, found := slices.BinarySearchFunc(ix.parts, ts, func(q *partition, t int64) int { return cmpInt64(q.start, t) })
	if found {
		return ix.parts[i]
	}
	if i > 0 && ts < ix.parts[i-1].end {
		return ix.parts[i-1]
	}
	return nil
}

// overlapping returns the partitions overlapping [from, to] (Unix ns), newest first.
func (ix *Index) overlapping(from, to int64) []*partition {
	var r []*partition
	for i := len(ix.parts) - 1; i >= 0; i-- {
		p := ix.parts[i]
		if p.start <= to && p.end > from {
			r = append(r, p)
		}
	}
	return r
}

// openPartition opens the file at path. start and end are used only when the
// file is new; an existing file's range comes from its meta bucket.
func openPartition(path string, o *Options, start, end int64) (*partition, error) {
	_, statErr := os.Stat(path)
	isNew := os.IsNotExist(statErr)
	if isNew && end == 0 {
		return nil, fmt.Errorf("cannot open partition %q: file vanished", path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      time.Second,
		NoSync:       o.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open partition %q: %w", path, err)
	}
	p := &partition{path: path, db: db, svcIDs: map[string]uint32{}, opIDs: map[opName]uint32{}, attrIDs: map[string]uint32{},
		releaseNodes: int64(o.releaseNodes)}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaVersion); v == nil {
			if !isNew {
				return fmt.Errorf("missing format version")
			}
			meta.Put(metaVersion, u32(nil, formatVersion))
			meta.Put(metaStart, u64(nil, uint64(start)))
			meta.Put(metaEnd, u64(nil, uint64(end)))
			meta.Put(metaSpread, u64(nil, 0))
		} else if len(v) != 4 {
			return &CorruptionError{Path: path, Bucket: string(bucketMeta), Key: metaVersion, Err: fmt.Errorf("version of %d bytes", len(v))}
		} else if ver := be32(v); ver > formatVersion {
			return fmt.Errorf("format version %d is newer than supported %d", ver, formatVersion)
		}
		for _, k := range [][]byte{metaStart, metaEnd, metaSpread} {
			if v := meta.Get(k); len(v) != 8 {
				return &CorruptionError{Path: path, Bucket: string(bucketMeta), Key: k, Err: fmt.Errorf("value of %d bytes", len(v))}
			}
		}
		p.start = int64(be64(meta.Get(metaStart)))
		p.end = int64(be64(meta.Get(metaEnd)))
		p.spread = int64(be64(meta.Get(metaSpread)))
		if p.end <= p.start {
			return &CorruptionError{Path: path, Bucket: string(bucketMeta), Key: metaEnd, Err: fmt.Errorf("end %d before start %d", p.end, p.start)}
		}
		return p.loadNames(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot open partition %q: %w", path, err)
	}
	if !strings.HasPrefix(filepath.Base(path), partPrefix) {
		db.Close()
		return nil, fmt.Errorf("cannot open partition %q: unexpected name", path)
	}
	return p, nil
}

// loadNames fills the writer's name caches from the dictionary buckets.
func (p *partition) loadNames(tx *bolt.Tx) error {
	err := tx.Bucket(bucketSvc).ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return &CorruptionError{Path: p.path, Bucket: string(bucketSvc), Key: k, Err: errors.New("bad key length")}
		}
		p.svcIDs[string(v)] = be32(k)
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketOp).ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) < 1 {
			return &CorruptionError{Path: p.path, Bucket: string(bucketOp), Key: k, Err: errors.New("bad key or value length")}
		}
		p.opIDs[opName{svc: be32(k), kind: ptrace.SpanKind(v[0]), name: string(v[1:])}] = be32(k[4:])
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketAttr).ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return &CorruptionError{Path: p.path, Bucket: string(bucketAttr), Key: k, Err: errors.New("bad key length")}
		}
		p.attrIDs[string(v)] = be32(k)
		return nil
	})
}
