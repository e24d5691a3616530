package tsdb

import (
	"errors"
	"fmt"
	"time"
)

// ErrCorrupt is matched by every corruption error of this package:
// errors.Is(err, ErrCorrupt) reports whether err is a *CorruptionError.
var ErrCorrupt = errors.New("corrupt data")

// CorruptionError says which file is damaged, where, and how.
type CorruptionError struct {
	File   string // path of the damaged file
	Offset int64  // byte offset of the damaged structure in File, -1 when unknown
	Err    error  // what is wrong
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt data in %q at offset %d: %v", e.File, e.Offset, e.Err)
}

// Unwrap returns the underlying cause.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptionError.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

func corruptf(file string, off int64, format string, args ...any) error {
	return &CorruptionError{File: file, Offset: off, Err: fmt.Errorf(format, args...)}
}

// errFormat is the cause of a decoding failure inside a buffer; callers wrap it
// into a CorruptionError that knows the file.
var errFormat = errors.New("bad format")

// BackpressureError is returned by WriteMetrics when the DB refuses a batch for now
// (for example because the WAL cannot be written); the client should retry after
// RetryAfter.
type BackpressureError struct {
	Err   error
	After time.Duration
}

func (e *BackpressureError) Error() string { return "cannot store metrics now: " + e.Err.Error() }

// Unwrap returns the underlying cause.
func (e *BackpressureError) Unwrap() error { return e.Err }

// RetryAfter says how long the client should wait before retrying.
func (e *BackpressureError) RetryAfter() time.Duration { return e.After }
