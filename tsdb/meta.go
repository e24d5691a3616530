package tsdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"outpost/internal/atomicfile"
)

const metaFile = "metadata.json"

// Metadata describes a metric family as the Prometheus metadata API reports it.
type Metadata struct {
	Type string `json:"type"` // counter, gauge, histogram, gaugehistogram, summary or unknown
	Help string `json:"help"`
	Unit string `json:"unit"`
}

type metaStore struct {
	mu sync.RWMutex
	m  map[string]Metadata
	// gen counts the changes of m, made under mu's write lock: who set an
	// entry as of generation g knows it is still in place while gen is g.
	gen atomic.Uint64
}

// set makes md the metadata of the metric name; it returns the generation as
// of which it is.
func (s *metaStore) set(name string, md Metadata) uint64 {
	s.mu.RLock()
	old, ok := s.m[name]
	gen := s.gen.Load()
	s.mu.RUnlock()
	if ok && old == md {
		return gen // the usual case: every request repeats the metadata
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Metadata{}
	}
	s.m[name] = md
	return s.gen.Add(1)
}

// Metadata returns the metadata of every metric family seen, by metric name.
func (db *DB) Metadata() map[string]Metadata {
	db.meta.mu.Lock()
	defer db.meta.mu.Unlock()
	out := make(map[string]Metadata, len(db.meta.m))
	for k, v := range db.meta.m {
		out[k] = v
	}
	return out
}

func (s *metaStore) load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read metadata: %w", err)
	}
	m := map[string]Metadata{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("cannot decode metadata %q: %w", path, err)
	}
	s.mu.Lock()
	s.m = m
	s.gen.Add(1)
	s.mu.Unlock()
	return nil
}

// save writes the metadata atomically: temporary file, fsync, rename, fsync dir.
func (s *metaStore) save(path string) error {
	s.mu.Lock()
	b, err := json.Marshal(s.m)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot encode metadata: %w", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("cannot write metadata: %w", err)
	}
	return nil
}
