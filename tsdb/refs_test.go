package tsdb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestAppendRefsMatchesAppender writes the same samples (new series, known ones,
// several of one series in a row, duplicates, out-of-order and too old ones)
// through the Prometheus appender into one DB and through AppendRefs into another,
// and checks that both store and refuse exactly the same, also after a WAL replay.
func TestAppendRefsMatchesAppender(t *testing.T) {
	now := time.UnixMilli(100_000_000)
	opts := func() *Options {
		return &Options{Retention: time.Hour, OutOfOrderWindow: time.Minute, Now: func() time.Time { return now }}
	}
	viaApp, _ := openTest(t, opts())
	viaRefs, dir := openTest(t, opts())

	var lsets []labels.Labels
	for i := range 20 {
		lsets = append(lsets, labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)))
	}
	refs := make([]SeriesRef, len(lsets))
	r := rand.New(rand.NewPCG(7, 7))
	base := now.UnixMilli()
	for round := range 30 {
		var batch []RefSample
		var idx []int
		for range 50 {
			i := r.IntN(len(lsets))
			tm := base + int64(round)*10_000 + r.Int64N(20_000) - 10_000
			switch r.IntN(10) {
			case 0:
				tm -= 2 * time.Minute.Milliseconds() // out of the window
			case 1:
				tm -= 2 * time.Hour.Milliseconds() // older than the retention
			}
			v := randomFloat(r)
			n := 1 + r.IntN(3) // runs of one series
			for k := range n {
				batch = append(batch, RefSample{Ref: refs[i], Labels: lsets[i], T: tm + int64(k), V: v})
				idx = append(idx, i)
			}
		}
		app := viaApp.Appender(t.Context())
		for _, s := range batch {
			if _, err := app.Append(0, s.Labels, s.T, s.V); err != nil {
				t.Fatal(err)
			}
		}
		errA := app.Commit()
		rej, errR := viaRefs.AppendRefs(batch)
		if (errA == nil) != (errR == nil) || errR != nil && !errors.Is(errR, ErrRejected) {
			t.Fatalf("round %d: appender: %v, AppendRefs: %v", round, errA, errR)
		}
		if errR == nil && rej != 0 || errR != nil && rej == 0 {
			t.Fatalf("round %d: rejected %d with err %v", round, rej, errR)
		}
		for k, s := range batch {
			if s.Ref != 0 {
				if refs[idx[k]] != 0 && refs[idx[k]] != s.Ref {
					t.Fatalf("series %d: ref changed from %d to %d", idx[k], refs[idx[k]], s.Ref)
				}
				refs[idx[k]] = s.Ref
			}
		}
	}
	a, b := viaApp.Stats(), viaRefs.Stats()
	if a.Series != b.Series || a.OutOfOrderRejected != b.OutOfOrderRejected || a.TooOldRejected != b.TooOldRejected || a.SamplesAppended != b.SamplesAppended {
		t.Fatalf("stats differ: appender %+v, AppendRefs %+v", a, b)
	}
	if b.OutOfOrderRejected == 0 || b.TooOldRejected == 0 {
		t.Fatalf("the test refused nothing: %+v", b)
	}
	want := readAll(t, viaApp)
	same := func(got map[string][]sample) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d series, want %d", len(got), len(want))
		}
		for k, w := range want {
			if err := sameSamples(got[k], w); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
		}
	}
	same(readAll(t, viaRefs))

	if err := viaRefs.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	same(readAll(t, reopened))
}

func TestAppendRefsUnknownRef(t *testing.T) {
	db, _ := openTest(t, nil)
	ls := labels.FromStrings("__name__", "m")
	batch := []RefSample{{Labels: ls, T: 1000, V: 1}}
	if _, err := db.AppendRefs(batch); err != nil {
		t.Fatal(err)
	}
	if batch[0].Ref == 0 {
		t.Fatal("ref not set")
	}
	_, err := db.AppendRefs([]RefSample{{Ref: batch[0].Ref, T: 2000, V: 2}, {Ref: batch[0].Ref + 1, T: 2000, V: 2}})
	if !errors.Is(err, ErrUnknownRef) {
		t.Fatalf("err = %v, want ErrUnknownRef", err)
	}
	if got := readAll(t, db)[ls.String()]; len(got) != 1 || got[0].v != 1 {
		t.Fatalf("stored %v after a failed call, want the first sample only", got)
	}
	if st := db.Stats(); st.Series != 1 {
		t.Fatalf("%d series, want 1", st.Series)
	}
}

// AppendDerived stores like AppendRefs, but its samples are not shown to the
// observer and count apart from HeadMaxSamples, up to as many again.
func TestAppendDerived(t *testing.T) {
	db, _ := openTest(t, &Options{MaintenanceInterval: -1, Retention: -1, HeadMaxSamples: 10})
	var seen int
	db.SetObserver(func(b []ObservedSample) { seen += len(b) })
	in := labels.FromStrings("__name__", "in")
	out := labels.FromStrings("__name__", "out")
	var ref SeriesRef
	for i := range 12 {
		t0 := int64(1000 * (i + 1))
		if _, err := db.AppendRefs([]RefSample{{Labels: in, T: t0, V: 1}}); err != nil {
			t.Fatal(err)
		}
		s := []RefSample{{Ref: ref, Labels: out, T: t0, V: 2}}
		if _, err := db.AppendDerived(s); err != nil {
			t.Fatal(err)
		}
		ref = s[0].Ref
		db.mu.RLock()
		full := db.headFull()
		db.mu.RUnlock()
		if want := i+1 >= 10; full != want {
			t.Fatalf("after %d ingested and %d derived samples: head full %v, want %v", i+1, i+1, full, want)
		}
	}
	if seen != 12 {
		t.Fatalf("observer saw %d samples, want the 12 not derived", seen)
	}
	if st := db.Stats(); st.HeadSamples != 24 || st.HeadDerivedSamples != 12 {
		t.Fatalf("head %d samples, %d derived; want 24, 12", st.HeadSamples, st.HeadDerivedSamples)
	}
	if got := readAll(t, db)[out.String()]; len(got) != 12 {
		t.Fatalf("%d derived samples stored, want 12", len(got))
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.HeadSamples != 0 || st.HeadDerivedSamples != 0 {
		t.Fatalf("after a flush: head %d samples, %d derived", st.HeadSamples, st.HeadDerivedSamples)
	}
	// Derived samples alone fill the head at twice HeadMaxSamples.
	for i := range 20 {
		if _, err := db.AppendDerived([]RefSample{{Ref: ref, T: int64(200_000 + 1000*i), V: 3}}); err != nil {
			t.Fatal(err)
		}
		db.mu.RLock()
		full := db.headFull()
		db.mu.RUnlock()
		if want := i+1 >= 20; full != want {
			t.Fatalf("after %d derived samples: head full %v, want %v", i+1, full, want)
		}
	}
}
