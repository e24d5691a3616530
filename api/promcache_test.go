package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"outpost/tsdb"
)

// cacheQueries are range queries of every shape the cache meets: rates, sums,
// rankings, native histograms, subqueries, offsets, functions of the step's
// time, and two it must not cache (an @ modifier, a negative offset).
var cacheQueries = []string{
	`rate(reqs_total[2m])`,
	`sum by (job) (rate(reqs_total[5m]))`,
	`topk(2, reqs_total)`,
	`histogram_quantile(0.9, sum by (job) (rate(lat_seconds[5m])))`,
	`max_over_time(rate(reqs_total[1m])[10m:1m])`,
	`reqs_total offset 3m`,
	`avg_over_time(temp[5m]) - temp`,
	`time() - timestamp(temp)`,
	`absent(reqs_total{job="nope"})`,
	`count(reqs_total) * scalar(temp{room="a"})`,
	`reqs_total @ end()`,
	`temp offset -2m`,
}

// TestRangeCacheMatchesEngine asks a cached and an uncached API over the same
// DB the same range queries, over random overlapping ranges and grids, while
// samples are written between the rounds: late samples in ranges answered
// before, a new series backfilled into the past, new samples at the end. Every
// answer must be byte for byte the engine's own.
func TestRangeCacheMatchesEngine(t *testing.T) {
	db := openDB(t)
	rng := rand.New(rand.NewPCG(3, 5))
	addSamples := func(from, to int, jobs int) {
		t.Helper()
		app := db.Appender(context.Background())
		for i := from; i < to; i++ {
			ts := ms(time.Duration(i) * 15 * time.Second)
			for j := range jobs {
				for inst := range 3 {
					ls := labels.FromStrings("__name__", "reqs_total", "job", fmt.Sprint("j", j), "instance", fmt.Sprint("h", inst))
					if _, err := app.Append(0, ls, ts, float64(i*(inst+1))+float64(j)); err != nil {
						t.Fatal(err)
					}
				}
				h := &histogram.FloatHistogram{
					Count: float64(10 * i), Sum: float64(25 * i), ZeroThreshold: 1e-128,
					PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
					PositiveBuckets: []float64{float64(2 * i), float64(5 * i), float64(3 * i)},
				}
				if _, err := app.AppendHistogram(0, labels.FromStrings("__name__", "lat_seconds", "job", fmt.Sprint("j", j)), ts, nil, h); err != nil {
					t.Fatal(err)
				}
			}
			for _, room := range []string{"a", "b"} {
				if _, err := app.Append(0, labels.FromStrings("__name__", "temp", "room", room), ts, 20+rng.Float64()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	addSamples(0, 240, 2) // one hour

	cached, plain := http.NewServeMux(), http.NewServeMux()
	pc := NewPrometheus(db, PromOptions{})
	pc.splitInto(2) // split queries whatever the cores here
	pc.Register(cached.Handle)
	NewPrometheus(db, PromOptions{CacheBytes: -1}).Register(plain.Handle)

	end := 240 // samples written so far, in 15 s steps
	prev := map[string][3]int{}
	asked := int64(0)
	for round := range 60 {
		switch round % 10 {
		case 3: // a late sample inside what was answered
			app := db.Appender(context.Background())
			ts := ms(time.Duration(rng.IntN(end))*15*time.Second + 7*time.Second)
			if _, err := app.Append(0, labels.FromStrings("__name__", "temp", "room", "a"), ts, 100); err != nil {
				t.Fatal(err)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		case 6: // a new series backfilled into the past
			app := db.Appender(context.Background())
			ls := labels.FromStrings("__name__", "reqs_total", "job", fmt.Sprint("late", round), "instance", "h0")
			for i := rng.IntN(end / 2); i < end; i += 3 {
				if _, err := app.Append(0, ls, ms(time.Duration(i)*15*time.Second), float64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		case 9: // time goes on
			addSamples(end, end+20, 2)
			end += 20
		}
		for range 4 {
			q := cacheQueries[rng.IntN(len(cacheQueries))]
			step := []int{15, 30, 60}[rng.IntN(3)]
			// Ranges on the step's grid, as Grafana asks, so that they meet;
			// half of them the query's previous range moved a few steps, as
			// a dashboard's refresh or a panned graph asks.
			lo := rng.IntN(end*15/step) * step
			hi := lo + rng.IntN(end*15-lo+600)/step*step
			if pr, ok := prev[q]; ok && rng.IntN(2) == 0 {
				step = pr[2]
				shift := (rng.IntN(9) - 3) * step
				lo, hi = pr[0]+shift, pr[1]+shift
			}
			prev[q] = [3]int{lo, hi, step}
			form := url.Values{
				"query": {q},
				"start": {fmt.Sprint(base.Unix() + int64(lo))},
				"end":   {fmt.Sprint(base.Unix() + int64(hi))},
				"step":  {fmt.Sprint(step)},
			}
			for again := range 2 {
				asked += int64((hi-lo)/step + 1)
				if got, want := rangeGet(cached, form), rangeGet(plain, form); got != want {
					t.Fatalf("round %d (%d), %v:\ncached: %.600s\nengine: %.600s", round, again, form, got, want)
				}
			}
		}
	}
	// Every range was asked twice in a row, and ranges meet: the cache must
	// have spared the engine most of the work, or this test proves nothing.
	for _, r := range []string{"hit", "partial", "miss", "uncacheable"} {
		t.Log(r, testutil.ToFloat64(pc.cache.results.WithLabelValues(r)))
	}
	if ev := pc.cache.evaluated.Load(); ev > asked/2 {
		t.Fatalf("the cache evaluated %d of %d steps asked: it is hardly used", ev, asked)
	}
}

// TestRangeCacheSkipsWhatItCannotKeep: queries with an @ modifier or a negative
// offset, and answers with annotations, are evaluated every time.
func TestRangeCacheSkipsWhatItCannotKeep(t *testing.T) {
	e := newProm(t, PromOptions{})
	p := NewPrometheus(e.db, PromOptions{})
	mux := http.NewServeMux()
	p.Register(mux.Handle)
	for _, q := range []string{
		`http_requests_total @ end()`,
		`http_requests_total offset -1m`,
		`histogram_quantile(0.9, http_requests_total)`, // a warning: no le label
	} {
		for range 2 {
			form := url.Values{"query": {q}, "start": {fmt.Sprint(base.Unix())}, "end": {fmt.Sprint(base.Unix() + 600)}, "step": {"60"}}
			if got := rangeGet(mux, form); !strings.HasPrefix(got, "200 ") {
				t.Fatalf("%s: %s", q, got)
			}
		}
		if n := len(p.cache.entries); n != 0 {
			t.Errorf("%s: %d entries kept", q, n)
		}
	}
}

// TestRangeCacheForgetsRemovedPartitions: a partition removed (here by
// retention) changes answers over its time, and the cache must not keep them.
func TestRangeCacheForgetsRemovedPartitions(t *testing.T) {
	now := base.Add(time.Hour)
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{Retention: 2 * time.Hour, OutOfOrderWindow: 1 << 62, MaintenanceInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := db.Appender(context.Background())
	for i := 0; i < 3*240; i++ { // three hours
		if _, err := app.Append(0, labels.FromStrings("__name__", "g"), ms(time.Duration(i)*15*time.Second), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	cached, plain := http.NewServeMux(), http.NewServeMux()
	NewPrometheus(db, PromOptions{}).Register(cached.Handle)
	NewPrometheus(db, PromOptions{CacheBytes: -1}).Register(plain.Handle)
	form := url.Values{"query": {"count_over_time(g[1h])"}, "start": {fmt.Sprint(base.Unix())}, "end": {fmt.Sprint(base.Add(3 * time.Hour).Unix())}, "step": {"600"}}
	ask := func(h http.Handler) string { return rangeGet(h, form) }
	before := ask(cached)
	now = base.Add(5 * time.Hour) // what ends before 3 h falls out of the retention
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	after := ask(cached)
	if after == before {
		t.Fatalf("the same answer after retention removed partitions: %s", after)
	}
	if want := ask(plain); after != want {
		t.Fatalf("after retention: cached %s, engine %s", after, want)
	}
}

// TestRangeCacheUnderConcurrentWrites: queries answered while late samples are
// written into their ranges must not leave answers in the cache that those
// samples made wrong. Once the writes stop, every range asked again must get
// the engine's answer.
func TestRangeCacheUnderConcurrentWrites(t *testing.T) {
	db := openDB(t)
	writeCounters(t, db, 20)
	cached, plain := http.NewServeMux(), http.NewServeMux()
	NewPrometheus(db, PromOptions{}).Register(cached.Handle)
	NewPrometheus(db, PromOptions{CacheBytes: -1}).Register(plain.Handle)
	var forms []url.Values
	for _, q := range []string{`sum(rate(reqs_total[2m]))`, `max_over_time(reqs_total[5m])`, `count(reqs_total)`} {
		for _, step := range []int{15, 60} {
			forms = append(forms, url.Values{"query": {q}, "step": {fmt.Sprint(step)},
				"start": {fmt.Sprint(base.Unix())}, "end": {fmt.Sprint(base.Unix() + 3600)}})
		}
	}
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() {
		n := 0
		defer func() { wrote <- n }()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			app := db.Appender(context.Background())
			// A late sample, or a new series, somewhere in the hour.
			ls := labels.FromStrings("__name__", "reqs_total", "instance", fmt.Sprint("h", rng.IntN(40)))
			if _, err := app.Append(0, ls, ms(time.Duration(rng.IntN(3600_000))*time.Millisecond), float64(rng.IntN(1000))); err != nil {
				t.Error(err)
				return
			}
			if err := app.Commit(); err != nil {
				t.Error(err)
				return
			}
			n++
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range forms {
			rangeGet(cached, f)
		}
	}
	close(stop)
	if n := <-wrote; n == 0 {
		t.Fatal("no sample was written while the queries ran")
	}
	for _, f := range forms {
		if got, want := rangeGet(cached, f), rangeGet(plain, f); got != want {
			t.Fatalf("%v after concurrent writes:\ncached: %.400s\nengine: %.400s", f, got, want)
		}
	}
}

// The parts of a range query split across cores share MaxSamples: a query the
// engine refuses whole for holding too many samples is refused split too, and
// one it answers whole is answered (a part over its share is evaluated whole
// instead).
func TestRangeCacheSplitKeepsMaxSamples(t *testing.T) {
	db := openDB(t)
	writeCounters(t, db, 60)
	for _, c := range []struct {
		query string
		max   int
		code  int
	}{
		// 240 steps × 60 series: 14,400 samples in the answer, half in each part.
		{"reqs_total", 10_000, 422},
		{"reqs_total", 20_000, 200},
		// The whole needs 14,520, each half 7,320 (measured): a part is over
		// its share of 14,600, and the query is evaluated whole.
		{"sum(max_over_time(reqs_total[30m]))", 14_600, 200},
		{"sum(max_over_time(reqs_total[30m]))", 14_500, 422},
	} {
		form := url.Values{"query": {c.query}, "step": {"15"},
			"start": {fmt.Sprint(base.Unix())}, "end": {fmt.Sprint(base.Unix() + 239*15)}}
		split, whole := http.NewServeMux(), http.NewServeMux()
		p := NewPrometheus(db, PromOptions{MaxSamples: c.max})
		p.splitInto(2)
		p.Register(split.Handle)
		NewPrometheus(db, PromOptions{MaxSamples: c.max, CacheBytes: -1}).Register(whole.Handle)
		got, want := rangeGet(split, form), rangeGet(whole, form)
		if !strings.HasPrefix(want, fmt.Sprint(c.code)) {
			t.Fatalf("%s, MaxSamples %d, whole: %.200s; want %d", c.query, c.max, want, c.code)
		}
		if got != want {
			t.Fatalf("%s, MaxSamples %d: split %.200s\nwhole %.200s", c.query, c.max, got, want)
		}
	}
}

// rangeGet asks h for a range query and returns the status code and body.
func rangeGet(h http.Handler, form url.Values) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/query_range?"+form.Encode(), nil))
	return fmt.Sprint(rec.Code, " ", rec.Body.String())
}

// writeCounters writes an hour of reqs_total{instance="h0"…} for n instances,
// every 15 s, each sample the count of 15 s steps since the first.
func writeCounters(t *testing.T, db *tsdb.DB, n int) {
	t.Helper()
	app := db.Appender(context.Background())
	for i := range 240 {
		for inst := range n {
			ls := labels.FromStrings("__name__", "reqs_total", "instance", fmt.Sprint("h", inst))
			if _, err := app.Append(0, ls, ms(time.Duration(i)*15*time.Second), float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}
