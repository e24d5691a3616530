//go:build !linux

package pagerelease

// Range does nothing where MADV_DONTNEED is not used; see release_linux.go.
func Range(addr, size uintptr) {}
