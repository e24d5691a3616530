package logindex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

var (
	genServices = []string{"api", "billing", "worker"}
	genLevels   = []plog.SeverityNumber{plog.SeverityNumberDebug, plog.SeverityNumberInfo, plog.SeverityNumberInfo2, plog.SeverityNumberWarn, plog.SeverityNumberError, plog.SeverityNumberFatal}
	genRegions  = []string{"eu", "us", "ap"}
)

// genData makes n records 47 s apart from base, spread over several days, with
// properties derived from the index so tests can compute answers by looping.
func genData(base time.Time, n int) []genRecord {
	recs := make([]genRecord, n)
	for i := range recs {
		recs[i] = genRecord{
			t:       base.Add(time.Duration(i) * 47 * time.Second).Add(time.Duration(i%1000) * time.Microsecond),
			service: genServices[i%len(genServices)],
			sev:     genLevels[i%len(genLevels)],
			body:    fmt.Sprintf("request %d handled path=/v1/items/%d status=%d", i, i%13, 200+i%5),
			attrs:   map[string]any{"user_id": fmt.Sprint(i % 7), "region": genRegions[i%len(genRegions)], "latency_ms": i % 1000},
		}
	}
	return recs
}

func openGenerated(t *testing.T, n int) (*Index, []genRecord, time.Time) {
	t.Helper()
	base := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Hour).Add(17*time.Minute + 3*time.Second + 123*time.Millisecond)
	ix, _ := openTest(t, nil)
	recs := genData(base, n)
	for i := 0; i < n; i += 1000 {
		write(t, ix, recs[i:min(i+1000, n)])
	}
	flush(t, ix)
	return ix, recs, base
}

func TestTimeRangeAndPagination(t *testing.T) {
	ix, recs, base := openGenerated(t, 5000)
	inRange := func(g genRecord, s, e time.Time) bool {
		ms := g.t.UnixMilli()
		return ms >= s.UnixMilli() && ms < e.UnixMilli()
	}
	ranges := [][2]time.Time{
		{recs[10].t.Truncate(time.Millisecond), recs[20].t.Truncate(time.Millisecond)},
		{base.Truncate(10 * time.Second), base.Add(10 * time.Hour)},
		{base.Add(5 * time.Hour).Add(3333 * time.Millisecond), base.Add(50 * time.Hour).Add(7 * time.Millisecond)},
		{base.Add(-24 * time.Hour), base.Add(100 * time.Hour)},
		// Most of the first and last partitions: counted as all less the rest.
		{base.Add(30*time.Minute + 7*time.Millisecond), recs[len(recs)-1].t.Add(-20 * time.Minute)},
		{recs[100].t.Truncate(time.Millisecond), recs[100].t.Truncate(time.Millisecond).Add(time.Millisecond)},
		{recs[100].t.Truncate(time.Millisecond).Add(time.Millisecond), recs[101].t.Truncate(time.Millisecond)},
	}
	for _, q := range []string{"", "service:billing", "severity>=WARN region:eu", "handled -status=200"} {
		pq, err := ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			var want uint64
			var wantTimes []time.Time
			for _, g := range recs {
				rec := recordOf(g)
				if inRange(g, r[0], r[1]) && pq.Matches(&rec) {
					want++
					wantTimes = append(wantTimes, g.t)
				}
			}
			if got := count(t, ix, q, r[0], r[1]); got != want {
				t.Errorf("%q in [%s, %s): got %d, want %d", q, r[0], r[1], got, want)
			}
			// Page through: every record once, newest first.
			seen := map[string]bool{}
			var times []time.Time
			cursor := ""
			for pages := 0; ; pages++ {
				res, err := ix.Search(context.Background(), SearchRequest{Query: q, Start: r[0], End: r[1], Limit: 37, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != want {
					t.Fatalf("%q page %d: total %d, want %d", q, pages, res.Total, want)
				}
				for _, rec := range res.Records {
					if seen[rec.ID] {
						t.Fatalf("%q: record %s twice", q, rec.ID)
					}
					seen[rec.ID] = true
					times = append(times, rec.Time)
				}
				if res.NextCursor == "" {
					break
				}
				if len(res.Records) != 37 {
					t.Fatalf("short page %d with a cursor", len(res.Records))
				}
				cursor = res.NextCursor
			}
			if uint64(len(times)) != want {
				t.Fatalf("%q: paged %d records, want %d", q, len(times), want)
			}
			sort.Slice(wantTimes, func(i, j int) bool { return wantTimes[i].After(wantTimes[j]) })
			for i := range times {
				if !times[i].Equal(wantTimes[i]) {
					t.Fatalf("%q in [%s, %s): record %d has time %s, want %s", q, r[0], r[1], i, times[i], wantTimes[i])
				}
			}
		}
	}
}

// recordOf is the Record a generated record becomes.
func recordOf(g genRecord) Record {
	ld := makeLogs([]genRecord{g})
	rs := appendRecordsFromLogs(nil, ld, time.Now())
	return rs[0]
}

func TestFacets(t *testing.T) {
	ix, recs, base := openGenerated(t, 3000)
	start, end := base.Add(3*time.Hour), base.Add(30*time.Hour)
	f, err := ix.Facets(context.Background(), FacetsRequest{Query: "handled", Start: start, End: end, Size: 10, Keys: 10})
	if err != nil {
		t.Fatal(err)
	}
	svc := map[string]uint64{}
	sev := map[string]uint64{}
	region := map[string]uint64{}
	var total uint64
	for _, g := range recs {
		if g.t.Before(start) || !g.t.Before(end) {
			continue
		}
		total++
		svc[g.service]++
		sev[levelOf(int32(g.sev))]++
		region[g.attrs["region"].(string)]++
	}
	if f.Total != total {
		t.Fatalf("total %d, want %d", f.Total, total)
	}
	check := func(name string, got []FacetValue, want map[string]uint64) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d values %v, want %v", name, len(got), got, want)
		}
		for _, v := range got {
			if want[v.Value] != v.Count {
				t.Errorf("%s %q: %d, want %d", name, v.Value, v.Count, want[v.Value])
			}
		}
	}
	check("service", f.Service, svc)
	check("severity", f.Severity, sev)
	keys := map[string]bool{}
	for _, a := range f.Attributes {
		keys[a.Key] = true
		if a.Count != total {
			t.Errorf("key %s: count %d, want %d", a.Key, a.Count, total)
		}
		if a.Key == "region" {
			check("region", a.Values, region)
		}
	}
	for _, k := range []string{"user_id", "region", "latency_ms", "host.name"} {
		if !keys[k] {
			t.Errorf("attribute key %s missing from facets %+v", k, f.Attributes)
		}
	}
}

