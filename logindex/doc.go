// Package logindex owns Outpost's log records: it converts OTLP log records into a
// compact record model, keeps them durably in per-day partitions, indexes them in
// Bleve (scorch) for full-text and field search, and answers searches, counts over
// time (histograms), facets and live tails. It knows nothing about HTTP.
//
// # Basics
//
// An Index lives in one directory (the data directory's logs/ subdirectory). Records
// are grouped into partitions, one per UTC day of the record's time. Each partition
// holds a record log — the compressed, checksummed, append-only file that is both the
// write-ahead log and the record store — and a few Bleve indexes (shards) that index
// blocks of records (up to 256 records of one service and level from one frame:
// one write, or the small writes that arrived together) but store none of their
// records' fields. Each term of a block counts the block's records that have it.
// A body word with a digit (an id, a count), nearly each unique to its record,
// is indexed as one of 4,096 bucket terms instead, and each block stores a Bloom
// filter of those words (bloom.go); a chunk with a digit (an address) is not
// indexed, since searches look up words. A search reads the shards of
// the partitions that overlap its time range, counts what the counts decide, and
// reads the other candidate blocks' records from the record log to match them one
// by one (for a word with a digit: its bucket's blocks that the filter does not
// rule out); the page's records come from the newest blocks. FORMAT.md documents
// the files byte by byte.
//
// WriteLogs returns once the records are fsync'd in the record log. A background
// indexer per partition feeds them to Bleve in large batches, so records become
// searchable shortly after they are acknowledged (Flush waits for that). After a
// crash, Open replays the part of each record log that Bleve had not yet persisted.
//
// # Serving it over HTTP
//
// The API maps one to one onto the Logs endpoints:
//
//   - GET /api/v1/logs: ParseTime for start and end, then Search; a
//     *SearchResult encodes as {"total", "records", "next_cursor", "took_ms"}.
//   - GET /api/v1/logs/histogram: Histogram; GET /api/v1/logs/facets: Facets.
//   - GET /api/v1/logs/tail: Tail, then Next(r.Context()) / Record in a loop,
//     one server-sent event per record, until Next returns false.
//
// A bad query or cursor is a *QueryError (errors.As): answer 400 with its
// message. Every search is bounded by Options.SearchTimeout and
// Options.MaxLimit; WriteLogs's *BackpressureError carries RetryAfter.
//
// # Caveats
//
//   - Search is near-real-time: a record is searchable after its batch is indexed,
//     usually within tens of milliseconds of the acknowledgement.
//   - Time ranges have millisecond resolution.
//   - A body word with a digit is never counted from the index alone: the
//     blocks its bucket and filter leave are read. A body wildcard or regular
//     expression reads every block its other parts leave, since tokens with a
//     digit are not in the body's dictionary.
//   - A search's cost grows with the blocks it looks at: those of its time
//     range, or those of the rarest term every match has when that is fewer.
//     Totals stay exact however many blocks must be read for them; facets read
//     at most Options.FacetScanRecords records and estimate the rest
//     (Facets.Estimated).
//   - Attribute values longer than MaxKeywordLen bytes are kept in the record but not
//     indexed, so they cannot be searched.
//   - Retention drops whole days: a partition goes when its last day ends before the
//     retention horizon.
//   - Memory: up to Options.MaxPendingRecords acknowledged records wait in memory
//     for indexing (about 1 KB each), plus Bleve's in-memory segments, plus the
//     fields of the blocks being indexed at once (blockbuild.go, kept in a pool
//     between batches), plus, once counted or charted, a byte per block and the
//     day, hour and 5-minute terms' counts per Bleve segment (termsums.go). Bleve's
//     persisted segments are read through memory maps; their pages are given back
//     every two seconds (release.go), so they do not add up in resident memory as
//     the day's index grows. A smaller MaxPendingRecords saves memory but turns
//     bursts into back-pressure sooner: at 30,000 a replay at full speed spent
//     about 70% more CPU on requests that were refused and sent again. A write
//     that finds the bound reached waits up to Options.PendingWait for room
//     before it is refused: a replay of 2 million records at full speed with
//     two senders then had no request refused (928 retries and one request
//     given up after five retries without the wait), at the same CPU per record.
//   - Bleve's in-memory segments: scorch's persister stops while its merger lags
//     behind (1,000 segment files or more), and in-memory segments would then
//     pile up at the rate of ingest (2.7 GB during one seven-minute merge of 5
//     million documents). So indexing waits while a partition's shards hold
//     more than Options.MaxUnpersistedRecords (200,000) in memory segments
//     (Stats.PersistWait, and a log line for waits of 5 s or more), the
//     persister naps 2 s between rounds (one file from a few seconds of batches
//     instead of one per batch), and no merge makes a segment of more than
//     50,000 blocks. An hour-long replay (106 million records, 11 GB) kept its
//     VmRSS between 250 and 470 MB and peaked at 586 MB VmHWM.
package logindex
