package detect

import (
	"context"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"go.uber.org/goleak"

	"outpost/tsdb"
)

func TestMain(m *testing.M) {
	var opts []goleak.Option
	for _, f := range tsdb.LibraryGoroutines {
		opts = append(opts, goleak.IgnoreTopFunction(f))
	}
	goleak.VerifyTestMain(m, opts...)
}

// openLive opens a fresh TSDB in t.TempDir() with a Live engine observing it;
// both are closed at the end of the test, the engine first.
func openLive(t testing.TB, opts LiveOptions) (*tsdb.DB, *Live) {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	opts.Storage = db
	if opts.MetricTypes == nil {
		opts.MetricTypes = func() map[string]string {
			m := map[string]string{}
			for name, md := range db.Metadata() {
				m[name] = md.Type
			}
			return m
		}
	}
	l, err := NewLive(opts)
	if err != nil {
		t.Fatal(err)
	}
	db.SetObserver(l.Observe)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db, l
}

var liveStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// appendSeries writes one sample a minute of each series, value(series, minute),
// committing an hour at a time.
func appendSeries(t testing.TB, db *tsdb.DB, series []labels.Labels, minutes int, value func(s, i int) float64) {
	t.Helper()
	app := db.Appender(context.Background())
	for i := 0; i < minutes; i++ {
		ts := liveStart.Add(time.Duration(i) * time.Minute).UnixMilli()
		for s, ls := range series {
			if _, err := app.Append(0, ls, ts, value(s, i)); err != nil {
				t.Fatal(err)
			}
		}
		if i%60 == 59 || i == minutes-1 {
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			app = db.Appender(context.Background())
		}
	}
}

func syncLive(t testing.TB, l *Live) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// readSeries returns the samples of the one series matching ms, by timestamp.
func readSeries(t testing.TB, db *tsdb.DB, ms ...*labels.Matcher) map[int64]float64 {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, ms...)
	out := map[int64]float64{}
	n := 0
	for set.Next() {
		n++
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			ts, v := it.At()
			out[ts] = v
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%v matched %d series, want 1", ms, n)
	}
	return out
}

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

// A gauge that shifts level after three quiet days: the score series written
// back is low for the three days and high within minutes of the shift, the band
// is written, and the anomaly is listed with its explanation.
func TestLiveLevelShift(t *testing.T) {
	db, l := openLive(t, LiveOptions{WriteInterval: time.Minute})
	temp := labels.FromStrings(labels.MetricName, "room_temp", "room", "a")
	rng := rand.New(rand.NewPCG(3, 4))
	const shiftAt = 3 * 24 * 60
	appendSeries(t, db, []labels.Labels{temp}, shiftAt+60, func(_, i int) float64 {
		v := 20 + rng.NormFloat64()*0.5
		if i >= shiftAt {
			v += 15
		}
		return v
	})
	syncLive(t, l)

	scores := readSeries(t, db, eq(labels.MetricName, ScoreMetric), eq(MetricLabel, "room_temp"), eq("room", "a"))
	// One a minute: every sample's score is written once the detector is warm.
	if len(scores) != shiftAt+60-warmup {
		t.Fatalf("%d scores written for %d samples, want all but the %d of the warm-up", len(scores), shiftAt+60, warmup)
	}
	if first := slices.Min(slices.Collect(maps.Keys(scores))); first != liveStart.Add(warmup*time.Minute).UnixMilli() {
		t.Errorf("first score written at %v, want the first after the warm-up", time.UnixMilli(first).UTC())
	}
	shift := liveStart.Add(shiftAt * time.Minute).UnixMilli()
	var before, after float64
	var firstHigh int64
	for ts, v := range scores {
		if ts < shift {
			before = max(before, v)
		} else if ts < shift+10*60000 {
			after = max(after, v)
			if v >= AlertScore && (firstHigh == 0 || ts < firstHigh) {
				firstHigh = ts
			}
		}
	}
	if before >= AlertScore {
		t.Errorf("highest score in the three quiet days = %.2f, want < %.1f", before, AlertScore)
	}
	if after < AlertScore {
		t.Errorf("highest score in the 10 minutes after the shift = %.2f, want ≥ %.1f", after, AlertScore)
	}
	lower := readSeries(t, db, eq(labels.MetricName, LowerMetric), eq(MetricLabel, "room_temp"))
	upper := readSeries(t, db, eq(labels.MetricName, UpperMetric), eq(MetricLabel, "room_temp"))
	at := shift - 60000
	if lo, hi := lower[at], upper[at]; !(lo < 20 && hi > 20 && hi < 30) {
		t.Errorf("band before the shift = [%.2f, %.2f], want around 20", lo, hi)
	}

	list := l.Anomalies()
	if len(list) != 1 {
		t.Fatalf("anomalies = %+v, want the one shifted series", list)
	}
	a := list[0]
	if a.Metric != "room_temp" || !a.Active || a.Score < AlertScore || a.Since.UnixMilli() != firstHigh {
		t.Errorf("anomaly = %+v, want room_temp active since %v", a, time.UnixMilli(firstHigh))
	}
	if a.Selector != `room_temp{room="a"}` {
		t.Errorf("selector = %q", a.Selector)
	}
	if !strings.Contains(a.Explanation, "room_temp") || !strings.Contains(a.Explanation, "expected") || math.Abs(a.Value-35) > 3 {
		t.Errorf("explanation %q, value %.2f", a.Explanation, a.Value)
	}
	if md := db.Metadata()[ScoreMetric]; md.Type != "gauge" || md.Help == "" {
		t.Errorf("metadata of %s = %+v, want a gauge with help", ScoreMetric, md)
	}
	st := l.Stats()
	if st.Tracked != 1 || st.Dropped != 0 || st.WriteErrors != 0 || st.Processed < shiftAt {
		t.Errorf("stats = %+v: want one tracked series (its own output skipped), nothing dropped", st)
	}
}

