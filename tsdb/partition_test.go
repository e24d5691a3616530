package tsdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// appendV1Partition appends a version 1 partition file (one frame record per
// series, no in-frame positions in the index) holding the given series, sorted
// by labels, as the first release wrote them.
func appendV1Partition(dst []byte, series []partSeries) []byte {
	start := len(dst)
	dst = append(dst, partMagic...)
	dst = append(dst, 1, 0, 0, 0)
	index := binary.AppendUvarint(nil, uint64(len(series)))
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range series {
		off := len(dst) - start
		dst = appendChunkRecord(dst, appendSeriesChunk(nil, s.samples))
		first, last := s.samples[0].t, s.samples[len(s.samples)-1].t
		mint, maxt = min(mint, first), max(maxt, last)
		index = appendLabels(index, s.lset)
		index = binary.AppendUvarint(index, uint64(off))
		index = binary.AppendUvarint(index, uint64(len(dst)-start-off))
		index = binary.AppendVarint(index, first)
		index = binary.AppendVarint(index, last)
		index = binary.AppendUvarint(index, uint64(len(s.samples)))
	}
	indexOff := len(dst) - start
	cidx := zenc.EncodeAll(index, nil)
	dst = append(dst, cidx...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(indexOff))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(cidx)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(mint))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(maxt))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(cidx, castagnoli))
	return append(dst, partMagic...)
}

// setPartVersion rewrites the version byte of the partition file at path.
func setPartVersion(path string, v byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte{v}, 4); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// testPartSeries returns n series of k samples each, sorted by labels.
func testPartSeries(n, k int) []partSeries {
	var out []partSeries
	for i := 0; i < n; i++ {
		ss := make([]sample, k)
		for j := range ss {
			ss[j] = sample{t: int64(j) * 15_000, v: float64(i*1000+j) / 4}
		}
		out = append(out, partSeries{lset: labels.FromStrings("__name__", "m", "s", fmt.Sprintf("%04d", i)), samples: ss})
	}
	return out
}

