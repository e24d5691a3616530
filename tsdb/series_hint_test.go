package tsdb

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// A select for the series API (hint Func "series") answers from chunk bounds
// without reading samples: the series whose head or partition data spans part of
// the range, sorted, with no samples.
func TestSelectSeriesHint(t *testing.T) {
	db, _ := openTest(t, nil)
	const hour = int64(3600_000)
	base := int64(1_700_000_000_000) / (2 * hour) * (2 * hour)
	add := func(name string, ts ...int64) {
		t.Helper()
		app := db.Appender(context.Background())
		for _, ts := range ts {
			if _, err := app.Append(0, labels.FromStrings(labels.MetricName, name), base+ts, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	add("old", 0, 60_000)       // flushed into a partition below
	add("both", 30_000, 5*hour) // a partition and the head
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	add("new", 5*hour, 5*hour+60_000) // head only
	add("both", 5*hour+60_000)

	cases := []struct {
		name       string
		mint, maxt int64
		want       []string
	}{
		{"partition only", 0, hour, []string{"both", "old"}},
		{"head only", 4 * hour, 6 * hour, []string{"both", "new"}},
		{"everything", 0, 6 * hour, []string{"both", "new", "old"}},
		{"between", 2 * hour, 3 * hour, nil}, // partitions are cut at 2 h boundaries
		{"after", 7 * hour, 8 * hour, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := db.Querier(base+c.mint, base+c.maxt)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			hints := &storage.SelectHints{Start: base + c.mint, End: base + c.maxt, Func: "series"}
			ss := q.Select(t.Context(), false, hints, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
			var got []string
			for ss.Next() {
				s := ss.At()
				got = append(got, s.Labels().Get(labels.MetricName))
				if it := s.Iterator(nil); it.Next() != 0 {
					t.Errorf("%s: a series hint select returned samples", s.Labels())
				}
			}
			if err := ss.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
