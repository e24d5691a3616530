package tsdb

import (
	"testing"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
)

// TestPromQLBuiltin runs Prometheus' own PromQL test files with this package's DB
// as the storage.
func TestPromQLBuiltin(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	promqltest.RunBuiltinTestsWithStorage(t, engine, func(tb testing.TB) storage.Storage {
		db, err := Open(tb.TempDir(), &Options{Retention: -1, OutOfOrderWindow: 1 << 62, MaintenanceInterval: -1})
		if err != nil {
			tb.Fatal(err)
		}
		return db
	})
}
