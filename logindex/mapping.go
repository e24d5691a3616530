package logindex

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	zapx "github.com/blevesearch/zapx/v17"
)

// The Bleve side of the log index: field names, the terms' encodings, and how
// shards are created and opened. A shard's documents are blocks of records
// (blockbuild.go; FORMAT.md lists the fields). Nothing is stored in Bleve but the
// document id and a block's filter of its tokens with a digit (bloom.go):
// records are read from the record log.

const (
	fieldBody    = "body"
	fieldService = "svc"
	fieldSev     = "sev"
	fieldSevNum  = "sn"
	fieldScope   = "scope"
	fieldTrace   = "tid"
	fieldSpan    = "sid"
	fieldEvent   = "ev"
	fieldTime    = "t"
	fieldGranule = "tg"
	fieldKeys    = "_k"
	fieldPairs   = "b2"
	fieldHashed  = "bh"
	fieldBloom   = "bf"
	attrPrefix   = "a."
	numPrefix    = "n."

	// granuleMs is the width of a time granule: the resolution of histograms and
	// the unit by which time ranges are looked up.
	granuleMs = 10_000

	// MaxKeywordLen is the longest attribute value indexed.
	MaxKeywordLen = 256

	// internalApplied is the Bleve internal key holding the record log offset up to
	// which this shard has indexed (8 bytes, big endian).
	internalApplied = "logindex.applied"

	// internalFormat is the Bleve internal key holding the shard's format version
	// (one byte; absent means 1). See FORMAT.md.
	internalFormat = "logindex.format"
	// shardFormat is the format of the shards this build reads and creates:
	// version 4 indexes blocks of records (blockbuild.go) with their body
	// tokens that have a digit as bucket terms and a stored filter (bloom.go);
	// version 3 indexed those tokens as themselves, and versions 1 and 2
	// indexed each record. A shard of an older version is rebuilt from its
	// record log when its partition is opened.
	shardFormat = 4
)

// timeTerm encodes a Unix millisecond time as the t field's term.
func timeTerm(ms int64) string {
	if ms < 0 {
		ms = 0
	}
	return fmt.Sprintf("%012x", uint64(ms)&0xffffffffffff)
}

// granuleTerm encodes a granule number as the prefix of the tg field's terms.
func granuleTerm(g int64) string {
	if g < 0 {
		g = 0
	}
	return fmt.Sprintf("%010x", uint64(g)&0xffffffffff)
}

func levelTerm(n int64) string {
	if n < 0 {
		n = 0
	}
	return fmt.Sprintf("%010x", uint64(n)&0xffffffffff)
}

func sevNumTerm(n int32) string { return fmt.Sprintf("%02d", n) }

// docID is a record's Bleve document id: partition day (2 bytes), frame offset
// (6 bytes) and index in the frame (2 bytes), big endian, so ids sort in arrival
// order. The public id is its hex form.
type docID [10]byte

func makeDocID(day int, off int64, i int) docID {
	var id docID
	binary.BigEndian.PutUint16(id[0:], uint16(day))
	binary.BigEndian.PutUint16(id[2:], uint16(off>>32))
	binary.BigEndian.PutUint32(id[4:], uint32(off))
	binary.BigEndian.PutUint16(id[8:], uint16(i))
	return id
}

func (id docID) day() int { return int(binary.BigEndian.Uint16(id[0:])) }
func (id docID) off() int64 {
	return int64(binary.BigEndian.Uint16(id[2:]))<<32 | int64(binary.BigEndian.Uint32(id[4:]))
}
func (id docID) idx() int       { return int(binary.BigEndian.Uint16(id[8:])) }
func (id docID) String() string { return hex.EncodeToString(id[:]) }

func parseDocID(s string) (docID, error) {
	var id docID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("cannot parse record id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("cannot parse record id %q: %w", s, err)
	}
	return id, nil
}

func docIDFromBytes(s string) (docID, bool) {
	var id docID
	if len(s) != len(id) {
		return id, false
	}
	copy(id[:], s)
	return id, true
}

