package traceindex

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped lets the kernel take the partition file's pages out of this
// process's resident set. bbolt reads the file through a read-only shared
// mapping, so every page it has touched (and the cached pages around it, see
// release.go) counts as resident memory until the kernel reclaims it;
// MADV_DONTNEED drops those mappings at once. The pages stay in the page cache
// and are faulted back in on the next access, so readers in flight see the
// same bytes.
//
// The range is the database's used pages, read inside a read transaction:
// bbolt cannot remap meanwhile, and the used pages always lie inside the
// mapping (the file itself may be longer than the mapping, by the growth bbolt
// allocates ahead, and advising past the mapping would discard whatever memory
// follows it).
func releaseMapped(db *bolt.DB) {
	db.View(func(tx *bolt.Tx) error {
		addr, size := mappedRange(db, tx)
		if addr != 0 && size > 0 {
			syscall.Syscall(syscall.SYS_MADVISE, addr, size, syscall.MADV_DONTNEED)
		}
		return nil
	})
}

// mappedRange is the address and length releaseMapped advises. The caller
// holds tx open.
func mappedRange(db *bolt.DB, tx *bolt.Tx) (addr, size uintptr) {
	info := db.Info()
	if info == nil {
		return 0, 0
	}
	return info.Data, uintptr(tx.Size())
}
