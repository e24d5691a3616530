package tsdb

import (
	"log/slog"
	"time"
)

// Options tunes a DB. A nil *Options, and every zero field, means the default
// stated on the field.
type Options struct {
	// Logger receives quarantine, repair and flush messages. Zero: slog.Default().
	Logger *slog.Logger

	// Retention is how long samples are kept; partitions whose newest sample is
	// older than now-Retention are deleted whole. Zero: 15 days. Negative: forever.
	Retention time.Duration

	// OutOfOrderWindow is how far behind the newest sample of its series a sample
	// may be and still be accepted; older ones are rejected and counted. Zero: 10
	// minutes. Negative: no out-of-order samples at all (equal timestamps still
	// overwrite).
	OutOfOrderWindow time.Duration

	// PartitionDuration is the time range a flushed partition covers, aligned to
	// multiples of it since the Unix epoch. Zero: 2 hours. Partitions of one UTC
	// day are merged into one daily partition once the day is over.
	PartitionDuration time.Duration

	// HeadMaxAge flushes the head once it holds samples written this long ago.
	// Zero: 2 hours. Negative: never flush on age.
	HeadMaxAge time.Duration

	// HeadMaxSamples flushes the head once it holds this many samples besides
	// derived ones (written with AppendDerived), or twice this many in all. Zero: 8
	// million (about 40 MB at the 4 to 6 bytes a typical sample takes in the
	// head; histogram and out-of-order samples take more). Negative: never flush
	// on size.
	HeadMaxSamples int

	// MaintenanceInterval is how often the background goroutine checks the flush,
	// merge and retention conditions. Zero: 30 seconds. Negative: no background
	// goroutine (Flush and Compact must then be called by the owner).
	MaintenanceInterval time.Duration

	// PromoteResourceAttributes lists OTLP resource attributes copied as labels onto
	// every series of their resource (besides job and instance). Zero: none.
	PromoteResourceAttributes []string

	// Now is the clock used for retention and head age. Zero: time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Retention == 0 {
		r.Retention = 15 * 24 * time.Hour
	}
	if r.OutOfOrderWindow == 0 {
		r.OutOfOrderWindow = 10 * time.Minute
	}
	if r.PartitionDuration <= 0 {
		r.PartitionDuration = 2 * time.Hour
	}
	if r.HeadMaxAge == 0 {
		r.HeadMaxAge = 2 * time.Hour
	}
	if r.HeadMaxSamples == 0 {
		r.HeadMaxSamples = 8 << 20
	}
	if r.MaintenanceInterval == 0 {
		r.MaintenanceInterval = 30 * time.Second
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}