// attrNumber returns the attribute's value as a number when it is one: an Int or
// Double value, or a string that parses as a finite number.
func attrNumber(a Attr) (float64, bool) {
	switch a.Type {
	case "Int", "Double", "Str":
	default:
		return 0, false
	}
	if a.Value == "" || len(a.Value) > 32 {
		return 0, false
	}
	c := a.Value[0]
	if !(c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// indexMapping is the mapping every shard is created with. Documents are built by
// a blockBuilder and searches read terms directly, so the mapping only has to
// keep Bleve from indexing anything dynamically.
func indexMapping() mapping.IndexMapping {
	im := bleve.NewIndexMapping()
	im.DefaultMapping.Dynamic = false
	im.DefaultMapping.Enabled = true
	im.IndexDynamic = false
	im.StoreDynamic = false
	im.DocValuesDynamic = false
	im.DefaultAnalyzer = "keyword"
	return im
}

// shardConfig is the scorch configuration of every shard.
//
//   - Batches do not wait for Bleve's own persistence: the record log is the
//     write-ahead log.
//   - The persister naps persisterNap between rounds, so that it writes one
//     segment file from a few seconds of batches instead of one per batch:
//     Bleve's default writes a file about every 100 ms, and merging those files
//     again took about a tenth of the CPU of ingest.
//   - No merge makes a segment of more than maxSegmentDocs documents (Bleve's
//     default: 5 million). A merge holds Bleve's merger for its whole length,
//     and builds each field's term dictionary in memory: with one document per
//     record, one of 5 million took seven minutes beside a full-speed replay,
//     while new segment files piled up unmerged. Blocks hold tens to hundreds
//     of records, so the cap is in blocks: 50,000 blocks made segments of
//     about 200 MB in a Loghub replay, where 1 million let a day's segments
//     grow without bound and peak memory with them.
func shardConfig() map[string]interface{} {
	return map[string]interface{}{
		"unsafe_batch": true,
		"scorchPersisterOptions": map[string]interface{}{
			"PersisterNapTimeMSec": persisterNap.Milliseconds(),
		},
		"scorchMergePlanOptions": map[string]interface{}{
			"MaxSegmentSize": maxSegmentDocs,
		},
	}
}

const (
	persisterNap   = 2 * time.Second
	maxSegmentDocs = 50_000
)

func createShard(path string) error {
	// Created with safe batches so that the mapping Bleve writes at creation is
	// persisted before Close.
	ix, err := bleve.NewUsing(path, indexMapping(), scorch.Name, scorch.Name, nil)
	if err != nil {
		return fmt.Errorf("cannot create index %q: %w", path, err)
	}
	if err := ix.SetInternal([]byte(internalFormat), []byte{shardFormat}); err != nil {
		ix.Close()
		return fmt.Errorf("cannot write format of new index %q: %w", path, err)
	}
	if err := ix.Close(); err != nil {
		return fmt.Errorf("cannot close new index %q: %w", path, err)
	}
	return nil
}

// openShard opens the shard at path. A shard of an older format is replaced by
// an empty one (rebuilt reports it), whose applied offset is 0: the partition's
// replay then indexes the whole record log into it.
func openShard(path string) (ix bleve.Index, applied int64, rebuilt bool, err error) {
	ix, err = bleve.OpenUsing(path, shardConfig())
	if err != nil {
		return nil, 0, false, fmt.Errorf("cannot open index %q: %w", path, err)
	}
	f, err := ix.GetInternal([]byte(internalFormat))
	if err != nil {
		ix.Close()
		return nil, 0, false, fmt.Errorf("cannot read format of %q: %w", path, err)
	}
	version := byte(1) // shards of the first format have no key
	if len(f) == 1 {
		version = f[0]
	}
	if version > shardFormat {
		ix.Close()
		return nil, 0, false, fmt.Errorf("cannot open index %q: shard format version %d, this build reads up to %d", path, version, shardFormat)
	}
	if version < shardFormat {
		if err := ix.Close(); err != nil {
			return nil, 0, false, fmt.Errorf("cannot close index %q to rebuild it: %w", path, err)
		}
		tmp := path + oldShardSuffix
		if err := os.RemoveAll(tmp); err != nil {
			return nil, 0, false, err
		}
		// Renamed first: a crash from here on leaves the old shard under its
		// new name, and openPartition makes the shard again.
		if err := os.Rename(path, tmp); err != nil {
			return nil, 0, false, fmt.Errorf("cannot rebuild index %q: %w", path, err)
		}
		if err := createShard(path); err != nil {
			return nil, 0, false, err
		}
		if err := os.RemoveAll(tmp); err != nil {
			return nil, 0, false, fmt.Errorf("cannot remove the old index %q: %w", tmp, err)
		}
		ix, applied, _, err = openShard(path)
		return ix, applied, true, err
	}
	v, err := ix.GetInternal([]byte(internalApplied))
	if err != nil {
		ix.Close()
		return nil, 0, false, fmt.Errorf("cannot read applied offset of %q: %w", path, err)
	}
	if len(v) == 8 {
		applied = int64(binary.BigEndian.Uint64(v))
	}
	return ix, applied, false, nil
}

func init() {
	// zap sizes a new segment's buffer for the batch's documents plus 100 at
	// the previous segment's bytes per document (NewSegmentBufferNumResultsBump),
	// and the segment keeps the buffer until it is persisted. A batch holds
	// tens of blocks, each the size of many records' documents, so the bump
	// made buffers several times what they held: 250 MB of a 2 M record
	// replay's heap.
	zapx.NewSegmentBufferNumResultsBump = 0
}

// oldShardSuffix names a shard directory being replaced by one of the current
// format.
const oldShardSuffix = ".old"

func appliedValue(off int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(off))
}

// dayOf is the partition day (days since the Unix epoch, UTC) of t.
func dayOf(t time.Time) int { return int(floorDiv(t.UnixMilli(), 86_400_000)) }

func dayStart(day int) time.Time { return time.UnixMilli(int64(day) * 86_400_000).UTC() }

func dayDirName(day int) string { return dayStart(day).Format("20060102") }
