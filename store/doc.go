// Package store owns Outpost's data directory and the one write path into it.
//
// # Basics
//
// Open creates or opens a data directory, takes an exclusive lock on it, checks its
// format version, opens the metrics, logs and traces backends in their subdirectories
// and returns a Store. Every decoded OTLP batch goes through Store.ConsumeMetrics,
// ConsumeLogs or ConsumeTraces: the batch is handed to its backend (which makes it
// durable), the accepted items are counted per signal and per service, and the batch
// is shown to the detector taps. Close flushes and closes everything in reverse
// order of opening.
//
// # The data directory
//
//	FORMAT            format version: "outpost-data <N>\n" (written atomically)
//	LOCK              flock'ed while a process owns the directory; holds its pid,
//	                  host name and start time, so a second process can name it
//	UNCLEAN_SHUTDOWN  present while a process runs; found at open = the last run
//	                  did not close cleanly (crash, kill -9, power loss)
//	meta.db           bbolt: ingest counters per signal and per service
//	tsdb/             metrics (package tsdb)
//	logs/             log records (package logindex)
//	traces/           spans (package traceindex)
//	detect/           detector state: rules/ (groups made in the UI),
//	                  incidents/incidents.db (bbolt), notify/*.json (silences,
//	                  notification log, receivers made in the UI, deliveries)
//	auth.json         logins: the session key and password hashes (mode 0600)
//	initial-admin-password  the admin password made at the first start (0600);
//	                  removed once --admin-password sets one
//	*.tmp             leftovers of an interrupted atomic write; removed at open
//
// Backup copies all of it but LOCK, UNCLEAN_SHUTDOWN and *.tmp as of one moment
// while writes go on: each backend and registered owner copies itself
// (Snapshotter), the other files are replaced atomically by their writers and
// copied as they are. Restore makes a new directory from such a copy.
//
// # Caveats
//
// The directory must be on a local file system: the lock is an advisory flock, and
// durability relies on fsync of files and of their parent directories.
package store
