package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"outpost/internal/atomicfile"
)

// FormatVersion is the data-directory format this build writes and reads. A
// directory written by a newer build is refused rather than misread.
const FormatVersion = 1

const (
	formatFile    = "FORMAT"
	lockFile      = "LOCK"
	uncleanFile   = "UNCLEAN_SHUTDOWN"
	metaFile      = "meta.db"
	formatMagic   = "outpost-data"
	metricsSubdir = "tsdb"
	logsSubdir    = "logs"
	tracesSubdir  = "traces"
	detectSubdir  = "detect"
)

// ErrNewerFormat is returned (wrapped) by Open for a directory written by a newer Outpost.
var ErrNewerFormat = errors.New("data directory has a newer format")

// ErrNotDataDir is returned (wrapped) by Open for a non-empty directory that is not
// an Outpost data directory, so that a typo in --data never writes into, say, $HOME.
var ErrNotDataDir = errors.New("not an Outpost data directory")

// checkFormat reads FORMAT, or writes it for a new directory.
func checkFormat(dir string) error {
	path := filepath.Join(dir, formatFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := mustBeNew(dir); err != nil {
			return err
		}
		return atomicfile.WriteFile(path, []byte(fmt.Sprintf("%s %d\n", formatMagic, FormatVersion)), 0o644)
	}
	if err != nil {
		return fmt.Errorf("cannot read %q: %w", path, err)
	}
	magic, num, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	v, perr := strconv.Atoi(num)
	if !ok || magic != formatMagic || perr != nil || v < 1 {
		return fmt.Errorf("cannot use %q: %w: %s holds %q, want %q", dir, ErrNotDataDir, formatFile, strings.TrimSpace(string(b)), fmt.Sprintf("%s %d", formatMagic, FormatVersion))
	}
	if v > FormatVersion {
		return fmt.Errorf("cannot use %q: %w: version %d, this build reads up to %d; run a newer Outpost", dir, ErrNewerFormat, v, FormatVersion)
	}
	return nil
}

// mustBeNew accepts a directory without FORMAT only if it holds nothing but what a
// first start may already have created.
func mustBeNew(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot read directory %q: %w", dir, err)
	}
	for _, e := range entries {
		switch n := e.Name(); {
		case n == lockFile, n == uncleanFile, strings.HasSuffix(n, ".tmp"):
		default:
			return fmt.Errorf("cannot use %q: %w: it has no %s file but holds %q", dir, ErrNotDataDir, formatFile, n)
		}
	}
	return nil
}

// sweepTemp removes leftovers of interrupted atomic writes at the top level.
func sweepTemp(dir string) (int, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		return 0, err
	}
	for _, m := range matches {
		if err := os.RemoveAll(m); err != nil {
			return 0, fmt.Errorf("cannot remove leftover %q: %w", m, err)
		}
	}
	return len(matches), nil
}
