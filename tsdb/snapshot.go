package tsdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"outpost/internal/snapshot"
)

// Snapshot adds a consistent copy of the DB's files through add (name relative
// to the DB's directory, size, writer), for backups, while writes go on:
// every partition file (immutable) and every WAL segment up to its size when
// the snapshot began, so every write acknowledged before then is in it, and
// metadata.json. Flushes, merges and retention wait until it is done, so no
// file it lists goes away. Opened, the copy replays its WAL like a DB after a
// crash (a record being written at that moment is cut off as a torn tail).
func (db *DB) Snapshot(ctx context.Context, add snapshot.AddFunc) error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return errClosed
	}
	parts := make([]string, 0, len(db.parts))
	for _, p := range db.parts {
		parts = append(parts, p.path)
	}
	db.mu.RUnlock()
	type file struct {
		name, path string
		size       int64
	}
	var files []file
	segs, err := walSegments(db.w.dir)
	if err != nil {
		return fmt.Errorf("cannot list the WAL: %w", err)
	}
	for _, s := range segs {
		p := walSegmentPath(db.w.dir, s)
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cannot snapshot %s: %w", p, err)
		}
		files = append(files, file{"wal/" + filepath.Base(p), p, st.Size()})
	}
	for _, p := range parts {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cannot snapshot %s: %w", p, err)
		}
		files = append(files, file{"partitions/" + filepath.Base(p), p, st.Size()})
	}
	if st, err := os.Stat(filepath.Join(db.dir, metaFile)); err == nil {
		files = append(files, file{metaFile, filepath.Join(db.dir, metaFile), st.Size()})
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := snapshot.AddFile(add, f.name, f.path, f.size); err != nil {
			return fmt.Errorf("cannot snapshot %s: %w", f.path, err)
		}
	}
	return nil
}