func TestHistogram(t *testing.T) {
	ix, recs, base := openGenerated(t, 3000)
	start, end := base.Add(90*time.Minute+5*time.Second), base.Add(26*time.Hour)
	// The first query the index counts exactly; the second leaves blocks open
	// (several of the wildcard's terms in one block), which are read.
	for _, c := range []struct {
		q    string
		step time.Duration
	}{
		{"-service:api", time.Hour}, {"-service:api", 7 * time.Minute}, {"-service:api", 0},
		{"status=20? -service:api", 7 * time.Minute}, {"status=20?", 0},
	} {
		step := c.step
		pq, err := ParseQuery(c.q)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ix.Histogram(context.Background(), HistogramRequest{Query: c.q, Start: start, End: end, Step: step})
		if err != nil {
			t.Fatal(err)
		}
		if step > 0 && h.Step != step {
			t.Fatalf("step %s, want %s", h.Step, step)
		}
		want := map[int64]map[string]uint64{}
		var total uint64
		for _, g := range recs {
			if r := recordOf(g); !pq.Matches(&r) || g.t.Before(start) || !g.t.Before(end) {
				continue
			}
			b := floorDiv(g.t.UnixMilli(), h.Step.Milliseconds()) * h.Step.Milliseconds()
			if want[b] == nil {
				want[b] = map[string]uint64{}
			}
			want[b][levelOf(int32(g.sev))]++
			total++
		}
		if h.Total != total {
			t.Fatalf("total %d, want %d", h.Total, total)
		}
		var sum uint64
		for i, b := range h.Buckets {
			if i > 0 && !b.Start.Equal(h.Buckets[i-1].Start.Add(h.Step)) {
				t.Fatalf("bucket %d starts at %s", i, b.Start)
			}
			w := want[b.Start.UnixMilli()]
			for lvl, n := range b.Counts {
				if w[lvl] != n {
					t.Errorf("step %s bucket %s %s: %d, want %d", h.Step, b.Start, lvl, n, w[lvl])
				}
			}
			for lvl, n := range w {
				if b.Counts[lvl] != n {
					t.Errorf("step %s bucket %s %s: %d, want %d", h.Step, b.Start, lvl, b.Counts[lvl], n)
				}
			}
			sum += b.Total
		}
		if sum != total {
			t.Errorf("buckets sum to %d, want %d", sum, total)
		}
		levels := map[string]bool{}
		for _, w := range want {
			for l := range w {
				levels[l] = true
			}
		}
		if len(h.Levels) != len(levels) {
			t.Errorf("levels %v, want %v", h.Levels, levels)
		}
	}
}

