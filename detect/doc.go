// Package detect owns Outpost's detectors: the streaming checks that watch metrics,
// logs and traces as they arrive (anomalies, log patterns, latency and error
// outliers, GenAI token and cost, model drift, PII leaks), the incidents they open,
// alert rules and notifications. It sees every stored batch through the store's
// tap and keeps its state in the data directory's detect/ folder; it owns no
// storage formats.
//
// No detector is implemented yet: the package exists so that the layout and the
// import rules hold from the start.
package detect
