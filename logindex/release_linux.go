package logindex

import (
	"syscall"
	"unsafe"
)

// releaseMapping drops this process's mappings of the pages of b, a read-only
// shared file mapping (MADV_DONTNEED): the pages leave the resident set and are
// faulted back in from the page cache on the next access, with the same bytes.
func releaseMapping(b []byte) {
	if len(b) == 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MADV_DONTNEED)
}
