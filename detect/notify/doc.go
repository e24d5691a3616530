// Package notify owns Outpost's built-in Alertmanager: it receives alerts
// (from the Prometheus rule manager of detect/rules, from incident and anomaly
// detection, and from external clients through the Alertmanager API), routes
// them through a routing tree read from a subset of alertmanager.yml plus the
// receivers created in the UI, groups them, applies silences, and notifies
// webhooks, Slack and e-mail, with retries and a delivery log. Its state —
// silences, the notification log, the UI receivers and the delivery log — is
// kept in JSON files of one directory (README.md describes them).
//
// # Basics
//
// New loads the state and the configuration file and starts the scheduler;
// Send hands it alerts and never waits for a receiver; Close stops it. The
// semantics are Alertmanager's: an alert joins one aggregation group per route
// it matches (depth-first, left to right, continue); a new group waits
// group_wait, then is flushed every group_interval; a flush notifies an
// integration only when the group gained firing alerts, lost them all, gained
// resolved alerts (with send_resolved), or repeat_interval passed since the
// last notification (the notification log, Alertmanager's DedupStage). A
// silenced alert is left out of notifications. A failed delivery (network
// error, 5xx, 429) is retried with exponential backoff until the next flush
// of its group supersedes it; every attempt is logged in the delivery log.
//
// Outpost adds action webhooks: action_webhook_configs on a route, or the
// annotation action_webhook on an alert, are POSTed the webhook payload once
// when a group opens (starts firing) and once when all of its alerts are
// resolved, for automation such as a rollback.
//
// # Caveats
//
// Active alerts are not persisted: their senders resend them (the rule
// manager does every minute). Memory is bounded by Options.MaxAlerts
// (100,000) alerts and Options.MaxGroups (10,000) aggregation groups; beyond
// them alerts are dropped and counted. Inhibition rules, time intervals,
// custom template files, HA clustering and integrations other than webhook,
// Slack and e-mail are not implemented; a configuration that uses them is
// refused with the line that does. The receivers of the UI are evaluated
// beside the file's routing tree, as if they were first-level routes with
// continue: true that never take alerts away from the root.
//
// Options.Now is read when the scheduler wakes, which is at least once a
// second; all timers (group_wait, group_interval, repeat_interval, retries,
// silences) follow that clock.
package notify
