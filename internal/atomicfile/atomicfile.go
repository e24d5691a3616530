// Package atomicfile owns Outpost's one way of replacing a small file so that a
// crash leaves either the old content or the new, never a mix: write a
// temporary file beside it, fsync, rename over it, fsync the directory. Every
// store and the detectors use it for their metadata files; stores may import
// it, as it imports nothing of Outpost.
//
// Temporary files are named "<name>.<random>.tmp" in the target's directory;
// a crash between create and rename leaves one behind, which its owner may
// sweep (the data directory's root sweeps *.tmp at open).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, with mode perm, durably.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot create a temporary file for %q: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("cannot set the mode of %q: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("cannot write %d bytes to %q: %w", len(data), tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot rename %q to %q: %w", tmp, path, err)
	}
	ok = true
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync directory %q: %w", dir, err)
	}
	return nil
}