func TestBadQueries(t *testing.T) {
	ix, _ := openTest(t, nil)
	for _, q := range []string{
		`"unterminated`, `(a OR b`, `a)`, `severity>=LOUD`, `duration_ms:>abc`, `/a(/`,
		`time:2020`, `-`, `NOT`, `...`, `service:()`, `time:>=yesterday`, string(make([]byte, maxQueryLen+1)),
	} {
		_, err := ix.Search(context.Background(), SearchRequest{Query: q})
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("%q: got %v, want a *QueryError", q, err)
			continue
		}
		if qe.Msg == "" {
			t.Errorf("%q: empty message", q)
		}
	}
	_, err := ix.Search(context.Background(), SearchRequest{Cursor: "!!"})
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Errorf("bad cursor: got %v", err)
	}
}

// TestBroadWildcard checks that a wildcard expanding to more terms than Bleve's
// clause limit (MaxClauseCount, which searches through Bleve's own searchers
// would hit) answers exactly.
func TestBroadWildcard(t *testing.T) {
	ix, _ := openTest(t, &Options{Shards: 1}) // the limit applies per shard
	now := time.Now()
	const terms = 20_500
	recs := make([]genRecord, 0, terms)
	for i := 0; i < terms; i++ {
		recs = append(recs, genRecord{t: now, service: "s", body: fmt.Sprintf("w%d", i)})
	}
	for i := 0; i < len(recs); i += 5000 {
		write(t, ix, recs[i:min(i+5000, len(recs))])
	}
	flush(t, ix)
	if n := count(t, ix, "w*", time.Time{}, time.Time{}); n != uint64(len(recs)) {
		t.Fatalf("w*: %d, want %d", n, len(recs))
	}
	if n := count(t, ix, "w1*", time.Time{}, time.Time{}); n != 1+10+100+1000+10000 {
		t.Fatalf("w1*: %d", n)
	}
}

func TestNumericRanges(t *testing.T) {
	now := time.Now().UTC()
	vals := []float64{-1e12, -70000.5, -257, -1, -0.25, 0, 0.5, 1, 7, 255, 256, 257, 65535, 65536, 99999.75, 1 << 40, 3e15}
	var recs []genRecord
	for i, v := range vals {
		recs = append(recs, genRecord{t: now.Add(time.Duration(i-len(vals)) * time.Second), service: "api", sev: plog.SeverityNumberInfo, body: "n", attrs: map[string]any{"v": v}})
	}
	ix, _ := openTest(t, nil)
	write(t, ix, recs)
	flush(t, ix)
	for _, q := range []string{
		"v:>0", "v:>=0", "v:<0", "v:<=-1", "v:>255", "v:>=256", "v:<65536", "v:>-70000.5", "v:>=-70000.5",
		"v:>256 v:<=65536", "v:>-1e13", "v:<1e16", "v:>1e16", "v:>=1099511627776", "v:7", "v:>0.4 v:<0.6",
	} {
		pq, err := ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		var want uint64
		for _, g := range recs {
			rec := recordOf(g)
			if pq.Matches(&rec) {
				want++
			}
		}
		if got := count(t, ix, q, now.Add(-time.Hour), now.Add(time.Hour)); got != want {
			t.Errorf("%q: got %d, want %d", q, got, want)
		}
	}
}

