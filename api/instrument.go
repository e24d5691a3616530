package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrument wraps h so that every request is counted and timed in
// outpost_http_request_duration_seconds{handler,code}, handler being the given name.
type Instrument struct {
	hist *prometheus.HistogramVec
}

// NewInstrument registers the request-duration histogram in reg.
func NewInstrument(reg prometheus.Registerer) *Instrument {
	i := &Instrument{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "outpost_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests of the UI and APIs, by handler and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"handler", "code"})}
	reg.MustRegister(i.hist)
	return i
}

// Wrap times h under the given handler name.
func (i *Instrument) Wrap(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		i.hist.WithLabelValues(name, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (server-sent events) flush through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