// A counter rising steadily is watched through its rate and stays quiet, whether
// its name says so (_total) or only its metadata does; a gauge doing the same
// leaves the range it has seen on every sample. A rate change is found.
func TestLiveCountersThroughRate(t *testing.T) {
	db, l := openLive(t, LiveOptions{WriteInterval: -1})
	byName := labels.FromStrings(labels.MetricName, "jobs_total", "q", "x")
	byMeta := labels.FromStrings(labels.MetricName, "jobs_done", "q", "x")
	gauge := labels.FromStrings(labels.MetricName, "jobs_level", "q", "x")
	app := db.Appender(context.Background())
	app.(storage.MetadataUpdater).UpdateMetadata(0, byMeta, metadata.Metadata{Type: model.MetricTypeCounter})
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var total float64
	const change = 2 * 24 * 60
	appendSeries(t, db, []labels.Labels{byName, byMeta, gauge}, change+30, func(s, i int) float64 {
		if s == 0 {
			rate := 5.0
			if i >= change {
				rate = 50
			}
			total += rate*60 + rng.NormFloat64()*10
		}
		return total
	})
	syncLive(t, l)
	change0 := liveStart.Add(change * time.Minute).UnixMilli()
	for _, c := range []struct {
		name        string
		wantQuiet   bool
		wantChanged bool
	}{{"jobs_total", true, true}, {"jobs_done", true, true}, {"jobs_level", false, false}} {
		var before, after float64
		for ts, v := range readSeries(t, db, eq(labels.MetricName, ScoreMetric), eq(MetricLabel, c.name)) {
			if ts < change0 {
				before = max(before, v)
			} else {
				after = max(after, v)
			}
		}
		if quiet := before < AlertScore; quiet != c.wantQuiet {
			t.Errorf("%s: highest score before the rate change = %.2f, want quiet=%v", c.name, before, c.wantQuiet)
		}
		if c.wantChanged && after < AlertScore {
			t.Errorf("%s: highest score after the rate change = %.2f, want ≥ %.1f", c.name, after, AlertScore)
		}
	}
}

// Ingest never waits: a batch that does not fit is dropped and counted.
func TestLiveQueueDropsWhenFull(t *testing.T) {
	_, l := openLive(t, LiveOptions{QueueSamples: 10})
	ls := labels.FromStrings(labels.MetricName, "x")
	batch := make([]tsdb.ObservedSample, 11)
	for i := range batch {
		batch[i] = tsdb.ObservedSample{Labels: ls, T: liveStart.UnixMilli() + int64(i)*1000, V: 1}
	}
	l.Observe(slices.Clone(batch)) // the observer owns what it is given
	l.Observe(batch[:5])
	syncLive(t, l)
	if st := l.Stats(); st.Dropped != 11 || st.Processed != 5 || st.Queued != 0 {
		t.Errorf("stats = %+v, want 11 dropped and 5 processed", st)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collectors()...)
	if err := promtest.GatherAndCompare(reg, strings.NewReader(`
# HELP outpost_detect_dropped_samples_total Metric samples not scored because the detector's queue was full.
# TYPE outpost_detect_dropped_samples_total counter
outpost_detect_dropped_samples_total 11
`), "outpost_detect_dropped_samples_total"); err != nil {
		t.Error(err)
	}
}

