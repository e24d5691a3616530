package pagerelease

import "syscall"

// Range releases the pages of the size bytes at addr, which must lie inside a
// read-only shared file mapping: advising past it would discard whatever memory
// of the process follows.
func Range(addr, size uintptr) {
	if addr == 0 || size == 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED)
}
