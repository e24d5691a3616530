package ui

import (
	"net/http"
	"slices"
)

// LogsPage serves the Logs page: a query box, a time-range picker, a histogram of
// matching records over time by severity, facet lists, the records themselves and
// a live tail. The browser reads them from the Logs API (/api/v1/logs...) with
// assets/logs.js; this handler renders the page and the query state of its URL.
// Mount it at "GET /logs".
type LogsPage struct {
	h *Handler
}

// NewLogsPage returns the Logs page drawn inside h's layout.
func NewLogsPage(h *Handler) *LogsPage { return &LogsPage{h: h} }

// LogsRanges are the time ranges the picker offers, ending now.
var LogsRanges = []string{"5m", "15m", "1h", "3h", "6h", "12h", "24h", "2d", "7d"}

// LogsData is the query state of the Logs page, from its URL.
type LogsData struct {
	Query string // ?query=
	Range string // one of LogsRanges, from ?range=; ignored when Start is set
	Start string // RFC 3339 or Unix seconds, from ?start= (a range dragged on the chart)
	End   string // as Start, from ?end=; empty means now
}

func (p *LogsPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := LogsData{Query: q.Get("query"), Range: q.Get("range"), Start: q.Get("start"), End: q.Get("end")}
	if !slices.Contains(LogsRanges, d.Range) {
		d.Range = "1h"
	}
	p.h.Page(w, r, "Logs", "logs", LogsBody(d))
}