// The number of series watched is capped, the samples of series refused are
// counted, idle ones are dropped and make room for the refused, and samples
// observed after Close are ignored.
func TestLiveCapAndIdle(t *testing.T) {
	db, l := openLive(t, LiveOptions{MaxSeries: 3, IdleAfter: 10 * time.Minute})
	var series []labels.Labels
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		series = append(series, labels.FromStrings(labels.MetricName, "g", "s", n))
	}
	appendSeries(t, db, series, 5, func(s, i int) float64 { return float64(s + i) })
	syncLive(t, l)
	if st := l.Stats(); st.Tracked != 3 || st.Untracked != 10 {
		t.Errorf("tracked %d series, %d samples untracked; want the cap of 3, and 10", st.Tracked, st.Untracked)
	}
	// An hour later only one series still sends, one refused before: the
	// others go idle.
	app := db.Appender(context.Background())
	app.Append(0, series[4], liveStart.Add(time.Hour).UnixMilli(), 1)
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	syncLive(t, l)
	if n := l.Stats().Tracked; n != 1 {
		t.Errorf("tracked %d series after the others went idle, want 1", n)
	}
	// Another refused before has room now.
	app = db.Appender(context.Background())
	app.Append(0, series[3], liveStart.Add(time.Hour+time.Second).UnixMilli(), 1)
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	syncLive(t, l)
	if st := l.Stats(); st.Tracked != 2 || st.Untracked != 10 {
		t.Errorf("tracked %d series, %d samples untracked; want 2 and 10", st.Tracked, st.Untracked)
	}
	l.Close()
	l.Observe([]tsdb.ObservedSample{{Labels: series[0], T: liveStart.Add(2 * time.Hour).UnixMilli(), V: 1}})
	if st := l.Stats(); st.Queued != 0 || st.Tracked != 2 {
		t.Errorf("after Close: %+v", st)
	}
}

func TestSelector(t *testing.T) {
	for _, c := range []struct {
		lset labels.Labels
		want string
	}{
		{labels.FromStrings(labels.MetricName, "up"), "up"},
		{labels.FromStrings(labels.MetricName, "up", "job", `a"b`), `up{job="a\"b"}`},
		{labels.FromStrings(labels.MetricName, "http.requests", "job", "x"), `{__name__="http.requests", job="x"}`},
	} {
		if got := Selector(c.lset); got != c.want {
			t.Errorf("Selector(%v) = %s, want %s", c.lset, got, c.want)
		}
	}
}

func TestNewLiveNeedsStorage(t *testing.T) {
	if _, err := NewLive(LiveOptions{}); err == nil {
		t.Fatal("NewLive without storage: no error")
	}
}

// While a series is normal its score and band are written once per
// WriteInterval; every sample of an anomalous stretch is written.
func TestLiveWriteInterval(t *testing.T) {
	db, l := openLive(t, LiveOptions{WriteInterval: 10 * time.Minute})
	ls := labels.FromStrings(labels.MetricName, "q_depth")
	const shiftAt = 24 * 60
	appendSeries(t, db, []labels.Labels{ls}, shiftAt+20, func(_, i int) float64 {
		if i >= shiftAt {
			return 500
		}
		return 10 + float64(i%3)
	})
	syncLive(t, l)
	scores := readSeries(t, db, eq(labels.MetricName, ScoreMetric), eq(MetricLabel, "q_depth"))
	shift := liveStart.Add(shiftAt * time.Minute).UnixMilli()
	normal := 0
	for ts := range scores {
		if ts < shift {
			normal++
			if (ts-liveStart.UnixMilli())%(10*60000) != 0 {
				t.Errorf("score written at %v, off the 10-minute grid", time.UnixMilli(ts).UTC())
			}
		}
	}
	if want := (shiftAt - warmup) / 10; normal != want { // from the end of the warm-up
		t.Errorf("%d scores written in the normal day, want %d", normal, want)
	}
	if _, ok := scores[shift]; !ok {
		t.Errorf("the first anomalous sample's score was not written")
	}
}

