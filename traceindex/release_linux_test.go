package traceindex

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The range releaseMapped advises lies inside the file's mapping, also once
// the file has grown past the mapping (bbolt allocates file space ahead); past
// it the advice would discard other memory of the process.
func TestReleaseRangeInsideMapping(t *testing.T) {
	ix := openTest(t, nil)
	r := rand.New(rand.NewPCG(1, 2))
	p := ix.parts
	for i := 0; i < 1500; i++ {
		mustWrite(t, ix, build(randomSpans(r, i, 50)...))
		p = ix.parts
	}
	db := p[0].db
	st, err := os.Stat(p[0].path)
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		addr, size := mappedRange(db, tx)
		lo, hi := mappingOf(t, addr)
		t.Logf("mapping %d bytes, used %d, file %d", hi-lo, size, st.Size())
		if addr != lo || addr+size > hi {
			t.Errorf("advised [%#x, %#x) outside the mapping [%#x, %#x) (file %d bytes)", addr, addr+size, lo, hi, st.Size())
		}
		return nil
	})
}

// Ingest with random trace ids reads nodes all over the file, and the kernel
// maps a 64 KiB window around each; the pages are given back once commits have
// read the node budget, so what stays mapped follows the budget, not the size
// of the file.
func TestReleaseBoundsMappedPages(t *testing.T) {
	const budget = 32
	ix := openTest(t, &Options{releaseNodes: budget, NoSync: true})
	r := rand.New(rand.NewPCG(3, 4))
	var maxRss, fileSize int64
	for i := 0; i < 2000; i++ {
		mustWrite(t, ix, build(randomSpans(r, i, 40)...))
		p := ix.parts[0]
		var addr uintptr
		p.db.View(func(tx *bolt.Tx) error {
			addr, _ = mappedRange(p.db, tx)
			fileSize = tx.Size()
			return nil
		})
		maxRss = max(maxRss, mappedRss(t, addr))
	}
	// Each node read maps at most 16 pages; twice that leaves room for the
	// nodes of multi-page values and the meta pages.
	limit := int64(2 * budget * 64 << 10)
	t.Logf("file %d bytes, at most %d bytes mapped (limit %d)", fileSize, maxRss, limit)
	if fileSize < 3*limit {
		t.Fatalf("file of %d bytes is too small to test a limit of %d", fileSize, limit)
	}
	if maxRss > limit {
		t.Errorf("%d bytes of the %d-byte file stayed mapped; want at most %d", maxRss, fileSize, limit)
	}
}

// Calls that read a whole window or file give the mapped pages back before
// they return.
func TestHeavyReadsReleaseMappedPages(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		read func(ix *Index) error
	}{
		{"Check", func(ix *Index) error { return ix.Check(ctx) }},
		{"Dependencies", func(ix *Index) error {
			_, err := ix.Dependencies(ctx, time.Time{}, time.Time{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := openTest(t, &Options{releaseNodes: 1 << 30, NoSync: true})
			r := rand.New(rand.NewPCG(5, 6))
			for i := 0; i < 300; i++ {
				var spans []sp
				for j := 0; j < 40; j++ {
					spans = append(spans, sp{trace: r.IntN(1 << 30), span: j + 1, parent: j, svc: fmt.Sprint("svc", j%3), name: "op",
						start: t0.Add(time.Duration(i) * time.Millisecond), dur: time.Second,
						attrs: map[string]any{"x": fmt.Sprint(r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())}})
				}
				mustWrite(t, ix, build(spans...))
			}
			p := ix.parts[0]
			var addr uintptr
			var size int64
			p.db.View(func(tx *bolt.Tx) error {
				addr, _ = mappedRange(p.db, tx)
				size = tx.Size()
				return nil
			})
			if err := tc.read(ix); err != nil {
				t.Fatal(err)
			}
			const limit = 256 << 10
			if rss := mappedRss(t, addr); rss > limit {
				t.Errorf("%d bytes of the %d-byte file mapped after %s; want at most %d", rss, size, tc.name, limit)
			}
		})
	}
}

// randomSpans is n root spans of random traces, i milliseconds after t0, each
// with a long random attribute: written, they touch B+tree nodes all over the
// file.
func randomSpans(r *rand.Rand, i, n int) []sp {
	spans := make([]sp, 0, n)
	for j := 0; j < n; j++ {
		spans = append(spans, sp{trace: r.IntN(1 << 30), span: j + 1, svc: "api", name: "root",
			start: t0.Add(time.Duration(i) * time.Millisecond), dur: time.Second,
			attrs: map[string]any{"x": fmt.Sprint(r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())}})
	}
	return spans
}

// mappedRss is the resident size of the mapping of /proc/self/smaps that
// starts at addr.
func mappedRss(t *testing.T, addr uintptr) int64 {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, _, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			l, err := strconv.ParseUint(lo, 16, 64)
			in = err == nil && uintptr(l) == addr
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("cannot parse %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping starts at %#x", addr)
	return 0
}

// mappingOf finds the mapping of /proc/self/maps that contains addr.
func mappingOf(t *testing.T, addr uintptr) (lo, hi uintptr) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		r, _, _ := strings.Cut(sc.Text(), " ")
		a, b, _ := strings.Cut(r, "-")
		l, _ := strconv.ParseUint(a, 16, 64)
		h, _ := strconv.ParseUint(b, 16, 64)
		if uintptr(l) <= addr && addr < uintptr(h) {
			return uintptr(l), uintptr(h)
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return 0, 0
}
