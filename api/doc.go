// Package api owns the HTTP APIs: Outpost's own JSON APIs (status, admin), the
// health endpoints, the /metrics self-monitoring endpoint, and — as the stores
// land — the query APIs people already use (Prometheus HTTP API, Jaeger query API).
//
// It reads through the store and the backends' read side; it owns no pages and no
// storage formats.
package api
