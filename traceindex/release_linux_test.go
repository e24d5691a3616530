package traceindex

import (
	"bufio"
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
		var spans []sp
		for j := 0; j < 50; j++ {
			spans = append(spans, sp{trace: r.IntN(1 << 30), span: j + 1, svc: "api", name: "root",
				start: t0.Add(time.Duration(i) * time.Millisecond), dur: time.Second,
				attrs: map[string]any{"x": fmt.Sprint(r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())}})
		}
		mustWrite(t, ix, build(spans...))
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
