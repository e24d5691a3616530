package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"outpost/store"
)

// StatusSource is what /api/v1/status reads: the store.
type StatusSource interface {
	Totals() store.Counts
	Rates() store.Rates
	Services() []store.Service
	DiskUsage() int64
	Started() time.Time
	Dir() string
	UncleanShutdowns() uint64
}

// Options configure the API handler.
type Options struct {
	Version string
	Logger  *slog.Logger // nil means slog.Default()
	// Registry holds the self-monitoring metrics served on /metrics. Nil means a new
	// one with the Go runtime and process collectors.
	Registry *prometheus.Registry
}

// API serves the JSON, health and self-monitoring endpoints.
type API struct {
	src   StatusSource
	opts  Options
	ready atomic.Bool
	mux   *http.ServeMux
}

// New returns the API handler. It answers /readyz with 503 until SetReady(true).
func New(src StatusSource, opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	a := &API{src: src, opts: opts, mux: http.NewServeMux()}
	a.registerStoreMetrics(opts.Registry)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			writeText(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError)}))
	a.mux.HandleFunc("GET /api/v1/status", a.status)
	// Profiles, as Prometheus and VictoriaMetrics serve them.
	a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return a
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handle mounts another API endpoint (the query APIs of the stores). Call it
// before serving.
func (a *API) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// SetReady says whether the stores are open and ingest is accepted.
func (a *API) SetReady(ok bool) { a.ready.Store(ok) }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Handles reports whether the API owns the request's path, so that a caller can
// route between the API and the UI.
func (a *API) Handles(r *http.Request) bool {
	_, pattern := a.mux.Handler(r)
	return pattern != ""
}

func (a *API) registerStoreMetrics(reg prometheus.Registerer) {
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	counter("outpost_stored_points_total", "Metric data points accepted since the data directory was created.",
		func() float64 { return float64(a.src.Totals().Points) })
	counter("outpost_stored_log_records_total", "Log records accepted since the data directory was created.",
		func() float64 { return float64(a.src.Totals().LogRecords) })
	counter("outpost_stored_spans_total", "Spans accepted since the data directory was created.",
		func() float64 { return float64(a.src.Totals().Spans) })
	counter("outpost_unclean_shutdowns_total", "Unclean shutdowns found at start since the data directory was created.",
		func() float64 { return float64(a.src.UncleanShutdowns()) })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outpost_data_directory_bytes", Help: "Bytes held by the data directory (refreshed every 10 s at most).",
	}, func() float64 { return float64(a.src.DiskUsage()) }))
}

// Status is the answer of GET /api/v1/status.
type Status struct {
	Version          string          `json:"version"`
	Started          time.Time       `json:"started"`
	UptimeSeconds    float64         `json:"uptime_seconds"`
	DataDir          string          `json:"data_dir"`
	DiskBytes        int64           `json:"disk_bytes"`
	Ingested         store.Counts    `json:"ingested"`
	PerSecond        store.Rates     `json:"per_second"`
	Services         []store.Service `json:"services"`
	UncleanShutdowns uint64          `json:"unclean_shutdowns"`
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	started := a.src.Started()
	writeJSON(w, http.StatusOK, Status{
		Version:          a.opts.Version,
		Started:          started.UTC(),
		UptimeSeconds:    time.Since(started).Seconds(),
		DataDir:          a.src.Dir(),
		DiskBytes:        a.src.DiskUsage(),
		Ingested:         a.src.Totals(),
		PerSecond:        a.src.Rates(),
		Services:         a.src.Services(),
		UncleanShutdowns: a.src.UncleanShutdowns(),
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(s))
}
