package traceindex

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"outpost/internal/pagerelease"
)

// bbolt reads a partition file through a shared read-only mapping, and every
// page it reads through the mapping counts as resident memory of the process
// until the mapping is dropped or the kernel reclaims the page. The kernel
// makes this worse than it looks: a read fault maps not one page but every
// cached page of the aligned 64 KiB window around it ("fault-around", which
// bbolt's MADV_RANDOM does not turn off). Ingest reads nodes all over the file
// (trace ids are random keys, and each commit moves the nodes it changes to
// new pages), so a commit of a few hundred traces maps some hundred windows,
// and a release every few seconds let resident memory grow with the file to
// half a gigabyte.
//
// So the pages are given back (releaseMapped, MADV_DONTNEED on Linux) by
// budget: once commits have read defaultReleaseNodes nodes since the last
// release, the committer releases at once. Calls that read a whole window
// (Dependencies, Check) release when they are done; any other commit or read
// releases if releaseEvery has passed since the last release. What stays
// mapped is then at most about defaultReleaseNodes × 64 KiB (64 MiB) from
// ingest, plus what the queries since the last release read, however large
// the file grows. The pages stay in the page cache: a read after a release
// faults them back in without I/O.

// defaultReleaseNodes is the B+tree nodes commits may read from a partition
// file before its mapped pages are given back.
const defaultReleaseNodes = 1024

// releaseEvery is the longest mapped pages stay resident after a commit or a
// read that did not use up the budget.
const releaseEvery = time.Second

// processStart anchors the monotonic clock of maybeRelease.
var processStart = time.Now()

// maybeRelease gives the partition's mapped pages back if force is set or
// releaseEvery has passed since the last release, and reports whether it did.
// It may be called from any goroutine that holds the index lock shared and no
// transaction on the partition (releaseMapped begins a read transaction).
func (p *partition) maybeRelease(force bool) bool {
	now := int64(time.Since(processStart))
	last := p.released.Load()
	if !force && now-last < int64(releaseEvery) {
		return false
	}
	if !p.released.CompareAndSwap(last, now) {
		return false // another goroutine releases right now
	}
	releaseMapped(p.db)
	return true
}

// releaseMapped gives back the partition file's mapped pages (see above). The
// range is the database's used pages, read inside a read transaction: bbolt
// cannot remap meanwhile, and the used pages always lie inside the mapping (the
// file itself may be longer than the mapping, by the growth bbolt allocates
// ahead, and advising past the mapping would discard whatever memory follows
// it).
func releaseMapped(db *bolt.DB) {
	db.View(func(tx *bolt.Tx) error {
		pagerelease.Range(mappedRange(db, tx))
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
