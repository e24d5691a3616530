package tsdb

import (
	"math"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	var opts []goleak.Option
	for _, f := range LibraryGoroutines {
		opts = append(opts, goleak.IgnoreTopFunction(f))
	}
	goleak.VerifyTestMain(m, opts...)
}

// openTest opens a fresh DB in t.TempDir() that is closed at the end of the test.
func openTest(t testing.TB, opts *Options) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	if opts == nil {
		opts = &Options{}
	}
	if opts.MaintenanceInterval == 0 {
		opts.MaintenanceInterval = -1
	}
	if opts.Retention == 0 {
		opts.Retention = -1
	}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// readAll returns every sample of every series, keyed by the series' labels.
func readAll(t testing.TB, db *DB) map[string][]sample {
	t.Helper()
	out, err := db.selectSeries(t.Context(), math.MinInt64, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]sample{}
	for _, s := range out {
		m[s.lset.String()] = s.samples
	}
	return m
}
