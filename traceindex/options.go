package traceindex

import (
	"log/slog"
	"time"
)

// DefaultIndexedAttributes are the attribute keys indexed when
// Options.IndexedAttributes is nil. A key is looked up on the span first, then on
// its resource.
var DefaultIndexedAttributes = []string{
	"http.route",
	"http.response.status_code",
	"rpc.method",
	"db.system",
	"gen_ai.request.model",
	"k8s.pod.name",
	"host.name",
}

// Options configure an Index. A nil *Options means all defaults; every zero field
// means the default stated beside it.
type Options struct {
	// PartitionDuration is the time span of one partition file; spans go to the
	// partition holding their start time. Zero means 24h. Partitions are aligned to
	// multiples of the duration since the Unix epoch (so days start at 00:00 UTC).
	// Changing it later is safe: existing files keep their own ranges.
	PartitionDuration time.Duration

	// Retention drops partitions whose end is older than now minus Retention, once
	// at Open and then every RetentionInterval. Zero means keep everything (the
	// owner can call DropBefore instead).
	Retention time.Duration

	// RetentionInterval is how often retention runs when Retention is set. Zero
	// means 1 minute.
	RetentionInterval time.Duration

	// IndexedAttributes are the attribute keys with an equality index. Nil means
	// DefaultIndexedAttributes; an empty non-nil slice indexes none. Searches on
	// other keys still work, by reading candidate traces.
	IndexedAttributes []string

	// MaxPast rejects spans starting longer than this before now. Zero means 30
	// days.
	MaxPast time.Duration

	// MaxFuture rejects spans starting longer than this after now. Zero means 1h.
	MaxFuture time.Duration

	// MaxAttributes rejects spans (or whole resources) with more attributes than
	// this, counting a span's own, its events' and its links' attributes. Zero
	// means 1000.
	MaxAttributes int

	// MaxAttributeBytes rejects spans with an attribute key or string value longer
	// than this many bytes. Zero means 64 KiB.
	MaxAttributeBytes int

	// MaxSpanBytes rejects spans whose names, attribute keys and values, events and
	// links add up to more than this many bytes. Zero means 1 MiB.
	MaxSpanBytes int

	// MaxBlockSpans is the most spans stored in one block; a larger request is
	// split into several blocks (in the same transaction). Zero means 1024.
	MaxBlockSpans int

	// MaxSearchCandidates bounds the traces one Search collects from the indexes
	// before ranking them; the newest are kept. Zero means 100,000.
	MaxSearchCandidates int

	// MaxDependencySpans bounds the spans one Dependencies call reads; beyond it
	// the result is marked Truncated. Zero means 1,000,000 (about 80 MB while
	// the call runs).
	MaxDependencySpans int

	// NoSync skips fsync on commit. Only for tests and benchmarks: an acknowledged
	// write may then be lost on power failure. Zero (false) means fsync.
	NoSync bool

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Logger receives partition lifecycle events. Nil means slog.Default().
	Logger *slog.Logger

	// releaseNodes is how many B+tree nodes commits may read from a partition
	// file's mapping before its pages are given back. Zero means
	// defaultReleaseNodes; tests set less.
	releaseNodes int
}

const maxBlockRaw = 64 << 20 // a block payload larger than this is refused

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.PartitionDuration <= 0 {
		r.PartitionDuration = 24 * time.Hour
	}
	if r.RetentionInterval <= 0 {
		r.RetentionInterval = time.Minute
	}
	if r.IndexedAttributes == nil {
		r.IndexedAttributes = DefaultIndexedAttributes
	}
	if r.MaxPast <= 0 {
		r.MaxPast = 30 * 24 * time.Hour
	}
	if r.MaxFuture <= 0 {
		r.MaxFuture = time.Hour
	}
	if r.MaxAttributes <= 0 {
		r.MaxAttributes = 1000
	}
	if r.MaxAttributeBytes <= 0 {
		r.MaxAttributeBytes = 64 << 10
	}
	if r.MaxSpanBytes <= 0 {
		r.MaxSpanBytes = 1 << 20
	}
	if r.MaxBlockSpans <= 0 {
		r.MaxBlockSpans = 1024
	}
	if r.MaxSearchCandidates <= 0 {
		r.MaxSearchCandidates = 100_000
	}
	if r.MaxDependencySpans <= 0 {
		r.MaxDependencySpans = 1_000_000
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.releaseNodes <= 0 {
		r.releaseNodes = defaultReleaseNodes
	}
	return r
}
