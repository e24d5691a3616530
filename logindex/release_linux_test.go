package logindex

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// After searches have read the persisted segments, releaseMapped gives their
// mapped pages back, and searches still find the same records.
func TestReleaseSegmentPages(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for b := 0; b < 20; b++ {
		recs := make([]genRecord, 1000)
		for i := range recs {
			n := b*1000 + i
			recs[i] = genRecord{t: base.Add(time.Duration(n) * time.Millisecond), service: fmt.Sprint("svc-", n%7),
				body: fmt.Sprintf("request %d from 10.0.%d.%d took %d ms user=u%d", n, n%250, n%13, n%997, n%101)}
		}
		write(t, ix, recs)
	}
	flush(t, ix)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, every segment is a persisted, mapped zap file.
	ix, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	lo, hi := base.Add(-time.Minute), base.Add(time.Hour)
	queries := []string{"request", "took", "u42", `"took 5 ms"`, "service:svc-3", "10.0.7.1"}
	want := map[string]uint64{}
	for _, q := range queries {
		want[q] = count(t, ix, q, lo, hi)
	}
	before := zapRss(t)
	if before == 0 {
		t.Fatal("no resident zap pages after searching; the test reads nothing")
	}
	// Bleve's merger may read segments of the reopened index meanwhile, so the
	// release is tried up to three times; a release that does nothing fails
	// every time.
	var after int64
	for range 3 {
		ix.releaseMapped()
		if after = zapRss(t); after <= before/4 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("resident zap pages: %d KiB before the release, %d KiB after", before, after)
	if after > before/4 {
		t.Errorf("the release left %d of %d KiB of segment pages resident", after, before)
	}
	for _, q := range queries {
		if got := count(t, ix, q, lo, hi); got != want[q] {
			t.Errorf("%q: %d records after the release, %d before", q, got, want[q])
		}
	}
}

// zapRss is the resident size in KiB of this process's mappings of zap files.
func zapRss(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	var total int64
	inZap := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 { // a mapping's header line
			inZap = strings.HasSuffix(fields[len(fields)-1], ".zap")
			continue
		}
		if inZap && fields[0] == "Rss:" && len(fields) >= 2 {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			total += n
		}
	}
	return total
}
