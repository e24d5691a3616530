package ui

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"outpost/tsdb"
)

// MetricsSource is what the Metrics page reads for its "explore" list: the metric
// metadata and the series of the TSDB (*tsdb.DB). Queries themselves go through the
// Prometheus HTTP API from the browser.
type MetricsSource interface {
	storage.Queryable
	Metadata() map[string]tsdb.Metadata
}

// MetricsPage serves the Metrics page: a PromQL editor with autocomplete, a chart,
// a table and the list of metric families. Mount it at "GET /graph".
type MetricsPage struct {
	h         *Handler
	src       MetricsSource
	maxSeries int // series the chart draws; more are reported as left out
}

// MetricsPageMaxSeries is how many series the chart draws at most.
const MetricsPageMaxSeries = 50

// exploreWindow is how far back the explore list counts series.
const exploreWindow = time.Hour

// NewMetricsPage returns the Metrics page drawn inside h's layout.
func NewMetricsPage(h *Handler, src MetricsSource) *MetricsPage {
	return &MetricsPage{h: h, src: src, maxSeries: MetricsPageMaxSeries}
}

// MetricsData is everything the Metrics page renders on the server: the query
// state from the URL and the explore list.
type MetricsData struct {
	Query      string // PromQL, from ?q=
	Range      string // one of MetricsRanges, from ?range=
	End        string // RFC 3339 or empty for now, from ?end=
	Step       string // a duration or empty for automatic, from ?step=
	Tab        string // "graph" or "table", from ?tab=
	Band       bool   // draw the detector's expected band, from ?band=1
	MaxSeries  int
	Families   []MetricFamily
	ExploreErr string
}

// MetricsRanges are the time ranges the picker offers.
var MetricsRanges = []string{"5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "2d", "7d"}

// MetricFamily is one line of the explore list.
type MetricFamily struct {
	Name   string
	Type   string // counter, gauge, histogram, summary or unknown
	Help   string
	Unit   string
	Series int    // series with samples in the last hour
	Query  string // a useful first query for the family
}

func (p *MetricsPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := MetricsData{
		Query:     q.Get("q"),
		Range:     q.Get("range"),
		End:       q.Get("end"),
		Step:      q.Get("step"),
		Tab:       q.Get("tab"),
		Band:      q.Get("band") == "1",
		MaxSeries: p.maxSeries,
	}
	// Links in Prometheus' form (alerts' generator URLs) open here too:
	// /graph?g0.expr=…&g0.tab=1 (1 is the table, 0 the graph).
	if d.Query == "" && q.Get("g0.expr") != "" {
		d.Query = q.Get("g0.expr")
		if q.Get("g0.tab") == "1" {
			d.Tab = "table"
		}
	}
	if !slices.Contains(MetricsRanges, d.Range) {
		d.Range = "1h"
	}
	if d.Tab != "table" {
		d.Tab = "graph"
	}
	fams, err := p.families(r.Context(), p.h.opts.Now())
	if err != nil {
		p.h.opts.Logger.Warn("cannot list metric families", "err", err)
		d.ExploreErr = "The metric list could not be read: " + err.Error()
	}
	d.Families = fams
	p.h.Page(w, r, "Metrics", "metrics", MetricsBody(d))
}

// families lists the metric families known to the metadata or seen in the last
// hour, with their series counts. Classic histogram and summary series
// (_bucket, _sum, _count) count towards their family.
func (p *MetricsPage) families(ctx context.Context, now time.Time) ([]MetricFamily, error) {
	md := p.src.Metadata()
	byName := map[string]*MetricFamily{}
	get := func(name string) *MetricFamily {
		f := byName[name]
		if f == nil {
			m, ok := md[name]
			if !ok {
				m.Type = "unknown"
			}
			f = &MetricFamily{Name: name, Type: m.Type, Help: m.Help, Unit: m.Unit}
			byName[name] = f
		}
		return f
	}
	for name := range md {
		get(name)
	}
	q, err := p.src.Querier(now.Add(-exploreWindow).UnixMilli(), now.UnixMilli())
	if err != nil {
		return sortFamilies(byName), err
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: now.Add(-exploreWindow).UnixMilli(), End: now.UnixMilli(), Func: "series"}
	set := q.Select(ctx, false, hints, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	native := map[string]bool{}
	for set.Next() {
		name := set.At().Labels().Get(labels.MetricName)
		fam := name
		if _, ok := md[name]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				base, found := strings.CutSuffix(name, suf)
				if m, ok := md[base]; found && ok && (m.Type == "histogram" || m.Type == "summary" || m.Type == "gaugehistogram") {
					fam = base
					break
				}
			}
		} else if md[name].Type == "histogram" {
			native[name] = true
		}
		// One series per label set: classic histograms and summaries are
		// counted by their _count series.
		f := get(fam)
		switch {
		case fam != name:
			if strings.HasSuffix(name, "_count") {
				f.Series++
			}
		case f.Type == "summary": // a quantile series
		default:
			f.Series++
		}
	}
	for name, f := range byName {
		f.Query = firstQuery(name, f.Type, native[name])
	}
	return sortFamilies(byName), set.Err()
}

func sortFamilies(m map[string]*MetricFamily) []MetricFamily {
	out := make([]MetricFamily, 0, len(m))
	for _, f := range m {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b MetricFamily) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// firstQuery suggests a query for a family: a rate for counters, the 90th
// percentile for histograms, the series themselves otherwise.
func firstQuery(name, typ string, native bool) string {
	sel := name
	if !isPlainName(name) {
		sel = `{"` + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `"`, `\"`) + `"}`
	}
	switch {
	case typ == "counter" && isPlainName(name):
		return "rate(" + sel + "[5m])"
	case typ == "histogram" && native:
		return "histogram_quantile(0.9, sum by (job) (rate(" + sel + "[5m])))"
	case typ == "histogram" && isPlainName(name):
		return "histogram_quantile(0.9, sum by (job, le) (rate(" + name + "_bucket[5m])))"
	}
	return sel
}

func isPlainName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
