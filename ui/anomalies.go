package ui

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"outpost/detect"
)

// AnomalySource is what the Anomalies page reads: the live detector
// (*detect.Live).
type AnomalySource interface {
	Anomalies() []detect.Anomaly
}

// AnomaliesPage lists the series the live detector finds anomalous now and
// recently, ranked by score. Mount it at "GET /anomalies".
type AnomaliesPage struct {
	h   *Handler
	src AnomalySource
}

// NewAnomaliesPage returns the Anomalies page drawn inside h's layout.
func NewAnomaliesPage(h *Handler, src AnomalySource) *AnomaliesPage {
	return &AnomaliesPage{h: h, src: src}
}

// AnomaliesData is what the Anomalies page shows.
type AnomaliesData struct {
	Active, Recent []AnomalyRow
}

// AnomalyRow is one anomalous series.
type AnomalyRow struct {
	Selector    string
	Score       string // highest score of the stretch, e.g. "0.93"
	Current     string
	Since       string // "2026-03-05 14:02 UTC"
	Last        string
	Ended       string // empty while active
	Value       string
	Band        string // "0.3 – 0.6", or empty while unknown
	Explanation string
	Chart       string // the Metrics page charting the series with its band
}

func (p *AnomaliesPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var d AnomaliesData
	for _, a := range p.src.Anomalies() {
		row := anomalyRow(a)
		if a.Active {
			d.Active = append(d.Active, row)
		} else {
			d.Recent = append(d.Recent, row)
		}
	}
	p.h.Page(w, r, "Anomalies", "anomalies", AnomaliesBody(d))
}

func anomalyRow(a detect.Anomaly) AnomalyRow {
	f := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	row := AnomalyRow{
		Selector: a.Selector, Score: strconv.FormatFloat(a.Score, 'f', 2, 64), Current: strconv.FormatFloat(a.Current, 'f', 2, 64),
		Since: when(a.Since), Last: when(a.Last), Ended: when(a.Ended), Value: f(a.Value), Explanation: a.Explanation,
		Chart: ChartURL(a),
	}
	if lo, hi := f(a.Lower), f(a.Upper); lo != "" && hi != "" {
		row.Band = lo + " – " + hi
	}
	return row
}

// ChartURL links to the Metrics page charting a's series (its rate for a
// counter) from an hour before the anomaly began, with the expected band shown.
func ChartURL(a detect.Anomaly) string {
	q := a.Selector
	if a.Counter {
		q = "rate(" + q + "[5m])"
	}
	v := url.Values{"q": {q}, "range": {rangeCovering(a.Last.Sub(a.Since) + 2*time.Hour)}, "end": {a.Last.Add(30 * time.Minute).UTC().Format(time.RFC3339)}, "band": {"1"}}
	return "/graph?" + v.Encode()
}

// rangeCovering is the shortest of MetricsRanges at least span long, or the
// longest.
func rangeCovering(span time.Duration) string {
	for _, r := range MetricsRanges {
		if d, err := parseRange(r); err == nil && d >= span {
			return r
		}
	}
	return MetricsRanges[len(MetricsRanges)-1]
}

// parseRange reads one of MetricsRanges ("15m", "1d").
func parseRange(s string) (time.Duration, error) {
	if n, ok := cutDays(s); ok {
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func cutDays(s string) (int, bool) {
	if len(s) < 2 || s[len(s)-1] != 'd' {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	return n, err == nil
}