// With the default WriteInterval (PromQL's lookback of five minutes), the score
// and band of a normal series are written about once per interval, but never so
// far apart that PromQL would show them as stale between two writes (a sample
// is seen for five minutes after its time, not at five minutes), even when the
// samples come a little late or early.
func TestLiveWritesKeepSeriesFresh(t *testing.T) {
	const lookback = 5 * time.Minute
	for _, c := range []struct {
		name       string
		every      time.Duration // between samples, before jitter
		jitter     time.Duration // each sample up to this much late or early
		resolution time.Duration
		// At least this many samples per write of a normal series.
		minPerWrite float64
	}{
		{"60s", time.Minute, 0, 0, 5},
		{"60s ± 2s", time.Minute, 2 * time.Second, 0, 4},
		{"15s ± 1s", 15 * time.Second, time.Second, 0, 16},
		{"60s ± 2s, every sample scored", time.Minute, 2 * time.Second, -1, 3.5},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, l := openLive(t, LiveOptions{Resolution: c.resolution})
			ls := labels.FromStrings(labels.MetricName, "disk_used_bytes", "disk", "sda")
			rng := rand.New(rand.NewPCG(11, 12))
			n := int(24 * time.Hour / c.every)
			app := db.Appender(context.Background())
			for i := range n {
				at := liveStart.Add(time.Duration(i) * c.every)
				if c.jitter > 0 {
					at = at.Add(time.Duration(rng.Int64N(int64(2*c.jitter))) - c.jitter)
				}
				if _, err := app.Append(0, ls, at.UnixMilli(), 500+rng.NormFloat64()*5); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			syncLive(t, l)
			for _, name := range []string{ScoreMetric, LowerMetric, UpperMetric} {
				written := readSeries(t, db, eq(labels.MetricName, name), eq(MetricLabel, "disk_used_bytes"))
				ts := slices.Sorted(maps.Keys(written))
				for i := 1; i < len(ts); i++ {
					if gap := time.Duration(ts[i]-ts[i-1]) * time.Millisecond; gap > lookback {
						t.Fatalf("%s: no sample from %v to %v (%v): PromQL shows the series as stale", name,
							time.UnixMilli(ts[i-1]).UTC(), time.UnixMilli(ts[i]).UTC(), gap)
					}
				}
				if per := float64(n) / float64(len(ts)); per < c.minPerWrite {
					t.Errorf("%s: %d samples written for %d samples: one per %.1f, want one per %.1f or more", name, len(ts), n, per, c.minPerWrite)
				}
			}
			if list := l.Anomalies(); len(list) != 0 {
				t.Errorf("anomalies in plain noise: %+v", list)
			}
		})
	}
}

// appendableOnly hides a DB's AppendDerived, so that Live writes through appenders.
type appendableOnly struct{ storage.Appendable }

