package detect

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// QueryBacktest runs the detector over stored series: those a selector matches,
// read from a Prometheus-compatible HTTP API (a running Outpost) as raw samples.
type QueryBacktest struct {
	URL        string // the server, e.g. http://127.0.0.1:8080
	Selector   string // a PromQL series selector, e.g. checkout_queue_depth{queue="payments"}
	Start, End time.Time
	// Counter forces every series to be judged through its rate; otherwise names
	// ending in _total, _count, _sum or _bucket are.
	Counter bool
	Client  *http.Client // zero: a client with a one-minute timeout
}

// Stretch is one anomalous stretch a back-test found in a series.
type Stretch struct {
	Series      string
	From, To    time.Time
	MaxScore    float64
	Explanation string // at the highest score
}

// maxBacktestSeries bounds the series one query back-test scores.
const maxBacktestSeries = 1000

// Run fetches the series and writes, for every sample of each, the CSV row
// series,timestamp,value,anomaly_score (timestamp in RFC 3339, UTC; for a
// counter, value is the rate judged), after the header. It returns the
// anomalous stretches found, in series order.
func (q QueryBacktest) Run(ctx context.Context, out io.Writer) ([]Stretch, error) {
	series, err := q.fetch(ctx)
	if err != nil {
		return nil, err
	}
	w := csv.NewWriter(out)
	w.Write([]string{"series", "timestamp", "value", "anomaly_score"})
	var stretches []Stretch
	for _, s := range series {
		name := s.labels.Get(labels.MetricName)
		counter := q.Counter || IsCounterName(name)
		d := NewDetector(Options{Counter: counter})
		sel := Selector(s.labels)
		var cur *Stretch
		for _, p := range s.points {
			r := d.Observe(p.t, p.v)
			v := p.v
			if counter {
				v = r.Value
			}
			w.Write([]string{sel, p.t.UTC().Format(time.RFC3339Nano), strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(r.Score, 'f', -1, 64)})
			anomalous := r.Score >= AlertScore || cur != nil && !r.Since.IsZero()
			switch {
			case anomalous && cur == nil:
				stretches = append(stretches, Stretch{Series: sel, From: p.t})
				cur = &stretches[len(stretches)-1]
				fallthrough
			case anomalous:
				cur.To = p.t
				if r.Score >= cur.MaxScore {
					what := name
					if counter {
						what = "rate of " + name + " (per second)"
					}
					cur.MaxScore, cur.Explanation = r.Score, what+": "+r.Explain("")
				}
			default:
				cur = nil
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("cannot write back-test output: %w", err)
	}
	return stretches, nil
}

// IsCounterName tells whether a metric name is a counter's by the Prometheus
// naming conventions alone: _total, _count, _sum or _bucket.
func IsCounterName(name string) bool {
	for _, s := range []string{"_total", "_count", "_sum", "_bucket"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

type fetchedSeries struct {
	labels labels.Labels
	points []point
}

type point struct {
	t time.Time
	v float64
}

// fetch reads the raw samples of the selector over [Start, End] with one
// instant query of a range vector.
func (q QueryBacktest) fetch(ctx context.Context) ([]fetchedSeries, error) {
	if !q.End.After(q.Start) {
		return nil, fmt.Errorf("%w: --end %s is not after --start %s", ErrBadInput, q.End.Format(time.RFC3339), q.Start.Format(time.RFC3339))
	}
	rng := int64(math.Ceil(q.End.Sub(q.Start).Seconds()))
	v := url.Values{
		"query": {q.Selector + "[" + strconv.FormatInt(rng, 10) + "s]"},
		"time":  {strconv.FormatFloat(float64(q.End.UnixMilli())/1000, 'f', 3, 64)},
	}
	u := strings.TrimRight(q.URL, "/") + "/api/v1/query"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, fmt.Errorf("cannot query %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := q.Client
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot query %s: %w", u, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("cannot read the answer of %s (HTTP %d): %w", u, resp.StatusCode, err)
	}
	if doc.Status != "success" {
		return nil, fmt.Errorf("%s answered %d: %s", u, resp.StatusCode, doc.Error)
	}
	if doc.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("%w: %q is not a series selector (the query gave a %s)", ErrBadInput, q.Selector, doc.Data.ResultType)
	}
	if len(doc.Data.Result) == 0 {
		return nil, fmt.Errorf("%w: no series match %s between %s and %s", ErrBadInput, q.Selector, q.Start.UTC().Format(time.RFC3339), q.End.UTC().Format(time.RFC3339))
	}
	if len(doc.Data.Result) > maxBacktestSeries {
		return nil, fmt.Errorf("%w: %s matches %d series; narrow it to at most %d", ErrBadInput, q.Selector, len(doc.Data.Result), maxBacktestSeries)
	}
	out := make([]fetchedSeries, 0, len(doc.Data.Result))
	for _, r := range doc.Data.Result {
		s := fetchedSeries{labels: labels.FromMap(r.Metric)}
		for _, pv := range r.Values {
			ts, ok1 := pv[0].(float64)
			vs, ok2 := pv[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("cannot read the answer of %s: a sample is not [time, \"value\"]", u)
			}
			f, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return nil, fmt.Errorf("cannot read the answer of %s: value %q: %w", u, vs, err)
			}
			ms := int64(math.Round(ts * 1000))
			if ms < q.Start.UnixMilli() {
				continue
			}
			s.points = append(s.points, point{time.UnixMilli(ms).UTC(), f})
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].labels, out[j].labels) < 0 })
	return out, nil
}

// parseTime reads --start and --end: RFC 3339, Unix seconds, or a duration
// before now ("7d", "36h").
func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := parseTimestamp(s); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.ParseFloat(n, 64); err == nil && d > 0 {
			return now.Add(-time.Duration(d * float64(24*time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("want RFC 3339, Unix seconds, or a duration before now such as 7d")
}