// TestPartitionVersions checks that partitions of every version open and read
// back every sample, and that a merge rewrites them in the current version. The
// version 3 file holds chunks cut into float blocks with time ranges.
func TestPartitionVersions(t *testing.T) {
	series := testPartSeries(450, 100)
	for i := 300; i < 450; i++ { // about four hours each: two float blocks
		ss := make([]sample, 1000)
		for j := range ss {
			ss[j] = sample{t: int64(j) * 15_000, v: float64(i*1000+j) / 4}
		}
		series[i].samples = ss
	}
	dir := t.TempDir()
	partDir := filepath.Join(dir, "partitions")
	if err := os.MkdirAll(partDir, 0o755); err != nil {
		t.Fatal(err)
	}
	v1 := appendV1Partition(nil, series[:150])
	if err := os.WriteFile(filepath.Join(partDir, fmt.Sprintf("p-0-1485000-%020d.part", 1)), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	// A version 2 file is a version 3 file without float blocks with time
	// ranges, which series of 25 minutes do not get.
	p, err := writePartition(partDir, 2, 150, func(i int) (partSeries, error) { return series[150+i], nil })
	if err != nil {
		t.Fatal(err)
	}
	p.f.Close()
	if err := setPartVersion(p.path, 2); err != nil {
		t.Fatal(err)
	}
	p, err = writePartition(partDir, 3, 150, func(i int) (partSeries, error) { return series[300+i], nil })
	if err != nil {
		t.Fatal(err)
	}
	p.f.Close()
	db, err := Open(dir, &Options{MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func(stage string) {
		t.Helper()
		got := readAll(t, db)
		if len(got) != len(series) {
			t.Fatalf("%s: %d series, want %d", stage, len(got), len(series))
		}
		for _, s := range series {
			if err := sameSamples(got[s.lset.String()], s.samples); err != nil {
				t.Fatalf("%s: %s: %v", stage, s.lset, err)
			}
		}
	}
	check("versions 1, 2 and 3")
	db.mu.RLock()
	parts := append([]*partition(nil), db.parts...)
	db.mu.RUnlock()
	if err := db.mergeParts(parts); err != nil {
		t.Fatal(err)
	}
	check("merged")
	b, err := os.ReadFile(db.parts[0].path)
	if err != nil {
		t.Fatal(err)
	}
	if b[4] != partVersion {
		t.Fatalf("merged partition has version %d, want %d", b[4], partVersion)
	}
}

// TestPartitionFramesShared checks that small series chunks share frames and
// that a chunk is found at its place in the frame.
func TestPartitionFramesShared(t *testing.T) {
	series := testPartSeries(3000, 60)
	p, err := writePartition(t.TempDir(), 1, len(series), func(i int) (partSeries, error) {
		s := series[i]
		s.id = uint32(i)
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.f.Close()
	frames := map[uint64]int{}
	p.series.each(func(id uint32) {
		r, _ := p.series.get(id)
		frames[r.off]++
	})
	if len(frames) < 2 || len(frames) > len(series)/10 {
		t.Fatalf("%d series in %d frames, want a few frames shared by many series", len(series), len(frames))
	}
	var fc frameCache
	for i, s := range series {
		got, err := p.readChunk(nil, uint32(i), math.MinInt64, math.MaxInt64, &fc)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameSamples(got, s.samples); err != nil {
			t.Fatalf("series %d: %v", i, err)
		}
	}
}

// FuzzPartition reads a partition file image: its index, then every chunk the
// index points at. Damage must give an error, never a panic or a huge
// allocation.
func FuzzPartition(f *testing.F) {
	series := testPartSeries(40, 20)
	series[3].samples[5].fh = testHistogram()
	f.Add(appendV1Partition(nil, series[:4]))
	dir := f.TempDir()
	p, err := writePartition(dir, 1, len(series), func(i int) (partSeries, error) { return series[i], nil })
	if err != nil {
		f.Fatal(err)
	}
	p.f.Close()
	b, err := os.ReadFile(p.path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, err := readPartitionIndex("fuzz", bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, ref := range pi.refs {
			raw, err := decodeChunkRecord(b[ref.off : ref.off+ref.length])
			if err != nil {
				continue
			}
			if ref.inLen > 0 {
				if uint64(ref.inOff)+uint64(ref.inLen) > uint64(len(raw)) {
					continue
				}
				raw = raw[ref.inOff : ref.inOff+ref.inLen]
			}
			decodeSeriesChunk(nil, raw)
		}
	})
}

// TestCompactMerges checks which partitions Compact merges: those of a finished
// day into one, those of a finished range of the current day into one per
// range, and none of a range that may still get samples.
func TestCompactMerges(t *testing.T) {
	const h = 3600 * 1000
	day0 := int64(1_700_006_400_000) // a UTC midnight
	now := time.UnixMilli(day0 + 24*h + 9*h + 30*60*1000)
	db, _ := openTest(t, &Options{OutOfOrderWindow: 10 * time.Minute, Now: func() time.Time { return now }})
	lset := labels.FromStrings("__name__", "m")
	var want []sample
	// Three flushes into each of: day 0 at 04:00-06:00, day 1 at 02:00-04:00 (ended
	// long enough ago), day 1 at 08:00-10:00 (still open).
	for _, start := range []int64{day0 + 4*h, day0 + 24*h + 2*h, day0 + 24*h + 8*h} {
		for f := int64(0); f < 3; f++ {
			ss := []sample{{t: start + f*10*60*1000, v: float64(f)}, {t: start + f*10*60*1000 + 1000, v: float64(f) + 0.5}}
			if _, _, err := db.appendBatch([]seriesSamples{{lset: lset, samples: ss}}); err != nil {
				t.Fatal(err)
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			want = append(want, ss...)
		}
	}
	if n := db.Stats().Partitions; n != 9 {
		t.Fatalf("%d partitions before compaction, want 9", n)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	// Day 0: one; day 1 02:00-04:00: one; day 1 08:00-10:00: three.
	if st := db.Stats(); st.Partitions != 5 || st.Merges != 2 {
		t.Fatalf("%d partitions after %d merges, want 5 after 2", st.Partitions, st.Merges)
	}
	if err := sameSamples(readAll(t, db)[lset.String()], want); err != nil {
		t.Fatal(err)
	}
}

// TestFlushSpreadOutChunk flushes a head chunk whose samples lie far apart (a
// long gap, and absurd timestamps): each sample lands in its range's partition.
func TestFlushSpreadOutChunk(t *testing.T) {
	db, _ := openTest(t, &Options{OutOfOrderWindow: -1})
	lset := labels.FromStrings("__name__", "m")
	ss := []sample{{t: math.MinInt64 / 2, v: 1}, {t: -5, v: 2}, {t: 1000, v: 3}, {t: 400 * 24 * 3600 * 1000, v: 4}, {t: math.MaxInt64 - 1, v: 5}}
	if _, _, err := db.appendBatch([]seriesSamples{{lset: lset, samples: ss}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().Partitions; n != len(ss) {
		t.Fatalf("%d partitions, want %d", n, len(ss))
	}
	if err := sameSamples(readAll(t, db)[lset.String()], ss); err != nil {
		t.Fatal(err)
	}
}

// TestHeadMaxSamplesFlushesAtOnce checks that an append bringing the head to
// HeadMaxSamples wakes the maintenance goroutine at once: with an hour-long
// MaintenanceInterval the head would otherwise grow on for that hour.
func TestHeadMaxSamplesFlushesAtOnce(t *testing.T) {
	const max = 1000
	db, _ := openTest(t, &Options{OutOfOrderWindow: -1, HeadMaxSamples: max, MaintenanceInterval: time.Hour})
	lset := labels.FromStrings("__name__", "m")
	batch := func(from, n int) []seriesSamples {
		ss := make([]sample, n)
		for i := range ss {
			ss[i] = sample{t: int64(from+i) * 1000, v: float64(from + i)}
		}
		return []seriesSamples{{lset: lset, samples: ss}}
	}
	if _, _, err := db.appendBatch(batch(0, max-1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if st := db.Stats(); st.Partitions != 0 || st.HeadSamples != max-1 {
		t.Fatalf("below HeadMaxSamples: %d partitions, %d head samples; want 0 and %d", st.Partitions, st.HeadSamples, max-1)
	}
	if _, _, err := db.appendBatch(batch(max-1, 1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.Stats().Partitions == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("head of %d samples not flushed 10 s after it reached HeadMaxSamples", db.Stats().HeadSamples)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(readAll(t, db)[lset.String()]); n != max {
		t.Fatalf("%d samples after the flush, want %d", n, max)
	}
}

// TestCollectors checks that the outpost_tsdb_… metrics read the DB's Stats.
func TestCollectors(t *testing.T) {
	db, _ := openTest(t, &Options{OutOfOrderWindow: -1})
	lset := labels.FromStrings("__name__", "m")
	if _, _, err := db.appendBatch([]seriesSamples{{lset: lset, samples: []sample{{t: 1000, v: 1}, {t: 2000, v: 2}}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.appendBatch([]seriesSamples{{lset: lset, samples: []sample{{t: 3000, v: 3}}}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(db.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	st := db.Stats()
	for name, want := range map[string]float64{
		"outpost_tsdb_series":                 1,
		"outpost_tsdb_head_samples":           1,
		"outpost_tsdb_partitions":             1,
		"outpost_tsdb_partition_bytes":        float64(st.PartitionBytes),
		"outpost_tsdb_samples_appended_total": 3,
		"outpost_tsdb_head_flushes_total":     1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if len(got) != len(statsMetrics) || st.PartitionBytes == 0 {
		t.Errorf("%d metrics gathered, want %d; partition bytes %d", len(got), len(statsMetrics), st.PartitionBytes)
	}
}

// Each flush writes its series in label order, whatever the order in which
// they were created, before the previous flush or since.
func TestFlushLabelOrder(t *testing.T) {
	db, _ := openTest(t, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	var ref SeriesRef
	for round := range 4 {
		var batch []RefSample
		for _, k := range rng.Perm(50) {
			batch = append(batch, RefSample{Labels: labels.FromStrings("__name__", "m", "k", fmt.Sprint(k), "round", fmt.Sprint(round%2)), T: int64(1000 * (round + 1)), V: 1})
		}
		if ref != 0 { // a series of the first round, so that not every series is in each flush
			batch = append(batch, RefSample{Ref: ref, T: int64(1000 * (round + 1)), V: 2})
		}
		if _, err := db.AppendRefs(batch); err != nil {
			t.Fatal(err)
		}
		ref = batch[0].Ref
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	db.mu.RLock()
	parts := slices.Clone(db.parts)
	db.mu.RUnlock()
	if len(parts) != 4 {
		t.Fatalf("%d partitions, want 4", len(parts))
	}
	for _, p := range parts {
		pi, err := readPartitionIndex(p.path, p.f, p.size)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSortedFunc(pi.lsets, labels.Compare) || len(pi.lsets) < 50 {
			t.Fatalf("partition %s: %d series, not in label order: %v", p.path, len(pi.lsets), pi.lsets)
		}
	}
}
