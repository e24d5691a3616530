package store

// Backup and restore: a consistent copy of the whole data directory while the
// server runs, as one tar stream, and its extraction into a new directory.

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"outpost/internal/atomicfile"
	"outpost/internal/snapshot"
)

// AddFunc adds one file of a snapshot: its path relative to the part being
// snapshotted ("/"-separated), its size, and a writer of exactly size bytes.
type AddFunc = snapshot.AddFunc

// Snapshotter is a part of the data directory that can copy a consistent
// snapshot of itself while it is written to (a backend, or another owner of a
// subdirectory registered with AddSnapshotter). What it adds must be enough to
// reopen it: after a restore it opens as after a crash at the moment of the
// snapshot, so any acknowledged write before the snapshot began is there.
type Snapshotter interface {
	Snapshot(ctx context.Context, add AddFunc) error
}

// ErrNoSnapshot is returned by Backup when a part of the directory cannot
// snapshot itself.
var ErrNoSnapshot = errors.New("part of the data directory cannot be backed up while running")

type namedSnapshotter struct {
	dir string // relative, "/"-separated
	s   Snapshotter
}

// AddSnapshotter registers the owner of subdirectory dir (relative to the data
// directory, e.g. "detect/incidents"): Backup asks it for its files instead of
// copying them. Files elsewhere outside the backends' directories are copied
// as they are: they must be replaced atomically by their writers.
func (s *Store) AddSnapshotter(dir string, sn Snapshotter) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.snaps = append(s.snaps, namedSnapshotter{filepath.ToSlash(filepath.Clean(dir)), sn})
}

// Backup writes a consistent copy of the data directory to w as a tar stream:
// FORMAT, meta.db (through a read transaction), each backend's snapshot, the
// registered snapshotters' files, and every other regular file (LOCK,
// UNCLEAN_SHUTDOWN and *.tmp left out). Writes go on meanwhile.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	tw := tar.NewWriter(w)
	now := s.now()
	add := func(prefix string) AddFunc {
		return func(name string, size int64, write func(io.Writer) error) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			full := path.Join(prefix, name)
			if err := tw.WriteHeader(&tar.Header{Name: full, Size: size, Mode: 0o644, ModTime: now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
				return fmt.Errorf("cannot back up %s: %w", full, err)
			}
			cw := &snapshot.CountingWriter{W: tw}
			if err := write(cw); err != nil {
				return fmt.Errorf("cannot back up %s: %w", full, err)
			}
			if cw.N != size {
				return fmt.Errorf("cannot back up %s: wrote %d bytes, announced %d", full, cw.N, size)
			}
			return nil
		}
	}
	owned := map[string]Snapshotter{}
	for name, b := range map[string]any{metricsSubdir: s.metrics, logsSubdir: s.logs, tracesSubdir: s.traces} {
		if b == nil {
			continue
		}
		sn, ok := b.(Snapshotter)
		if !ok {
			return fmt.Errorf("%w: %s (%T)", ErrNoSnapshot, name, b)
		}
		owned[name] = sn
	}
	s.snapMu.Lock()
	for _, n := range s.snaps {
		owned[n.dir] = n.s
	}
	s.snapMu.Unlock()
	if err := s.counters.backup(add("")); err != nil {
		return err
	}
	dirs := make([]string, 0, len(owned))
	for d := range owned {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := owned[d].Snapshot(ctx, add(d)); err != nil {
			return fmt.Errorf("cannot back up %s: %w", d, err)
		}
	}
	// Everything else: small files replaced atomically by their writers.
	err := filepath.WalkDir(s.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if _, ok := owned[rel]; ok {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case !e.Type().IsRegular(), rel == lockFile, rel == uncleanFile, rel == metaFile, strings.HasSuffix(rel, ".tmp"):
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		return add("")(rel, st.Size(), func(w io.Writer) error {
			_, err := io.CopyN(w, f, st.Size())
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("cannot back up %s: %w", s.dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("cannot finish the backup: %w", err)
	}
	return nil
}

// Restore extracts a backup made by Backup from r into dir, which must not
// exist or be empty. Then Open finds the directory as after a crash at the
// moment of the backup, and recovers the same way.
func Restore(r io.Reader, dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("cannot restore into %s: the directory is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot restore into %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot restore into %s: %w", dir, err)
	}
	tr := tar.NewReader(r)
	sawFormat := false
	dirs := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("cannot read the backup: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("cannot restore %q: not a regular file", h.Name)
		}
		name := path.Clean(h.Name)
		if !fs.ValidPath(name) || name == "." {
			return fmt.Errorf("cannot restore %q: not a relative path inside the directory", h.Name)
		}
		if name == formatFile {
			sawFormat = true
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if !dirs[filepath.Dir(dst)] {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("cannot restore %s: %w", name, err)
			}
			dirs[filepath.Dir(dst)] = true
		}
		mode := os.FileMode(0o644)
		if h.Mode&0o077 == 0 {
			mode = 0o600
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return fmt.Errorf("cannot restore %s: %w", name, err)
		}
		_, err = io.Copy(f, tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("cannot restore %s: %w", name, err)
		}
	}
	if !sawFormat {
		return fmt.Errorf("cannot restore into %s: the backup holds no %s: it is not an Outpost backup", dir, formatFile)
	}
	// Make the directory entries durable.
	for d := range dirs {
		for ; strings.HasPrefix(d, dir); d = filepath.Dir(d) {
			if err := atomicfile.SyncDir(d); err != nil {
				return fmt.Errorf("cannot restore into %s: %w", dir, err)
			}
			if d == dir {
				break
			}
		}
	}
	return nil
}

// RestoreMain is "outpost restore": it extracts a backup file into a data
// directory that does not exist yet or is empty.
//
//	outpost restore --from FILE [--data ./data]
func RestoreMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup file written by outpost backup (required)")
	dir := fs.String("data", "./data", "the data directory to create; it must not exist or be empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("restore: want --from FILE and no other arguments")
	}
	f, err := os.Open(*from)
	if err != nil {
		return fmt.Errorf("cannot open the backup: %w", err)
	}
	defer f.Close()
	start := time.Now()
	if err := Restore(f, *dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s in %s; start Outpost with --data %s\n", *from, *dir, time.Since(start).Round(time.Millisecond), *dir)
	return nil
}
