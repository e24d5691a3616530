package tsdb

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

func TestObserverSeesCommittedFloatSamples(t *testing.T) {
	db, _ := openTest(t, &Options{OutOfOrderWindow: -1})
	var got []ObservedSample
	db.SetObserver(func(b []ObservedSample) { got = append(got, b...) })

	ls := labels.FromStrings("__name__", "temp", "room", "a")
	app := db.Appender(t.Context())
	app.Append(0, ls, 2000, 21.5)
	app.Append(0, ls, 1000, 20) // out of order: rejected, not observed
	app.AppendHistogram(0, labels.FromStrings("__name__", "h"), 2000, nil, &histogram.FloatHistogram{Count: 1, Sum: 1})
	if err := app.Commit(); err == nil {
		t.Fatal("commit with an out-of-order sample: no error")
	}
	if len(got) != 1 || !labels.Equal(got[0].Labels, ls) || got[0].T != 2000 || got[0].V != 21.5 {
		t.Fatalf("observed %+v, want the one accepted float sample", got)
	}

	db.SetObserver(nil)
	app = db.Appender(t.Context())
	app.Append(0, ls, 3000, 22)
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("observer removed but still called: %+v", got)
	}
}

// Every OnChange function hears of each accepted batch with its earliest
// sample, after the samples are visible, and of nothing refused.
func TestOnChangeSeesEarliestSample(t *testing.T) {
	db, _ := openTest(t, &Options{OutOfOrderWindow: 1000})
	var a, b []int64
	db.OnChange(func(from int64) {
		a = append(a, from)
		// What the change names is visible by now.
		if res, err := db.selectSeries(t.Context(), from, from, nil); err != nil || len(res) == 0 {
			t.Errorf("change from %d: not visible (%v)", from, err)
		}
	})
	db.OnChange(func(from int64) { b = append(b, from) })
	ls := labels.FromStrings("__name__", "temp", "room", "a")
	app := db.Appender(t.Context())
	app.Append(0, ls, 5000, 1)
	app.Append(0, labels.FromStrings("__name__", "temp", "room", "b"), 4000, 1)
	app.AppendHistogram(0, labels.FromStrings("__name__", "h"), 3000, nil, &histogram.FloatHistogram{Count: 1, Sum: 1})
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = db.Appender(t.Context())
	app.Append(0, ls, 1000, 2) // beyond the out-of-order window: refused
	if err := app.Commit(); err == nil {
		t.Fatal("commit of a refused sample: no error")
	}
	if !slices.Equal(a, []int64{3000}) || !slices.Equal(b, a) {
		t.Fatalf("changes %v and %v, want [3000] for each", a, b)
	}
}
