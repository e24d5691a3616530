package api

// GET /api/v1/anomalies: the series the live anomaly detector finds anomalous now
// and recently, ranked by score.

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"outpost/detect"
)

// AnomalySource is what the anomalies endpoint reads: the live detector
// (*detect.Live).
type AnomalySource interface {
	Anomalies() []detect.Anomaly
}

// AnomaliesAPI serves GET /api/v1/anomalies.
type AnomaliesAPI struct{ src AnomalySource }

// NewAnomalies returns the anomalies endpoint over src.
func NewAnomalies(src AnomalySource) *AnomaliesAPI { return &AnomaliesAPI{src: src} }

// Register mounts the endpoint with handle (API.Handle).
func (a *AnomaliesAPI) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v1/anomalies", http.HandlerFunc(a.list))
}

// AnomalyJSON is one entry of GET /api/v1/anomalies. Numbers that are not known
// (a band still being learned) are null. Times are RFC 3339 in UTC; ended is
// absent while the anomaly is active.
type AnomalyJSON struct {
	Labels       map[string]string `json:"labels"`
	Metric       string            `json:"metric"`
	Selector     string            `json:"selector"`
	Counter      bool              `json:"counter"` // value and band are a rate per second
	Active       bool              `json:"active"`
	Score        float64           `json:"score"` // highest of the stretch
	CurrentScore float64           `json:"current_score"`
	Since        time.Time         `json:"since"`
	Last         time.Time         `json:"last"`
	Ended        *time.Time        `json:"ended,omitempty"`
	Value        *float64          `json:"value"`
	Expected     *float64          `json:"expected"`
	Lower        *float64          `json:"lower"`
	Upper        *float64          `json:"upper"`
	Explanation  string            `json:"explanation"`
}

// list answers {"status":"success","data":[…]}: active anomalies first, each
// group by score. ?limit=N keeps the first N (default 100, at most 1000);
// ?active=true only the active ones.
func (a *AnomaliesAPI) list(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"status": "error", "errorType": "bad_data", "error": "invalid parameter \"limit\": want a positive integer, got " + strconv.Quote(s)})
			return
		}
		limit = min(n, 1000)
	}
	onlyActive := r.URL.Query().Get("active") == "true"
	out := []AnomalyJSON{}
	for _, an := range a.src.Anomalies() {
		if len(out) == limit {
			break
		}
		if onlyActive && !an.Active {
			continue
		}
		j := AnomalyJSON{
			Labels: an.Labels.Map(), Metric: an.Metric, Selector: an.Selector, Counter: an.Counter,
			Active: an.Active, Score: an.Score, CurrentScore: an.Current,
			Since: an.Since.UTC(), Last: an.Last.UTC(),
			Value: num(an.Value), Expected: num(an.Expected), Lower: num(an.Lower), Upper: num(an.Upper),
			Explanation: an.Explanation,
		}
		if !an.Ended.IsZero() {
			e := an.Ended.UTC()
			j.Ended = &e
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, struct {
		Status string        `json:"status"`
		Data   []AnomalyJSON `json:"data"`
	}{"success", out})
}

// num is v, or nil when v is NaN or infinite (JSON has no such numbers).
func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
