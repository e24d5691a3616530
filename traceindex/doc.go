// Package traceindex owns Outpost's span storage: spans in time-partitioned bbolt
// files, lookup by trace id, search by service, operation, duration, status, time
// and attributes, and the service dependency graph. It does not own HTTP: the
// Jaeger and OTLP JSON endpoints are thin layers over Trace, Services, Operations,
// Search, Summary and Dependencies.
//
// # Basics
//
// Open opens a directory of partition files, one per PartitionDuration (a day by
// default), named traces-YYYYMMDDTHHMMSSZ.bolt after their start. WriteTraces
// validates a decoded OTLP request, rejects bad spans (reported through the OTLP
// partial-success return) and commits the rest, per partition, in one bbolt
// transaction: when it returns, the spans are on disk. A span goes to the
// partition holding its start time. The spans one request brings into one
// partition become a block: a zstd-compressed OTLP protobuf message keyed by a
// sequence number, with index entries that name the block and a trace's ordinal in
// it. Every trace piece is also keyed by trace id then sequence, so a trace is one
// prefix scan per partition, however its spans arrived. FORMAT.md documents the
// buckets and keys byte by byte.
//
// Search reads postings and trace pieces, newest first, and stops once the
// newest Limit traces are known; it decodes spans only to check tag filters and
// to count spans of traces stored in several pieces. Trace decompresses the
// blocks holding the trace but unmarshals only that trace's spans; Dependencies
// reads only ids and service names from the protobuf wire format.
//
// Results are slices bounded by Query.Limit (at most MaxSearchLimit),
// Options.MaxSearchCandidates and Options.MaxDependencySpans.
//
// Concurrent writers to one partition share transactions (group commit): each
// request is still all-or-nothing and acknowledged only after its transaction
// committed, but one fsync serves several requests.
//
// # Caveats
//
// A request whose spans fall into several partitions is committed in one
// transaction per partition. If a later one fails, the keys the earlier ones
// wrote are deleted again before WriteTraces returns the error, so an error
// still means no span of the request is stored; only the names it introduced
// (a service, an operation) stay listed. Should that deletion fail as well, the
// error says so; the client retries, and spans stored twice are returned once
// (reads deduplicate by span id).
//
// bbolt reads the files through memory maps, and every page it reads counts
// as resident memory of the process (with the kernel's fault-around, so do the
// cached pages of the 64 KiB around it). On Linux the pages are given back
// (MADV_DONTNEED) whenever commits have read about a thousand B+tree nodes,
// after Dependencies and Check, and by any read or write a second or more
// after the last time, so the mapped share of resident memory stays under
// about 64 MiB during ingest, plus what recent queries read, however large a
// partition grows. The pages stay in the page cache. Elsewhere the kernel
// reclaims them under memory pressure. bbolt's free-page list also remembers,
// for every page it hands out again, the transaction that took it, until the
// page is freed; in these append-mostly files most such pages stay, so that
// heap grows by about 4 MB per GB written since Open (measured with the
// hashmap free list), and only reopening the file clears it.
//
// bbolt files never shrink, so retention deletes whole partitions (DropBefore, or
// Options.Retention); disk space is given back only then.
//
// Dependencies decompresses every block in its window (reading only ids and
// service names): it is meant for windows of hours, and it is bounded by
// Options.MaxDependencySpans. Parent and child must both start in the window.
package traceindex
