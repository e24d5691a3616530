// Package rules owns Outpost's Prometheus alerting and recording rules: loading
// rule files unchanged (a directory given by the operator, and groups created
// through the API, kept as rule files in the data directory's detect/rules
// folder), validating them, and evaluating them on their interval against the
// TSDB with Prometheus' own rule manager and PromQL engine. It owns no storage
// format beyond the rule files themselves; rule results, ALERTS and
// ALERTS_FOR_STATE are written to the TSDB as ordinary series.
//
// # Basics
//
// New loads every *.yml and *.yaml file of Options.Dir and Options.UserDir and
// returns a Manager that has not started evaluating. Start begins evaluation
// and a poller that re-reads the files when their modification times, sizes or
// set change; Reload does the same at once (on SIGHUP). Close stops both.
// Alerts follow Prometheus' semantics exactly (pending → firing → inactive, for,
// keep_firing_for, templated labels and annotations), because Prometheus' rules
// package evaluates them. Active alerts are handed to Options.Notify, the hook
// incidents and notifications hang on.
//
// # Caveats
//
// A file that does not parse or validate (YAML error, bad PromQL, repeated
// group name, bad template) is refused: its error, with file, line and reason,
// is logged and kept for LoadErrors, and the last valid version of that file
// keeps running (a file never valid before contributes nothing). Files are
// independent; a bad file never stops the others from reloading.
//
// EvalAt and RestoreAt evaluate with a given clock, for tests and back-tests;
// they must not be mixed with a started Manager.
package rules
