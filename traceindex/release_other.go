//go:build !linux

package traceindex

import bolt "go.etcd.io/bbolt"

// releaseMapped does nothing where MADV_DONTNEED is not used; see
// release_linux.go.
func releaseMapped(*bolt.DB) {}