// The scores and bands written through the TSDB's AppendDerived (the path a
// *tsdb.DB gets) are exactly those written through its Prometheus appender.
// Written through AppendDerived they never reach the observer; through the
// appender they do, as whole batches the engine knows as its own.
func TestLiveAppendDerivedMatchesAppender(t *testing.T) {
	var series []labels.Labels
	for i := range 30 {
		series = append(series, labels.FromStrings(labels.MetricName, "load", "host", string(rune('a'+i%26)), "n", strings.Repeat("x", i/26+1)))
	}
	const minutes = 2 * 24 * 60
	value := func(s, i int) float64 {
		v := float64(10*s) + float64((i*7+s)%5)
		if s%3 == 0 && i >= minutes-90 && i < minutes-30 { // a stretch of anomalies
			v += 1000
		}
		return v
	}
	read := func(db *tsdb.DB) map[string]map[int64]float64 {
		q, err := db.Querier(math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, "outpost_.*"))
		out := map[string]map[int64]float64{}
		for set.Next() {
			m := map[int64]float64{}
			it := set.At().Iterator(nil)
			for it.Next() != 0 {
				ts, v := it.At()
				m[ts] = v
			}
			out[set.At().Labels().String()] = m
		}
		if err := set.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	run := func(wrap bool) (map[string]map[int64]float64, LiveStats) {
		db, err := tsdb.Open(t.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		opts := LiveOptions{Storage: db}
		if wrap {
			opts.Storage = appendableOnly{db}
		}
		l, err := NewLive(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var own, missed int
		db.SetObserver(func(b []tsdb.ObservedSample) {
			if strings.HasPrefix(b[0].Labels.Get(labels.MetricName), "outpost_") {
				own++
				if o := l.own.Load(); o == nil || !o.is(b) {
					missed++
				}
			}
			l.Observe(b)
		})
		appendSeries(t, db, series, minutes, value)
		syncLive(t, l)
		switch {
		case !wrap && own > 0:
			t.Errorf("the observer saw %d of the engine's writes through AppendDerived", own)
		case wrap && (own == 0 || missed > 0):
			t.Errorf("%d of the engine's %d writes were not recognised as its own", missed, own)
		}
		return read(db), l.Stats()
	}
	bulk, bst := run(false)
	plain, pst := run(true)
	if bst.Written == 0 || bst.WriteErrors != 0 || bst.Written != pst.Written || bst.Anomalies == 0 || bst.Anomalies != pst.Anomalies {
		t.Fatalf("stats: AppendDerived %+v, appender %+v", bst, pst)
	}
	if len(bulk) != 3*len(series) || len(plain) != len(bulk) {
		t.Fatalf("%d output series through AppendDerived, %d through the appender, want %d", len(bulk), len(plain), 3*len(series))
	}
	for k, want := range plain {
		got := bulk[k]
		if len(got) != len(want) {
			t.Fatalf("%s: %d samples through AppendDerived, %d through the appender", k, len(got), len(want))
		}
		for ts, v := range want {
			if g, ok := got[ts]; !ok || math.Float64bits(g) != math.Float64bits(v) {
				t.Fatalf("%s at %d: %v through AppendDerived, %v through the appender", k, ts, g, v)
			}
		}
	}
}

// Series sampled more often than LiveOptions.Resolution are scored once per
// bucket, on the mean of a gauge's samples and the latest value of a counter's;
// series sampled less often are scored on every sample, and a negative
// Resolution scores every sample.
func TestLiveResolution(t *testing.T) {
	const hours = 6
	for _, c := range []struct {
		name       string
		resolution time.Duration
		every      time.Duration
		counter    bool
		wantScored int64
		// The scores are written at this offset within each minute (for the
		// rows scored once a minute).
		wantAt time.Duration
		// The band's width at the end: narrow when the detector sees the
		// minute's mean (or a counter's rate over the minute), wide when it
		// sees the alternating samples themselves.
		wantNarrow bool
	}{
		{"15s gauge, default", 0, 15 * time.Second, false, hours * 60, 45 * time.Second, true},
		{"15s gauge, every sample", -1, 15 * time.Second, false, hours * 240, -1, false},
		{"15s counter, default", 0, 15 * time.Second, true, hours * 60, 45 * time.Second, true},
		{"60s gauge, default", 0, time.Minute, false, hours * 60, 0, false},
		{"90s gauge, default", 0, 90 * time.Second, false, hours * 40, -1, false},
		{"30s gauge, 5 minutes", 5 * time.Minute, 30 * time.Second, false, hours * 12, 270 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, l := openLive(t, LiveOptions{Resolution: c.resolution, WriteInterval: -1})
			name := "pool_size"
			if c.counter {
				name = "pool_ops_total"
			}
			ls := labels.FromStrings(labels.MetricName, name)
			app := db.Appender(context.Background())
			n := int(hours * time.Hour / c.every)
			total := 0.0
			for i := range n {
				// Gauge: 0, 100, 0, 100, …; counter: alternately 0 and 100
				// added, 50 per sample on average.
				v := float64(i%2) * 100
				if c.counter {
					total += v
					v = total
				}
				if _, err := app.Append(0, ls, liveStart.Add(time.Duration(i)*c.every).UnixMilli(), v); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			syncLive(t, l)
			if st := l.Stats(); st.Scored != c.wantScored || st.Processed != int64(n) {
				t.Errorf("scored %d times for %d samples, want %d", st.Scored, st.Processed, c.wantScored)
			}
			scores := readSeries(t, db, eq(labels.MetricName, ScoreMetric), eq(MetricLabel, name))
			var latest int64
			for ts := range scores {
				latest = max(latest, ts)
				if c.wantAt >= 0 && (ts-liveStart.UnixMilli())%time.Minute.Milliseconds() != c.wantAt.Milliseconds()%time.Minute.Milliseconds() {
					t.Fatalf("score written at %v, want %v past a minute", time.UnixMilli(ts).UTC(), c.wantAt)
				}
			}
			lower := readSeries(t, db, eq(labels.MetricName, LowerMetric), eq(MetricLabel, name))[latest]
			upper := readSeries(t, db, eq(labels.MetricName, UpperMetric), eq(MetricLabel, name))[latest]
			if narrow := upper-lower < 20; narrow != c.wantNarrow {
				t.Errorf("band at the end [%.2f, %.2f], want narrow=%v", lower, upper, c.wantNarrow)
			}
		})
	}
}

// A bucket is scored once: when a sample of a later bucket comes, or at once
// when the latest interval says the next sample will be in a later one; a
// sample that then still falls in it is not scored. Buckets before the Unix
// epoch are never scored.
func TestLiveAggBuckets(t *testing.T) {
	const res = 60000 // ms
	type step struct {
		t, v       float64 // seconds, value
		wantScored int64   // detector runs so far
		wantAt     float64 // seconds: the time of the latest run
	}
	for _, c := range []struct {
		name   string
		firstV float64 // the value of the first run: the mean of its bucket
		steps  []step
	}{
		{"scored once per bucket", 3, []step{
			{10, 1, 0, 0},
			{25, 2, 0, 0},    // the next sample, 15 s later, is still in this minute
			{50, 6, 1, 50},   // the next one, 25 s later, is not: scored now
			{55, 9, 1, 50},   // the interval shrank: this minute is scored already
			{70, 1, 1, 50},   // 15 s apart again
			{130, 1, 3, 130}, // a later minute: 70 s is scored, then 130 s at once
			{135, 1, 3, 130}, // in a scored minute
			{300, 1, 4, 300}, // 165 s later: at once
			{301, 1, 4, 300}, // scored minute
			{361, 1, 5, 361}, // a minute after 301: at once
		}},
		{"before the epoch", 2, []step{
			{-30, 5, 0, 0},
			{-10, 5, 0, 0}, // the next one is in a later minute, but this one is before 1970
			{20, 1, 0, 0},  // 30 s apart: the next one is in this minute
			{50, 3, 1, 50}, // 80 s is not: scored now
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, e := &Live{}, &setEntry{}
			for i, st := range c.steps {
				ms := int64(st.t * 1000)
				l.add(e, &tsdb.ObservedSample{T: ms, V: st.v}, res)
				if l.scored != st.wantScored || st.wantScored > 0 && e.d.last != int64(st.wantAt*1e9) {
					t.Fatalf("after sample %d at %vs: %d runs, the latest at %vs; want %d, at %vs",
						i, st.t, l.scored, float64(e.d.last)/1e9, st.wantScored, st.wantAt)
				}
				if l.scored == 1 && e.d.mean != c.firstV { // the first value seen is the mean's start
					t.Fatalf("first run on %v, want %v", e.d.mean, c.firstV)
				}
			}
		})
	}
}

// The band is written rounded outward to a short decimal, at most 1% of its
// width from the detector's.
func TestRoundBand(t *testing.T) {
	for _, c := range []struct {
		lower, upper, wantLower, wantUpper float64
	}{
		{996749725.87527466, 1003275969.0556374, 996740000, 1003280000},
		{19.123456, 20.876543, 19.12, 20.88},
		{-5.4321, -1.2345, -5.44, -1.23},
		{0.0312, 0.0687, 0.0312, 0.0687},
		{1.5e-7, 2.25e-7, 1.5e-7, 2.25e-7},
		{3, 3, 3, 3},                                 // no width: kept
		{1e-40, 2e-40, 1e-40, 2e-40},                 // too narrow for an exact power of ten: kept
		{1e300, 1e300 + 1e285, 1e300, 1e300 + 1e285}, // a huge level: kept, never infinite
		{1e10, 1e10 + 1e-6, 1e10, 1e10 + 1e-6},       // digits the scaling would lose: kept
	} {
		lo, hi := roundBand(c.lower, c.upper)
		if lo != c.wantLower || hi != c.wantUpper {
			t.Errorf("roundBand(%v, %v) = %v, %v; want %v, %v", c.lower, c.upper, lo, hi, c.wantLower, c.wantUpper)
		}
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for range 10000 {
		mid := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(24)-12))
		w := math.Abs(mid) * (0.01 + rng.Float64()) // at least 1% of the values
		lower, upper := mid-w/2, mid+w/2
		lo, hi := roundBand(lower, upper)
		slack := 1e-12 * math.Max(math.Abs(lower), math.Abs(upper)) // the float nearest to a decimal
		if lo > lower+slack || hi < upper-slack || lower-lo > w/100+slack || hi-upper > w/100+slack {
			t.Fatalf("roundBand(%v, %v) = %v, %v: not outward within 1%% of the width", lower, upper, lo, hi)
		}
		for _, v := range []float64{lo, hi} {
			mantissa, _, _ := strings.Cut(strconv.FormatFloat(math.Abs(v), 'e', -1, 64), "e")
			if digits := len(strings.ReplaceAll(mantissa, ".", "")); digits > 6 {
				t.Fatalf("roundBand(%v, %v) = %v, %v: %v is not a short decimal", lower, upper, lo, hi, v)
			}
		}
	}
}

// Observe skips the engine's own write of scores and bands, and only it.
func TestOwnBatch(t *testing.T) {
	score := labels.FromStrings(labels.MetricName, ScoreMetric, MetricLabel, "x")
	lower := labels.FromStrings(labels.MetricName, LowerMetric, MetricLabel, "x")
	other := labels.FromStrings(labels.MetricName, "x")
	written := []tsdb.RefSample{{Ref: 1, T: 100, V: 0}, {Ref: 2, T: 100, V: 1.5}, {Ref: 1, T: 160, V: 0.25}}
	own := newOwnBatch(written)
	observed := func(lsets ...labels.Labels) []tsdb.ObservedSample {
		var out []tsdb.ObservedSample
		for i, ls := range lsets {
			out = append(out, tsdb.ObservedSample{Labels: ls, Ref: uint64(written[i].Ref), T: written[i].T, V: written[i].V})
		}
		return out
	}
	for _, c := range []struct {
		name  string
		batch []tsdb.ObservedSample
		want  bool
	}{
		{"the write", observed(score, lower, score), true},
		{"the write grouped by series, as the TSDB hands it over", []tsdb.ObservedSample{
			{Labels: score, Ref: 1, T: 100, V: 0}, {Labels: score, Ref: 1, T: 160, V: 0.25}, {Labels: lower, Ref: 2, T: 100, V: 1.5}}, true},
		{"part of it (a sample refused)", observed(score, lower), false},
		{"ingest's samples at the same times and values", observed(other, other, other), false},
		{"another value", append(observed(score, lower), tsdb.ObservedSample{Labels: score, Ref: 1, T: 160, V: 0.5}), false},
		{"another time", append(observed(score, lower), tsdb.ObservedSample{Labels: score, Ref: 1, T: 161, V: 0.25}), false},
	} {
		if got := own.is(c.batch); got != c.want {
			t.Errorf("%s: is = %v, want %v", c.name, got, c.want)
		}
	}
}

// The verdicts are kept by ref across pages, and forgotten past filterMemory
// pages.
func TestFilterVerdicts(t *testing.T) {
	var v verdicts
	set := map[uint64]bool{1: true, 63: false, 64: true, verdictPageRefs - 1: true, verdictPageRefs: false, verdictPageRefs + 1: true, 1 << 40: true}
	for ref, m := range set {
		v.set(ref, m)
	}
	for _, ref := range []uint64{0, 1, 2, 63, 64, 65, verdictPageRefs - 1, verdictPageRefs, verdictPageRefs + 1, 3 * verdictPageRefs, 1 << 40, 1<<40 + 1} {
		want, wantKnown := set[ref]
		if m, known := v.get(ref); m != want || known != wantKnown {
			t.Errorf("ref %d: match %v, known %v; want %v, %v", ref, m, known, want, wantKnown)
		}
	}
	for i := range uint64(filterMemory + 1) {
		v.set(i*verdictPageRefs+5, true)
	}
	if n := len(v.pages); n > filterMemory {
		t.Errorf("%d pages kept, want at most %d", n, filterMemory)
	}
	if m, known := v.get(filterMemory*verdictPageRefs + 5); !m || !known {
		t.Error("the latest verdict was forgotten")
	}
}

// TestAnomalyListBounded: the anomaly list never holds more than
// MaxAnomalies; making room drops the ended anomalies first, those that ended
// first before others, and then the lowest scored.
func TestAnomalyListBounded(t *testing.T) {
	l := &Live{anomalies: map[uint64]*Anomaly{}, opts: LiveOptions{MaxAnomalies: 16}}
	at := time.Unix(1_700_000_000, 0)
	alert := func(id uint64, score float64) {
		l.noteLocked(id, labels.FromStrings("id", strconv.FormatUint(id, 10)), "m", false,
			Result{Time: at, Score: score, Value: 1, Expected: 0, Lower: -1, Upper: 1, Since: at})
	}
	for id := range uint64(16) {
		alert(id, 0.9+float64(id)/1000) // id 0 scores lowest
	}
	for id := range uint64(4) { // 0..3 end, 3 first
		l.noteLocked(id, labels.EmptyLabels(), "m", false, Result{Time: at.Add(time.Duration(10-id) * time.Minute), Score: 0.1})
	}
	for id := uint64(100); id < 106; id++ {
		alert(id, 0.99)
		if len(l.anomalies) > 16 {
			t.Fatalf("%d anomalies listed, cap 16", len(l.anomalies))
		}
	}
	for id := range uint64(4) {
		if l.anomalies[id] != nil {
			t.Errorf("ended anomaly %d kept", id)
		}
	}
	// Six new ones came; four ended ones and the lowest scored active ones
	// made room, an eighth of the cap (two) at a time.
	for _, id := range []uint64{4, 5} {
		if l.anomalies[id] != nil {
			t.Errorf("active anomaly %d, among the lowest scored, kept", id)
		}
	}
	for id := uint64(6); id < 16; id++ {
		if l.anomalies[id] == nil {
			t.Errorf("active anomaly %d dropped", id)
		}
	}
	for id := uint64(100); id < 106; id++ {
		if l.anomalies[id] == nil {
			t.Errorf("new anomaly %d not listed", id)
		}
	}
}

// TestLiveOutputSeriesCollected: retention deletes the last samples of a
// watched series' output series (its scores were held back past a partition
// boundary) while the series itself lives on, so the TSDB removes the output
// series from memory and the engine's refs to them become unknown. The next
// write fails once; the engine then writes by labels again.
func TestLiveOutputSeriesCollected(t *testing.T) {
	now := liveStart.Add(2*time.Hour + 5*time.Minute)
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: 6 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLive(LiveOptions{Storage: db, Resolution: -1, IdleAfter: 100 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	db.SetObserver(l.Observe)
	t.Cleanup(func() {
		l.Close()
		db.Close()
	})
	g := labels.FromStrings(labels.MetricName, "g", "host", "a")
	write := func(at time.Time, v float64) {
		t.Helper()
		app := db.Appender(context.Background())
		if _, err := app.Append(0, g, at.UnixMilli(), v); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		syncLive(t, l)
	}
	// One sample a minute until 01:58, then one at 02:01: the scores of 01:58
	// and 02:01 are normal and held back, so the output series' last samples
	// are before 02:00 and the series' own last one after.
	for i := range 119 {
		write(liveStart.Add(time.Duration(i)*time.Minute), 10+float64(i%7))
	}
	write(liveStart.Add(2*time.Hour+time.Minute), 12)
	score := []*labels.Matcher{eq(labels.MetricName, ScoreMetric), eq(MetricLabel, "g")}
	var last int64
	for ts := range readSeries(t, db, score...) {
		last = max(last, ts)
	}
	if boundary := liveStart.Add(2 * time.Hour).UnixMilli(); last == 0 || last >= boundary {
		t.Fatalf("latest score at %v, want one before %v", time.UnixMilli(last).UTC(), time.UnixMilli(boundary).UTC())
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	// At 08:00 the retention of 6 h deletes the partition of 00:00–02:00 but
	// keeps the one holding the series' sample of 02:01.
	now = liveStart.Add(8 * time.Hour)
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.SeriesCollected != 3 || st.Series != 1 {
		t.Fatalf("after retention: %d series, %d collected; want 1 and 3", st.Series, st.SeriesCollected)
	}
	write(now, 11)
	if st := l.Stats(); st.WriteErrors != 1 {
		t.Fatalf("write errors after the output series went: %d, want 1", st.WriteErrors)
	}
	write(now.Add(time.Minute), 13)
	write(now.Add(10*time.Minute), 12)
	if st := l.Stats(); st.WriteErrors != 1 {
		t.Fatalf("write errors: %d, want still 1", st.WriteErrors)
	}
	got := readSeries(t, db, score...)
	if len(got) == 0 {
		t.Fatal("no score written after the output series were collected")
	}
	for ts := range got {
		if ts < now.UnixMilli() {
			t.Fatalf("score at %v survived retention", time.UnixMilli(ts).UTC())
		}
	}
}
