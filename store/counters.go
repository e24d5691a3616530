package store

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Signal is one of the three kinds of OTLP telemetry.
type Signal int

const (
	Metrics Signal = iota // data points
	Logs                  // log records
	Traces                // spans
	numSignals
)

func (s Signal) String() string {
	switch s {
	case Metrics:
		return "metrics"
	case Logs:
		return "logs"
	case Traces:
		return "traces"
	}
	return fmt.Sprintf("Signal(%d)", int(s))
}

// Counts holds accepted items per signal.
type Counts struct {
	Points     uint64 `json:"points"`
	LogRecords uint64 `json:"log_records"`
	Spans      uint64 `json:"spans"`
}

func (c *Counts) add(s Signal, n uint64) {
	switch s {
	case Metrics:
		c.Points += n
	case Logs:
		c.LogRecords += n
	case Traces:
		c.Spans += n
	}
}

// Service is what the store knows of one service (resource attribute service.name).
type Service struct {
	Name     string    `json:"name"`
	Counts   Counts    `json:"ingested"`
	LastSeen time.Time `json:"last_seen"`
}

// OtherServices collects the counts of services beyond Options.MaxServices.
const OtherServices = "(other)"

// UnknownService names telemetry whose resource has no service.name, as the
// OpenTelemetry SDKs do.
const UnknownService = "unknown_service"

var (
	bucketTotals   = []byte("totals")
	bucketServices = []byte("services")
	keyCounts      = []byte("counts")
	keyUnclean     = []byte("unclean_shutdowns")
)

// counters keeps ingest counters in memory and commits them to meta.db. Commits are
// grouped: add returns once a commit that includes its update is durable, and all
// updates that arrive while a commit runs share the next one.
type counters struct {
	db          *bolt.DB
	maxServices int

	mu       sync.Mutex
	totals   Counts
	unclean  uint64
	services map[string]*Service
	dirty    map[string]bool
	waiters  []chan error
	kick     chan struct{}
	done     chan struct{}
	stopped  chan struct{}
}

func openCounters(path string, maxServices int) (*counters, error) {
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("cannot open %q: %w", path, err)
	}
	c := &counters{
		db:          db,
		maxServices: maxServices,
		services:    make(map[string]*Service),
		dirty:       make(map[string]bool),
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		t, err := tx.CreateBucketIfNotExists(bucketTotals)
		if err != nil {
			return err
		}
		s, err := tx.CreateBucketIfNotExists(bucketServices)
		if err != nil {
			return err
		}
		if v := t.Get(keyCounts); v != nil {
			if c.totals, err = decodeCounts(v); err != nil {
				return fmt.Errorf("totals: %w", err)
			}
		}
		if v := t.Get(keyUnclean); len(v) == 8 {
			c.unclean = binary.BigEndian.Uint64(v)
		}
		return s.ForEach(func(k, v []byte) error {
			cnt, err := decodeCounts(v)
			if err != nil {
				return fmt.Errorf("service %q: %w", k, err)
			}
			c.services[string(k)] = &Service{Name: string(k), Counts: cnt, LastSeen: decodeLastSeen(v)}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot load counters from %q: %w", path, err)
	}
	go c.commitLoop()
	return c, nil
}

// encodeCounts: points, log records, spans (uint64 each) and last-seen Unix
// nanoseconds (int64), all big-endian: 32 bytes.
func encodeCounts(c Counts, lastSeen time.Time) []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b[0:], c.Points)
	binary.BigEndian.PutUint64(b[8:], c.LogRecords)
	binary.BigEndian.PutUint64(b[16:], c.Spans)
	var ns int64
	if !lastSeen.IsZero() {
		ns = lastSeen.UnixNano()
	}
	binary.BigEndian.PutUint64(b[24:], uint64(ns))
	return b
}

func decodeCounts(b []byte) (Counts, error) {
	if len(b) < 24 {
		return Counts{}, fmt.Errorf("counter record is %d bytes, want at least 24", len(b))
	}
	return Counts{
		Points:     binary.BigEndian.Uint64(b[0:]),
		LogRecords: binary.BigEndian.Uint64(b[8:]),
		Spans:      binary.BigEndian.Uint64(b[16:]),
	}, nil
}

func decodeLastSeen(b []byte) time.Time {
	if len(b) < 32 {
		return time.Time{}
	}
	ns := int64(binary.BigEndian.Uint64(b[24:]))
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// add counts accepted items of one signal, per service, and waits until the update
// is durable. total may be less than the sum over services when a backend refused
// some items of the batch.
func (c *counters) add(sig Signal, total uint64, perService map[string]uint64, now time.Time) error {
	ch := make(chan error, 1)
	c.mu.Lock()
	c.totals.add(sig, total)
	for name, n := range perService {
		svc := c.services[name]
		if svc == nil {
			if len(c.services) >= c.maxServices {
				name = OtherServices
				svc = c.services[name]
			}
			if svc == nil {
				svc = &Service{Name: name}
				c.services[name] = svc
			}
		}
		svc.Counts.add(sig, n)
		svc.LastSeen = now
		c.dirty[name] = true
	}
	c.waiters = append(c.waiters, ch)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return <-ch
}

// addUnclean counts one unclean shutdown found at open and commits it.
func (c *counters) addUnclean() (uint64, error) {
	c.mu.Lock()
	c.unclean++
	n := c.unclean
	c.mu.Unlock()
	return n, c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTotals).Put(keyUnclean, binary.BigEndian.AppendUint64(nil, n))
	})
}

func (c *counters) commitLoop() {
	defer close(c.stopped)
	for {
		select {
		case <-c.kick:
		case <-c.done:
			c.commit() // whatever arrived before close
			return
		}
		c.commit()
	}
}

// commit writes everything changed since the last commit in one transaction and
// tells the waiting writers how it went.
func (c *counters) commit() {
	c.mu.Lock()
	if len(c.waiters) == 0 {
		c.mu.Unlock()
		return
	}
	waiters := c.waiters
	c.waiters = nil
	totals := encodeCounts(c.totals, time.Time{})
	type row struct{ k, v []byte }
	rows := make([]row, 0, len(c.dirty))
	for name := range c.dirty {
		s := c.services[name]
		rows = append(rows, row{[]byte(name), encodeCounts(s.Counts, s.LastSeen)})
	}
	clear(c.dirty)
	c.mu.Unlock()

	err := c.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketTotals).Put(keyCounts, totals); err != nil {
			return err
		}
		b := tx.Bucket(bucketServices)
		for _, r := range rows {
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("cannot commit ingest counters: %w", err)
	}
	for _, w := range waiters {
		w <- err
	}
}

func (c *counters) snapshot() (Counts, []Service, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	svcs := make([]Service, 0, len(c.services))
	for _, s := range c.services {
		svcs = append(svcs, *s)
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	return c.totals, svcs, c.unclean
}

func (c *counters) close() error {
	close(c.done)
	<-c.stopped
	return c.db.Close()
}

// backup adds meta.db as of one read transaction.
func (c *counters) backup(add AddFunc) error {
	return c.db.View(func(tx *bolt.Tx) error {
		return add(metaFile, tx.Size(), func(w io.Writer) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
}