// TestHistogramBlockAcrossBuckets checks a block whose matches the index counts
// in one bucket but not in the next (the range ends inside one of its
// granules): it is read, and counted once.
func TestHistogramBlockAcrossBuckets(t *testing.T) {
	ix, _ := openTest(t, &Options{Shards: 1})
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	var recs []genRecord
	for i := range 120 { // one block: one service, one level, one write; a record a second
		recs = append(recs, genRecord{t: base.Add(time.Duration(i) * time.Second), service: "api", sev: plog.SeverityNumberInfo, body: "tick"})
	}
	write(t, ix, recs)
	flush(t, ix)
	h, err := ix.Histogram(context.Background(), HistogramRequest{Start: base, End: base.Add(65 * time.Second), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Buckets) != 2 || h.Buckets[0].Total != 60 || h.Buckets[1].Total != 5 || h.Total != 65 {
		t.Errorf("buckets %+v, total %d; want 60 and 5, 65", h.Buckets, h.Total)
	}
}

// TestFacetsEstimated checks facets over more partially matching records than
// FacetScanRecords: the total, services and levels stay exact for a query the
// index counts; a key every record has is counted exactly; the values of an
// attribute independent of the query are estimated within 10%; and a second
// request gives the same exact counts. Read whole, the same facets are exact,
// including an attribute the query's matches are likelier to have, and the
// same twice.
func TestFacetsEstimated(t *testing.T) {
	base := time.Now().UTC().Add(-30 * time.Hour).Truncate(time.Hour)
	const n = 24000
	recs := make([]genRecord, n)
	for i := range recs {
		body := fmt.Sprintf("request %d handled", i)
		if i%5 == 0 {
			body += " slow"
		}
		attrs := map[string]any{"region": genRegions[(i/5)%len(genRegions)]}
		if i%10 == 0 {
			attrs["retry"] = "yes"
		}
		recs[i] = genRecord{t: base.Add(time.Duration(i) * 3 * time.Second), service: genServices[i%len(genServices)], sev: genLevels[(i/3)%len(genLevels)], body: body, attrs: attrs}
	}
	want := map[string]map[string]uint64{"service": {}, "severity": {}, "region": {}, "retry": {}}
	var total uint64
	for i, g := range recs {
		if i%5 != 0 {
			continue
		}
		total++
		want["service"][g.service]++
		want["severity"][levelOf(int32(g.sev))]++
		want["region"][g.attrs["region"].(string)]++
		if v, ok := g.attrs["retry"]; ok {
			want["retry"][v.(string)]++
		}
	}
	start, end := base.Add(-time.Minute), base.Add(time.Duration(n)*3*time.Second+time.Minute)
	for _, c := range []struct {
		budget    int
		estimated bool
	}{{2000, true}, {0, false}} {
		ix, _ := openTest(t, &Options{FacetScanRecords: c.budget})
		for i := 0; i < n; i += 1000 {
			write(t, ix, recs[i:i+1000])
		}
		flush(t, ix)
		req := FacetsRequest{Query: "slow", Start: start, End: end, Keys: 10, Size: 10}
		f, err := ix.Facets(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ix.Facets(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		// The sample follows the blocks' order in the index, which Bleve's
		// merges may change between requests: estimates may differ, the rest
		// may not.
		if !c.estimated && !reflect.DeepEqual(f, again) || c.estimated && (f.Total != again.Total ||
			!reflect.DeepEqual(f.Service, again.Service) || !reflect.DeepEqual(f.Severity, again.Severity)) {
			t.Errorf("budget %d: two answers\n%+v\n%+v", c.budget, f, again)
		}
		if f.Estimated != c.estimated || f.Total != total {
			t.Fatalf("budget %d: estimated %v total %d, want %v %d", c.budget, f.Estimated, f.Total, c.estimated, total)
		}
		got := map[string][]FacetValue{"service": f.Service, "severity": f.Severity}
		counts := map[string]uint64{}
		for _, a := range f.Attributes {
			got[a.Key], counts[a.Key] = a.Values, a.Count
		}
		for field, w := range want {
			if !c.estimated || field == "service" || field == "severity" {
				if len(got[field]) != len(w) {
					t.Errorf("budget %d: %s %v, want %v", c.budget, field, got[field], w)
				}
				for _, v := range got[field] {
					if v.Count != w[v.Value] {
						t.Errorf("budget %d: %s %q: %d, want %d", c.budget, field, v.Value, v.Count, w[v.Value])
					}
				}
			}
		}
		if counts["region"] != total || !c.estimated && counts["retry"] != total/2 {
			t.Errorf("budget %d: key counts %v, want region %d, retry %d", c.budget, counts, total, total/2)
		}
		if c.estimated {
			for _, v := range got["region"] {
				if w := float64(want["region"][v.Value]); math.Abs(float64(v.Count)-w) > 0.1*w {
					t.Errorf("region %q: estimated %d, want %v ± 10%%", v.Value, v.Count, w)
				}
			}
		}
	}
}

// TestDriverMatchesRangeScan checks that a search gives the same counts,
// pages and histograms whether it starts from the blocks of a rare leaf every
// match has or from every block of its range, against a scan of the records.
func TestDriverMatchesRangeScan(t *testing.T) {
	ix, recs, base := openGenerated(t, 6000)
	defer func(v float64) { driverShare = v }(driverShare)
	ranges := [][2]time.Time{
		{base.Add(-time.Hour), base.Add(100 * time.Hour)},
		{base.Add(5*time.Hour + 3333*time.Millisecond), base.Add(50*time.Hour + 7*time.Millisecond)},
		{recs[100].t.Truncate(time.Millisecond), recs[400].t.Truncate(time.Millisecond)},
	}
	for _, q := range []string{"handled", "service:billing", "severity>=WARN region:eu", `"request 7"`, `"path=/v1/items/3 status=201"`,
		"region:eu -status=200", "latency_ms:[10 TO 500] service:api", "user_id:* service:worker", "service:api OR region:us"} {
		pq, err := ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			var want uint64
			for _, g := range recs {
				rec := recordOf(g)
				if ms := g.t.UnixMilli(); ms >= r[0].UnixMilli() && ms < r[1].UnixMilli() && pq.Matches(&rec) {
					want++
				}
			}
			var pages [2][]string
			var hists [2]*Histogram
			for i, share := range []float64{0, math.Inf(1)} { // always start from the leaf, never
				driverShare = share
				res, err := ix.Search(context.Background(), SearchRequest{Query: q, Start: r[0], End: r[1], Limit: 20})
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != want {
					t.Errorf("%q in [%s, %s), driver share %v: %d, want %d", q, r[0], r[1], share, res.Total, want)
				}
				for _, rec := range res.Records {
					pages[i] = append(pages[i], rec.ID)
				}
				if hists[i], err = ix.Histogram(context.Background(), HistogramRequest{Query: q, Start: r[0], End: r[1]}); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(pages[0], pages[1]) || !reflect.DeepEqual(hists[0], hists[1]) || hists[0].Total != want {
				t.Errorf("%q in [%s, %s): pages or histograms differ (histogram totals %d, %d, want %d)", q, r[0], r[1], hists[0].Total, hists[1].Total, want)
			}
		}
	}
}

// TestAllMatchesBlockCounts checks the count and the histogram of every
// record of a range (from the time terms' level sums, cached per segment)
// against a query that matches every record but is counted block by block,
// over random ranges and steps, again from the cache, and after more writes
// have added segments.
func TestAllMatchesBlockCounts(t *testing.T) {
	ix, recs, base := openGenerated(t, 6000)
	rng := rand.New(rand.NewPCG(7, 7))
	last := recs[len(recs)-1].t
	check := func(round int) {
		for range 40 {
			a := base.Add(-time.Hour + time.Duration(rng.Int64N(int64(last.Sub(base)+2*time.Hour))))
			b := a.Add(time.Minute + time.Duration(rng.Int64N(int64(40*time.Hour))))
			all, every := count(t, ix, "", a, b), count(t, ix, "-nosuchword", a, b)
			if all != every {
				t.Fatalf("round %d, [%s, %s): %d by the terms' sums, %d by blocks", round, a, b, all, every)
			}
			step := []time.Duration{0, 10 * time.Second, 7 * time.Minute, time.Hour, 90 * time.Minute}[rng.IntN(5)]
			hAll, err := ix.Histogram(context.Background(), HistogramRequest{Start: a, End: b, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			hEvery, err := ix.Histogram(context.Background(), HistogramRequest{Query: "-nosuchword", Start: a, End: b, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(hAll, hEvery) {
				t.Fatalf("round %d, [%s, %s) step %s: by level sums %d records, by blocks %d\n%+v\n%+v", round, a, b, step, hAll.Total, hEvery.Total, hAll.Buckets, hEvery.Buckets)
			}
		}
	}
	check(0)
	check(1)
	more := genData(base.Add(50*time.Minute+7*time.Second), 3000)
	for i := 0; i < len(more); i += 500 {
		write(t, ix, more[i:i+500])
	}
	flush(t, ix)
	check(2)
}
