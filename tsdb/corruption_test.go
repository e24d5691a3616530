package tsdb

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func writeBatches(t *testing.T, db *DB, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if rej, _, err := db.appendBatch(crashBatch(i)); err != nil || rej != 0 {
			t.Fatalf("append %d: %d %v", i, rej, err)
		}
	}
}

func onlyFile(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("%s: %d files, want 1", pattern, len(m))
	}
	return m[0]
}

// TestCorruption damages files of a closed DB in named ways and checks what
// reopening and reading make of it.
func TestCorruption(t *testing.T) {
	s0 := labels.FromStrings("__name__", "crash", "s", "0").String()
	cases := []struct {
		name string
		// setup writes data and returns how many samples of series s0 should survive.
		damage       func(t *testing.T, dir string)
		wantSamples  int
		wantWALCorr  int64
		wantQuar     int64
		wantReadErr  bool
		flushFirst   bool
		batchesAfter int
	}{
		{
			name: "torn WAL record",
			damage: func(t *testing.T, dir string) {
				p := onlyFile(t, filepath.Join(dir, "wal", "*"))
				st, _ := os.Stat(p)
				if err := os.Truncate(p, st.Size()-7); err != nil {
					t.Fatal(err)
				}
			},
			wantSamples: 9 * crashPerBatch, // the last batch's samples record is torn
			wantWALCorr: 1,
		},
		{
			name: "bad WAL checksum",
			damage: func(t *testing.T, dir string) {
				p := onlyFile(t, filepath.Join(dir, "wal", "*"))
				b, _ := os.ReadFile(p)
				b[len(b)-20] ^= 0xff // inside the last batch's samples record
				os.WriteFile(p, b, 0o644)
			},
			wantSamples: 9 * crashPerBatch,
			wantWALCorr: 1,
		},
		{
			name:       "truncated partition file",
			flushFirst: true,
			damage: func(t *testing.T, dir string) {
				p := onlyFile(t, filepath.Join(dir, "partitions", "*.part"))
				st, _ := os.Stat(p)
				os.Truncate(p, st.Size()/2)
			},
			wantSamples:  0, // all of it was in the partition
			wantQuar:     1,
			batchesAfter: 0,
		},
		{
			name:       "bad chunk checksum",
			flushFirst: true,
			damage: func(t *testing.T, dir string) {
				p := onlyFile(t, filepath.Join(dir, "partitions", "*.part"))
				b, _ := os.ReadFile(p)
				b[partHeaderSize+3] ^= 0x55 // inside the first chunk record
				os.WriteFile(p, b, 0o644)
			},
			wantReadErr: true,
			wantQuar:    1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := &Options{MaintenanceInterval: -1, Retention: -1}
			db, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			writeBatches(t, db, 0, 10)
			if tc.flushFirst {
				if err := db.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			tc.damage(t, dir)

			db, err = Open(dir, opts)
			if err != nil {
				t.Fatalf("open after damage must not fail: %v", err)
			}
			defer db.Close()
			var changes []int64
			db.OnChange(func(from int64) { changes = append(changes, from) })
			res, err := db.selectSeries(t.Context(), math.MinInt64, math.MaxInt64, nil)
			if tc.wantReadErr {
				if !slices.Equal(changes, []int64{math.MinInt64}) {
					t.Fatalf("changes reported on quarantine %v, want one from the beginning of time", changes)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("read error %v, want a corruption error", err)
				}
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.File == "" {
					t.Fatalf("corruption error %v does not name the file", err)
				}
				// The partition is out of service now; reading works again.
				if res, err = db.selectSeries(t.Context(), math.MinInt64, math.MaxInt64, nil); err != nil {
					t.Fatalf("read after quarantine: %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range res {
				if s.lset.String() == s0 {
					n = len(s.samples)
				}
			}
			if n != tc.wantSamples {
				t.Fatalf("series s0 has %d samples, want %d", n, tc.wantSamples)
			}
			st := db.Stats()
			if st.WALCorruptions != tc.wantWALCorr || st.QuarantinedParts != tc.wantQuar {
				t.Fatalf("wal corruptions %d quarantined %d, want %d and %d", st.WALCorruptions, st.QuarantinedParts, tc.wantWALCorr, tc.wantQuar)
			}
			if tc.wantQuar > 0 {
				onlyFile(t, filepath.Join(dir, "quarantine", "*.part"))
			}
			// The DB keeps working: new writes land and survive a reopen.
			writeBatches(t, db, 100, 101)
			db.Close()
			db2, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			if st := db2.Stats(); st.WALCorruptions != 0 {
				t.Fatalf("repaired wal still reports %d corruptions", st.WALCorruptions)
			}
		})
	}
}
