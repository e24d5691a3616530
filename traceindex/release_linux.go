package traceindex

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped lets the kernel take the partition file's pages out of this
// process's resident set. bbolt reads the file through a read-only shared
// mapping, so every page it has touched (and it touches each large block again
// when the next one is appended beside it) counts as resident memory until the
// kernel reclaims it; MADV_DONTNEED drops those mappings at once. The pages stay
// in the page cache and are faulted back in on the next access, so readers in
// flight see the same bytes.
func releaseMapped(db *bolt.DB, size int64) {
	info := db.Info()
	if info == nil || info.Data == 0 || size <= 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, info.Data, uintptr(size), syscall.MADV_DONTNEED)
}
