// Package pagerelease gives the resident pages of read-only shared file mappings
// back to the kernel (MADV_DONTNEED on Linux, nothing elsewhere). A store that
// reads its files through such mappings (bbolt, Bleve's zap segments) would
// otherwise count every page it ever touched as resident memory until the
// kernel reclaims it. The pages stay in the page cache: the next access faults
// them back in, with the same bytes, without I/O.
package pagerelease

import "unsafe"

// Bytes releases the pages of b, which must lie inside a read-only shared file
// mapping.
func Bytes(b []byte) {
	if len(b) == 0 {
		return
	}
	Range(uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
}
