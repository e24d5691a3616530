// Package incident turns firing alerts and strong anomalies into incidents: one
// per real problem instead of one per signal.
//
// # Basics
//
// A Manager receives alerts from the rule manager (ObserveAlert, called with what
// Prometheus would send to Alertmanager) and polls the live anomaly detector on
// its own interval. Each signal has a group: its service (the first of the labels
// service, service_name, job, exported_job), or, without one, its alert name or
// metric name. A signal joins the open or acknowledged incident of its group; a
// group whose last incident resolved by itself less than JoinWindow ago reopens
// it; otherwise the signal opens a new incident. An incident resolves by itself
// once every member has been inactive for QuietFor; a person may acknowledge it,
// add a note or resolve it (members still active then stay dismissed until they
// end and fire again).
//
// Each incident keeps its members (the alerts with their expressions, the
// anomalous series with their bands), a timeline of what joined it and when, and
// its state. Moved ranks the other series of the incident's service by how much
// they changed around the time it opened: the evidence a person looks at next.
//
// # State
//
// Incidents live in one bbolt file, Dir/incidents.db, one JSON value per incident
// under its number. Changes of state (opened, joined, resolved, acknowledged) are
// committed before the call that made them returns; the last-seen times of
// members are committed on the next tick. A restart keeps every incident, its
// timeline and its dismissed members.
//
// # Caveats
//
// Memory and disk are bounded: at most MaxMembers members and MaxEvents timeline
// events per incident (later ones are counted, not kept), and resolved incidents
// older than Retention are deleted.
package incident
