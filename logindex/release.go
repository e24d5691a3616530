package logindex

import (
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	"outpost/internal/pagerelease"
)

// Bleve reads its persisted segments (zap files) through read-only shared
// mappings, and every page read through them counts as resident memory of the
// process until the mapping is dropped or the kernel reclaims the page. The
// kernel maps not one page per read fault but every cached page of the 64 KiB
// window around it, and merges read whole segments, so the resident size grew
// with the day's index (hundreds of megabytes within an hour of ingest). So
// every releaseEvery the mapped pages of every shard's persisted segments are
// given back (MADV_DONTNEED on Linux). The pages stay in the page cache: a
// search after a release faults them back in without I/O.

// releaseEvery is how often the segments' mapped pages are given back.
const releaseEvery = 2 * time.Second

// mappedSegment is a persisted zap segment: Data is its mapping and Path its
// file. In-memory segments have no Path and are never advised.
type mappedSegment interface {
	Data() []byte
	Path() string
}

// releaseShard gives back the mapped pages of the persisted segments of one
// shard. It holds an index snapshot meanwhile, so that no segment it advises
// can be closed (and unmapped) under it.
func releaseShard(sh bleve.Index) {
	adv, err := sh.Advanced()
	if err != nil {
		return
	}
	r, err := adv.Reader()
	if err != nil {
		return
	}
	defer r.Close()
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok {
		return
	}
	for _, ss := range snap.Segments() {
		if seg, ok := ss.Segment().(mappedSegment); ok && seg.Path() != "" {
			pagerelease.Bytes(seg.Data())
		}
	}
}

// releaseMapped gives back the mapped pages of every partition's shards.
func (ix *Index) releaseMapped() {
	for _, p := range ix.partitionList() {
		if !p.acquire() {
			continue
		}
		for _, sh := range p.shards {
			releaseShard(sh)
		}
		p.release()
	}
}
