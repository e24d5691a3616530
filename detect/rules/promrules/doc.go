// Package promrules is Prometheus' rules package (github.com/prometheus/prometheus
// v0.316.0, rules/), copied without change except that SendAlerts and Sender,
// which tie it to Prometheus' notifier and so to Alertmanager's API client
// modules, are left out. It gives Outpost Prometheus' exact alerting and
// recording semantics. Licensed under the Apache License 2.0, as its files say;
// see NOTICE.
package promrules
