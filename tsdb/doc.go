// Package tsdb owns Outpost's metric storage: series and their labels, samples, the
// inverted label index, the write-ahead log, the in-memory head, the immutable
// compressed time partitions, retention, and the Prometheus storage adapter that the
// PromQL engine reads through. It knows nothing about HTTP.
//
// # Basics
//
// Open a DB on a directory with Open; write decoded OTLP batches with WriteMetrics
// (which maps them onto Prometheus series, see otlp.go and README.md), or a
// request still in its protobuf form with WriteMetricsWire
// (the same mapping, without decoding it first: see otlpwire.go); read with
// Querier, which returns a github.com/prometheus/prometheus/storage.Querier that
// promql.NewEngine can evaluate queries over. Flush writes everything in memory into
// compressed partitions at once. SetObserver lets a detector see every accepted
// float sample, with its labels, once its batch is durable.
//
// Besides the Prometheus appenders (Appender, AppenderV2), AppendRefs is a bulk
// write path for a caller that writes many float samples of series it already
// knows, e.g. a detector writing scores back: the first sample of a series is
// given by its labels and AppendRefs returns the series' SeriesRef in it; later
// samples give only the ref and skip the label copy, hashing and series lookup that
// the appenders pay per sample. A call is one batch exactly like an appender's
// Commit: one lock hold, the same retention and out-of-order checks, the usual WAL
// records (no record type of its own), durable on return, seen by the observer.
// Refs are valid while the DB is open, not across restarts. AppendDerived is the
// same for samples computed from stored ones (a detector's scores): the observer
// does not see them, and they count apart from HeadMaxSamples.
//
// A write is acknowledged only after its WAL record is fsync'd. Concurrent writers
// share one fsync (group commit): each writer appends its record to the log buffer,
// and whichever writer reaches the sync first writes and fsyncs every record buffered
// so far, releasing all writers whose records it covered.
//
// Samples live in the head until a flush writes them into a partition file covering
// one aligned time range (2 h by default). The head keeps each series' in-order
// float samples compressed in Gorilla-style chunks (a few bytes a sample, no
// pointers for the garbage collector), and histogram, out-of-order and rewritten
// samples in a small sorted overflow list (see head.go), so the head's memory
// follows the active series and the head's time span, not the data stored. The
// series table and its label index hold every series with samples in the head
// or in a partition (about 0.3 KB each with a handful of short labels, plus 28
// bytes for each partition holding it, see partRefs; a label value only one
// series has keeps its id without a bitmap, see postingList); a series leaves memory
// once retention or quarantine deletes its last sample, so series that come and
// go (pods, containers) do not add up over the life of the process. Partitions
// of one day are later merged into one daily partition. A partition groups the
// chunks of neighbouring series into shared zstd frames. A series' chunk longer than two
// hours is cut into float blocks of about two hours that carry their time range,
// so a query over an hour of a daily partition decodes one or two blocks of each
// series rather than its whole day. Retention deletes whole partition
// files. Queries merge the partitions, the head being flushed and the head; when
// two sources hold a sample for the same series and timestamp, the newer one
// wins.
//
// Every float64 is returned bit for bit as written: the VictoriaMetrics decimal
// encoding is used only when decoding it gives back the exact same bits, otherwise a
// block falls back to a lossless XOR encoding (see FORMAT.md). Native histograms are
// stored in Prometheus' float histogram chunk encoding with start timestamps.
//
// # Caveats
//
// Importing github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding registers flags on
// flag.CommandLine and starts three ticker goroutines; programs embedding
// this package should parse their own flag.FlagSet, and goleak checks must ignore
// those goroutines (see LibraryGoroutines).
//
// Metric metadata (type, help, unit) is kept in memory and in a metadata file written
// on Flush and Close; a crash loses metadata learned since the last flush, never
// samples.
package tsdb

// LibraryGoroutines names the top functions of the goroutines that importing
// VictoriaMetrics' lib/encoding starts for the life of the process; leak checks
// (goleak.IgnoreTopFunction) should ignore them. The DB's own goroutine stops in
// Close.
var LibraryGoroutines = []string{
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/fasttime.init.0.func1",
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/timeutil.init.0.func1",
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/bytesutil.newInternStringMap.func1",
}
