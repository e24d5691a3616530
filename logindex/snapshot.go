package logindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/blevesearch/bleve/v2"

	"outpost/internal/snapshot"
)

// Snapshot adds a consistent copy of the index through add (name relative to
// the index's directory, size, writer), for backups, while writes go on. For
// each partition, each shard is copied through Bleve's online copy first, then
// the record log up to its end at that moment, so the log holds everything the
// copied shards have applied and every record acknowledged before the
// snapshot began; opened, the copy indexes the rest from the log, as after a
// crash. The shards are staged in a "<day>.snapshot.tmp" directory beside the
// partitions (removed afterwards, and swept on open after a crash).
func (ix *Index) Snapshot(ctx context.Context, add snapshot.AddFunc) error {
	ix.closeMu.RLock()
	defer ix.closeMu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	for _, p := range ix.partitionList() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.snapshot(add); err != nil {
			return fmt.Errorf("cannot snapshot partition %s: %w", filepath.Base(p.dir), err)
		}
	}
	return nil
}

func (p *partition) snapshot(add snapshot.AddFunc) error {
	p.use.RLock()
	defer p.use.RUnlock()
	if p.dropped {
		return nil
	}
	day := filepath.Base(p.dir)
	stage := filepath.Join(p.ix.dir, day+".snapshot.tmp")
	if err := os.RemoveAll(stage); err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	for k, sh := range p.shards {
		c, ok := sh.(bleve.IndexCopyable)
		if !ok {
			return errors.New("the shard's index cannot copy itself")
		}
		if err := c.CopyTo(fileDirectory(filepath.Join(stage, "shard-"+strconv.Itoa(k)))); err != nil {
			return fmt.Errorf("cannot copy shard %d: %w", k, err)
		}
	}
	size := p.size.Load() // after the shards: the log covers what they applied
	err := filepath.WalkDir(stage, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(stage, path)
		st, err := e.Info()
		if err != nil {
			return err
		}
		return snapshot.AddFile(add, day+"/"+filepath.ToSlash(rel), path, st.Size())
	})
	if err != nil {
		return err
	}
	return snapshot.AddFile(add, day+"/"+filepath.Base(p.path), p.path, size)
}

// fileDirectory is a Bleve index.Directory writing plain files below a path,
// as Bleve's online copy needs.
type fileDirectory string

func (d fileDirectory) GetWriter(name string) (io.WriteCloser, error) {
	path := filepath.Join(string(d), name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}
