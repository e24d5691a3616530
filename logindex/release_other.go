//go:build !linux

package logindex

// releaseMapping does nothing where MADV_DONTNEED is not used; see
// release_linux.go.
func releaseMapping([]byte) {}
