package logindex

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

func TestRetention(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ix, dir := openTest(t, &Options{Retention: 48 * time.Hour, Now: clock})
	for d := 0; d < 3; d++ { // Mar 8, 9, 10
		day := now.Add(-time.Duration(2-d) * 24 * time.Hour)
		write(t, ix, []genRecord{{t: day, service: "s", sev: plog.SeverityNumberInfo, body: fmt.Sprintf("day %d", d)}})
	}
	flush(t, ix)
	if n := count(t, ix, "day", time.Time{}, time.Time{}); n != 3 {
		t.Fatalf("got %d records, want 3", n)
	}
	// Records older than the retention are refused.
	rej, reason, err := ix.WriteLogs(context.Background(), makeLogs([]genRecord{{t: now.Add(-72 * time.Hour), service: "s", body: "old"}}))
	if err != nil || rej != 1 || !strings.Contains(reason, "retention") {
		t.Fatalf("old record: rejected %d %q %v", rej, reason, err)
	}
	// Two days later, Mar 8 and 9 fall out of the 48 h retention.
	mu.Lock()
	now = now.Add(48 * time.Hour)
	mu.Unlock()
	n, err := ix.applyRetention()
	if err != nil || n != 2 {
		t.Fatalf("dropped %d partitions, %v; want 2", n, err)
	}
	for _, name := range []string{"20260308", "20260309"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("partition %s still on disk: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "20260310")); err != nil {
		t.Errorf("partition 20260310 gone: %v", err)
	}
	if n := count(t, ix, "day", time.Time{}, time.Time{}); n != 1 {
		t.Fatalf("got %d records after retention, want 1", n)
	}
}

const (
	crashChildEnv = "LOGINDEX_CRASH_CHILD_DIR"
	crashRoundEnv = "LOGINDEX_CRASH_ROUND"
)

// TestCrashChild is the child of TestCrash: it writes numbered records from two
// goroutines and prints each acknowledged batch's range until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	ix, err := Open(dir, &Options{Logger: nil})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				first := ((round*2+w)*1_000_000 + b) * 200
				recs := make([]genRecord, 200)
				for i := range recs {
					recs[i] = genRecord{t: time.Now(), service: "crash", sev: plog.SeverityNumberInfo,
						body: fmt.Sprintf("crash record %d", first+i), attrs: map[string]any{"seq": first + i}}
				}
				_, _, err := ix.WriteLogs(context.Background(), makeLogs(recs))
				var bp *BackpressureError
				if errors.As(err, &bp) {
					time.Sleep(bp.RetryAfter())
					continue
				}
				if err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Printf("ack %d %d\n", first, first+len(recs)-1)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrash kills a writing child process with SIGKILL and checks that every
// record whose write was acknowledged is found after reopening.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts a child process")
	}
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		type span struct{ lo, hi int }
		var acked []span
		sc := bufio.NewScanner(stdout)
		deadline := time.Now().Add(3 * time.Second)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				lo, _ := strconv.Atoi(f[1])
				hi, _ := strconv.Atoi(f[2])
				acked = append(acked, span{lo, hi})
			} else if len(f) > 0 && f[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
			if time.Now().After(deadline) && len(acked) > 0 {
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		// Acknowledgements printed before the kill landed still count.
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				lo, _ := strconv.Atoi(f[1])
				hi, _ := strconv.Atoi(f[2])
				acked = append(acked, span{lo, hi})
			}
		}
		_ = cmd.Wait()
		if len(acked) == 0 {
			t.Fatal("child acknowledged nothing")
		}
		ix, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		flush(t, ix)
		if err := ix.checkConsistency(); err != nil {
			t.Error(err)
		}
		for _, s := range acked {
			if n := count(t, ix, fmt.Sprintf("seq:>=%d seq:<=%d", s.lo, s.hi), time.Time{}, time.Time{}); n != uint64(s.hi-s.lo+1) {
				t.Errorf("round %d: acknowledged records %d..%d: found %d", round, s.lo, s.hi, n)
			}
		}
		t.Logf("round %d: %d acknowledged batches all found", round, len(acked))
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecordLogDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		total  uint64 // matches after reopening, of 2 frames of 10 records
		read   int    // records that can be read
	}{
		{"torn last frame", func(t *testing.T, path string, size int64) { truncateFile(t, path, size-7) }, 10, 10},
		{"last frame gone", func(t *testing.T, path string, size int64) { truncateFile(t, path, headerSize+1) }, 0, 0},
		{"torn frame header", func(t *testing.T, path string, size int64) { appendBytes(t, path, []byte{1, 2, 3}) }, 20, 20},
		// A frame damaged after it was indexed is found when read: its records
		// are left out of results, the rest are served.
		{"bad checksum in an indexed frame", func(t *testing.T, path string, size int64) { flipByte(t, path, size-3) }, 20, 10},
		{"garbage after the last frame", func(t *testing.T, path string, size int64) {
			appendBytes(t, path, []byte{0xff, 0xff, 0xff, 0x00, 1, 2, 3, 4, 5, 6})
		}, 20, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			now := time.Now()
			ix, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			for b := 0; b < 2; b++ {
				recs := make([]genRecord, 10)
				for i := range recs {
					recs[i] = genRecord{t: now, service: "s", body: fmt.Sprintf("frame %d record %d", b, i)}
				}
				write(t, ix, recs)
			}
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, dayDirName(dayOf(now)), recordLogName)
			st, _ := os.Stat(path)
			c.damage(t, path, st.Size())
			ix, err = Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			flush(t, ix)
			res, err := ix.Search(context.Background(), SearchRequest{Query: "frame", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != c.total || len(res.Records) != c.read {
				t.Errorf("total %d, read %d records; want %d, %d", res.Total, len(res.Records), c.total, c.read)
			}
		})
	}
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSplitsRequestByDay sends one request whose records, interleaved,
// fall on three days, with some too old and some too far in the future: each
// kept record must be stored once, in its own day's partition, and found.
func TestWriteSplitsRequestByDay(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ix, dir := openTest(t, &Options{Retention: 72 * time.Hour, Now: func() time.Time { return now }})
	var recs []genRecord
	want := map[string]int{}
	for i := range 300 {
		d := i % 3 // Mar 8, 9, 10
		ts := time.Date(2026, 3, 8+d, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		recs = append(recs, genRecord{t: ts, service: "s", sev: plog.SeverityNumberInfo, body: fmt.Sprintf("day%d rec%d", d, i)})
		want[fmt.Sprintf("day%d", d)]++
		if i%50 == 0 {
			recs = append(recs,
				genRecord{t: now.Add(-5 * 24 * time.Hour), service: "s", body: "tooold"},
				genRecord{t: now.Add(48 * time.Hour), service: "s", body: "toonew"})
		}
	}
	rej, reason, err := ix.WriteLogs(context.Background(), makeLogs(recs))
	if err != nil || rej != 12 {
		t.Fatalf("rejected %d (%s), %v; want 12", rej, reason, err)
	}
	flush(t, ix)
	all := func(q string) uint64 { return count(t, ix, q, now.Add(-5*24*time.Hour), now.Add(3*24*time.Hour)) }
	for q, n := range want {
		if got := all(q); got != uint64(n) {
			t.Errorf("%s: %d records, want %d", q, got, n)
		}
	}
	for _, q := range []string{"tooold", "toonew"} {
		if got := all(q); got != 0 {
			t.Errorf("%s: %d records, want 0", q, got)
		}
	}
	for d, name := range []string{"20260308", "20260309", "20260310"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("partition %s: %v", name, err)
		}
		res, err := ix.Search(context.Background(), SearchRequest{Query: fmt.Sprintf("day%d", d), Start: now.Add(-5 * 24 * time.Hour), End: now.Add(time.Hour), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		wantDay := dayOf(time.Date(2026, 3, 8+d, 0, 0, 0, 0, time.UTC))
		if len(res.Records) != 100 || res.Total != 100 {
			t.Errorf("day%d: %d records of %d, want 100", d, len(res.Records), res.Total)
		}
		for _, r := range res.Records {
			id, err := parseDocID(r.ID)
			if err != nil || id.day() != wantDay {
				t.Fatalf("record %s (%q) is in the partition of day %d, want %d (%v)", r.ID, r.Body, id.day(), wantDay, err)
			}
			got, err := ix.Get(r.ID)
			if err != nil || got.Body != r.Body || dayOf(got.Time) != wantDay {
				t.Fatalf("record %s: %q at %v, %v; want day%d", r.ID, got.Body, got.Time, err, d)
			}
		}
	}
}
