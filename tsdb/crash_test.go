package tsdb

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

const (
	crashChildEnv   = "OUTPOST_TSDB_CRASH_CHILD_DIR"
	crashStartEnv   = "OUTPOST_TSDB_CRASH_CHILD_START"
	crashSeries     = 10
	crashPerBatch   = 50
	crashFlushEvery = 40
)

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// crashBatch is batch number i of the crash test: deterministic, with arbitrary
// float bit patterns.
func crashBatch(i int) []seriesSamples {
	var out []seriesSamples
	for s := 0; s < crashSeries; s++ {
		ss := make([]sample, crashPerBatch)
		for k := range ss {
			ss[k] = sample{
				t: int64(i)*crashPerBatch + int64(k),
				v: math.Float64frombits(splitmix(uint64(i)<<32 | uint64(s)<<16 | uint64(k))),
			}
		}
		out = append(out, seriesSamples{lset: labels.FromStrings("__name__", "crash", "s", strconv.Itoa(s)), samples: ss})
	}
	return out
}

// crashChild runs in the re-executed test binary: it writes batches forever and
// prints "ack N" after batch N is acknowledged, until it is killed.
func crashChild() {
	dir := os.Getenv(crashChildEnv)
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	db, err := Open(dir, &Options{MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	for i := start; ; i++ {
		if rej, _, err := db.appendBatch(crashBatch(i)); err != nil || rej != 0 {
			fmt.Fprintln(os.Stderr, "append:", rej, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", i)
		if i%crashFlushEvery == crashFlushEvery-1 {
			if err := db.Flush(); err != nil {
				fmt.Fprintln(os.Stderr, "flush:", err)
				os.Exit(2)
			}
		}
	}
}

// TestCrashAcknowledgedDurable kills a writing child process with SIGKILL several
// times and checks after each restart that every acknowledged sample is there.
func TestCrashAcknowledgedDurable(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	next := 0
	for round, acksBeforeKill := range []int{30, 95, 7, 61} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(next))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		last := -1
		for n := 0; n < acksBeforeKill && sc.Scan(); n++ {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "ack" {
				last, _ = strconv.Atoi(f[1])
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if last < 0 {
			t.Fatalf("round %d: child acknowledged nothing", round)
		}

		db, err := Open(dir, &Options{MaintenanceInterval: -1, Retention: -1})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		got := map[string][]sample{}
		res, err := db.selectSeries(context.Background(), math.MinInt64, math.MaxInt64, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res {
			got[s.lset.String()] = s.samples
		}
		for i := 0; i <= last; i++ {
			for _, b := range crashBatch(i) {
				have := got[b.lset.String()]
				for _, w := range b.samples {
					// Series hold every batch in order, so sample t is at index t.
					if w.t >= int64(len(have)) || have[w.t].t != w.t || math.Float64bits(have[w.t].v) != math.Float64bits(w.v) {
						t.Fatalf("round %d: acknowledged sample %s t=%d missing or wrong", round, b.lset, w.t)
					}
				}
			}
		}
		if st := db.Stats(); st.QuarantinedParts != 0 {
			t.Fatalf("round %d: %d partitions quarantined", round, st.QuarantinedParts)
		}
		// Continue after the last batch that may have reached the WAL.
		next = len(got[labels.FromStrings("__name__", "crash", "s", "0").String()]) / crashPerBatch
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d batches acknowledged and found", round, last+1)
	}
}
