package detect

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestBacktestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty file", "", "empty input"},
		{"header only", "timestamp,value\n", "no rows"},
		{"missing header", "2024-01-01 00:00:00,1\n2024-01-01 00:05:00,2\n", "line 1: want header"},
		{"wrong header", "time,val\n2024-01-01 00:00:00,1\n", "line 1: want header"},
		{"bad timestamp", "timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n", `line 3: cannot parse timestamp "yesterday"`},
		{"bad value", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,lots\n", `line 3: cannot parse value "lots"`},
		{"empty value", "timestamp,value\n2024-01-01 00:00:00,\n", `line 2: cannot parse value ""`},
		{"one column", "timestamp,value\n2024-01-01 00:00:00\n", "line 2: want timestamp,value"},
		{"unsorted", "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:00:00,2\n", "line 3: timestamp 2024-01-01 00:00:00 is not after"},
		{"duplicate", "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:05:00,2\n", "line 3: timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Backtest(strings.NewReader(tc.in), &out, Options{})
			if err == nil {
				t.Fatalf("no error; output %q", out.String())
			}
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("error %v is not ErrBadInput", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("bad input wrote %q", out.String())
			}
		})
	}
}

func TestBacktestEchoes(t *testing.T) {
	in := "timestamp,value,extra\n" +
		"2024-01-01T00:00:00Z,1.50,x\n" +
		"2024-01-01 00:05:00.000000,NaN\n" +
		"1704067800,  2\n" +
		"2024-01-01T00:15:00+00:00,3e0\n"
	var out bytes.Buffer
	if err := Backtest(strings.NewReader(in), &out, Options{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{"timestamp,value,anomaly_score", "2024-01-01T00:00:00Z,1.50,", "2024-01-01 00:05:00.000000,NaN,",
		"1704067800,  2,", "2024-01-01T00:15:00+00:00,3e0,"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], w)
		}
		if i > 0 {
			s, err := strconv.ParseFloat(lines[i][len(w):], 64)
			if err != nil || s < 0 || s > 1 {
				t.Errorf("line %d: score %q not in [0,1]", i+1, lines[i][len(w):])
			}
		}
	}
}

// TestBacktestMatchesDetector runs the CLI over a NAB file and checks it writes
// what the detector scores, row for row.
func TestBacktestMatchesDetector(t *testing.T) {
	c := loadNAB(t)
	f := c.Files[0]
	for _, g := range c.Files {
		if strings.HasSuffix(g.Name, "nyc_taxi.csv") {
			f = g
		}
	}
	outPath := filepath.Join(t.TempDir(), "out.csv")
	var stdout, stderr bytes.Buffer
	in := filepath.Join(nabDir, "data", filepath.FromSlash(f.Name))
	if err := BacktestMain([]string{"--csv", in, "--out", outPath}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("--out also wrote to stdout")
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(f.Values)+1 || lines[0] != "timestamp,value,anomaly_score" {
		t.Fatalf("got %d lines, header %q; want %d rows", len(lines), lines[0], len(f.Values))
	}
	d := NewDetector(Options{})
	for i, l := range lines[1:] {
		parts := strings.Split(l, ",")
		want := d.Observe(f.Timestamps[i], f.Values[i]).Score
		got, _ := strconv.ParseFloat(parts[2], 64)
		if parts[0] != f.Raw[i] || got != want {
			t.Fatalf("row %d = %q, want timestamp %q score %v", i+1, l, f.Raw[i], want)
		}
	}
	if err := BacktestMain([]string{"--csv", filepath.Join(t.TempDir(), "missing.csv")}, &stdout, &stderr); err == nil {
		t.Error("missing input: no error")
	}
	if err := BacktestMain(nil, &stdout, &stderr); err == nil {
		t.Error("no --csv: no error")
	}
}
