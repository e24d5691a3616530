package traceindex

import (
	"context"
	"io"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	snap "outpost/internal/snapshot"
)

// Snapshot adds a consistent copy of every partition file through add (name
// relative to the index's directory, size, writer), each as of one read
// transaction: every request committed before the snapshot began is in it.
// Writers go on meanwhile; retention waits until it is done.
func (ix *Index) Snapshot(ctx context.Context, add snap.AddFunc) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	for _, p := range ix.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.db.View(func(tx *bolt.Tx) error {
			return add(filepath.Base(p.path), tx.Size(), func(w io.Writer) error {
				_, err := tx.WriteTo(w)
				return err
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
