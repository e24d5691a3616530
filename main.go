// Command outpost is a whole observability stack in one binary: it receives
// OpenTelemetry metrics, logs and traces over OTLP, keeps them in one data
// directory, and serves a web UI and query APIs.
//
// This file is the lifecycle script: parse the configuration, open the store, start
// the servers, wait for a signal, stop everything in reverse order.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"outpost/api"
	"outpost/assets"
	"outpost/demo"
	"outpost/detect"
	"outpost/detect/incident"
	"outpost/detect/notify"
	"outpost/detect/rules"
	"outpost/detect/rules/promrules"
	"outpost/ingest"
	"outpost/logindex"
	"outpost/store"
	"outpost/store/spanmetrics"
	"outpost/traceindex"
	"outpost/tsdb"
	"outpost/ui"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, false)
	case "demo":
		err = serve(args, true)
	case "detect":
		if len(args) == 0 || args[0] != "backtest" {
			err = errors.New("usage: " + detect.BacktestUsage)
			break
		}
		err = detect.BacktestMain(args[1:], os.Stdout, os.Stderr)
	case "backup":
		err = api.BackupMain(args, os.Stdout, os.Stderr)
	case "restore":
		err = store.RestoreMain(args, os.Stdout, os.Stderr)
	case "version":
		fmt.Println("outpost", buildVersion())
	case "help":
		usage(os.Stdout)
	default:
		usage(os.Stderr)
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost [command] [flags]

Commands:
  serve    receive OTLP, store it, serve the UI and APIs (the default)
  demo     like serve, and feed the server realistic telemetry of a small shop
  detect backtest --csv IN.csv [--out OUT.csv]
           run the anomaly detector over a CSV series, write timestamp,value,anomaly_score
  detect backtest --query SELECTOR [--start 7d] [--end now] [--url http://127.0.0.1:8080]
           run it over stored series and list what it would have flagged
  backup [--url http://127.0.0.1:8080] [--out FILE]
           write a consistent backup of a running server's data directory
  restore --from FILE [--data DIR]
           make a data directory from a backup
  version  print the version
Run "outpost serve -h" for the flags. Every flag can also be set in the
environment as OUTPOST_<FLAG>, e.g. OUTPOST_DATA=/var/lib/outpost.
`)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// defaultGOGC is the garbage collector's target when the GOGC environment
// variable does not set one: the heap may grow 30% past what was live after a
// collection instead of Go's 100% (VictoriaMetrics runs with 30 too). Most of
// the heap is long-lived (series, head chunks, the detector's state), so this
// takes about a quarter off resident memory under ingest, for more frequent
// collections of little garbage.
const defaultGOGC = 30

// setGCPercent applies defaultGOGC unless GOGC is set, and returns the target
// in force.
func setGCPercent() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	debug.SetGCPercent(defaultGOGC)
	return strconv.Itoa(defaultGOGC)
}

// cacheBytes maps --query-cache-bytes to PromOptions.CacheBytes, where zero
// means the default and a negative size no cache.
func cacheBytes(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

type config struct {
	data, httpAddr, grpcAddr, otlpHTTPAddr string
	logLevel, logFormat                    string
	ingest                                 ingest.Options
	retention                              days
	promote                                string
	spanMetricsInterval                    time.Duration
	rulesDir                               string
	externalURL                            string
	notifyConfig                           string
	auth, adminPassword                    string
	tlsCert, tlsKey                        string
	detectSeries                           string
	demo                                   bool         // outpost demo
	settings                               []ui.Setting // every flag's value and where it came from
	detectMaxSeries                        int
	queryCacheBytes                        int64
}

// days is a duration flag that also takes days ("15d"), as Prometheus' retention does.
type days time.Duration

func (d *days) String() string { return time.Duration(*d).String() }
func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = days(time.Duration(v * float64(24*time.Hour)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = days(v)
	return nil
}

// parseFlags reads flags, then fills every flag not given from OUTPOST_<NAME>.
func parseFlags(name string, args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.data, "data", "./data", "data directory: the whole state of this server")
	fs.StringVar(&c.httpAddr, "http-addr", ":8080", "address of the web UI and query APIs")
	fs.StringVar(&c.grpcAddr, "otlp-grpc-addr", ":4317", "address of the OTLP/gRPC receiver")
	fs.StringVar(&c.otlpHTTPAddr, "otlp-http-addr", ":4318", "address of the OTLP/HTTP receiver")
	c.retention = days(15 * 24 * time.Hour)
	fs.Var(&c.retention, "retention", "how long data is kept (e.g. 15d, 72h); older time partitions are dropped whole")
	fs.StringVar(&c.promote, "promote-resource-attributes", "", "comma-separated OTLP resource attributes copied as labels onto every metric series")
	fs.DurationVar(&c.spanMetricsInterval, "span-metrics-interval", 15*time.Second, "how often metrics derived from spans (traces_span_metrics_*, traces_service_graph_*) are written")
	fs.StringVar(&c.rulesDir, "rules-dir", "", "directory of Prometheus rule files (*.yml, *.yaml), re-read on SIGHUP and when they change")
	fs.StringVar(&c.auth, "auth", "login", "login: the UI and query APIs need a sign-in (session or HTTP basic auth); none: open to anyone who can reach them")
	fs.StringVar(&c.adminPassword, "admin-password", "", "password of the user admin (default: made at the first start and written to <data>/initial-admin-password)")
	fs.StringVar(&c.tlsCert, "tls-cert-file", "", "serve the UI, the APIs and OTLP over TLS with this certificate (PEM; with --tls-key-file)")
	fs.StringVar(&c.tlsKey, "tls-key-file", "", "private key of --tls-cert-file (PEM)")
	fs.StringVar(&c.notifyConfig, "notify-config", "", "Alertmanager-style configuration (route, receivers: webhook, Slack, e-mail) for notifications, re-read on SIGHUP")
	fs.StringVar(&c.detectSeries, "detect-series", "", "comma-separated PromQL series selectors the anomaly detector watches, e.g. '{job=\"checkout\"},http_server_request_duration_seconds_count' (default: every series)")
	fs.IntVar(&c.detectMaxSeries, "detect-max-series", 10000, "most series the anomaly detector watches at once; series that went quiet make room for new ones")
	fs.StringVar(&c.externalURL, "external-url", "", "the address people reach this server at, for links in notifications (default http://<hostname>:<http-addr port>)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&c.ingest.Token, "ingest-token", "", "if set, OTLP clients must send Authorization: Bearer <token>")
	fs.Int64Var(&c.queryCacheBytes, "query-cache-bytes", 32<<20, "memory for range-query answers kept to answer the same query again (a dashboard's refresh) from the steps already evaluated; 0 turns the cache off")
	fs.Int64Var(&c.ingest.MaxRequestBytes, "max-request-bytes", 8<<20, "largest OTLP request body as sent (compressed)")
	fs.Int64Var(&c.ingest.MaxDecompressedBytes, "max-decompressed-bytes", 32<<20, "largest OTLP request body after decompression")
	fs.IntVar(&c.ingest.MaxConcurrentRequests, "max-concurrent-requests", 32, "OTLP requests processed at once; more are told to retry")
	fs.IntVar(&c.ingest.MaxAttributes, "max-attributes", 128, "most attributes on one record, scope or resource; records over it are rejected")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "OUTPOST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		source := "default"
		if given[f.Name] {
			source = "flag"
		}
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("invalid %s=%q: %w", env, v, serr)
			}
			source = env
		}
		value := f.Value.String()
		if value != "" && (strings.Contains(f.Name, "token") || strings.Contains(f.Name, "password")) {
			value = "(set, not shown)"
		}
		c.settings = append(c.settings, ui.Setting{Name: f.Name, Value: value, Default: f.DefValue, Source: source, Usage: f.Usage})
	})
	if err != nil {
		return nil, err
	}
	if c.auth != "login" && c.auth != "none" {
		return nil, fmt.Errorf("invalid --auth %q: want login or none", c.auth)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if c.tlsCert != "" && name == "demo" {
		return nil, errors.New("the demo sends its telemetry without TLS: run it without --tls-cert-file")
	}
	return c, err
}

func newLogger(c *config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid log level %q: %w", c.logLevel, err)
	}
	o := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("invalid log format %q: want text or json", c.logFormat)
}

func serve(args []string, withDemo bool) error {
	name := map[bool]string{false: "serve", true: "demo"}[withDemo]
	c, err := parseFlags(name, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	c.demo = withDemo
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ver := buildVersion()
	log.Info("starting outpost", "version", ver, "data", c.data, "pid", os.Getpid(), "gogc", setGCPercent())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1) // SIGHUP re-reads the rule files
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	t0 := time.Now()
	// Span metrics and the service graph: a tap on stored spans, written to the
	// TSDB directly (derived points are not counted as ingested).
	spanAgg := spanmetrics.New(&spanmetrics.Options{FlushInterval: c.spanMetricsInterval, Logger: log.With("component", "spanmetrics")})
	st, err := store.Open(c.data, &store.Options{
		Logger: log,
		Taps:   []store.Tap{spanAgg},
		OpenMetrics: func(dir string) (store.MetricsBackend, error) {
			return tsdb.Open(dir, &tsdb.Options{
				Logger:                    log.With("store", "tsdb"),
				Retention:                 time.Duration(c.retention),
				PromoteResourceAttributes: splitList(c.promote),
			})
		},
		OpenLogs: func(dir string) (store.LogsBackend, error) {
			return logindex.Open(dir, &logindex.Options{Logger: log.With("store", "logs"), Retention: time.Duration(c.retention)})
		},
		OpenTraces: func(dir string) (store.TracesBackend, error) {
			return traceindex.Open(dir, &traceindex.Options{Logger: log.With("store", "traces"), Retention: time.Duration(c.retention)})
		},
	})
	if err != nil {
		return err
	}
	if st.UncleanShutdown() {
		log.Warn("unclean shutdown detected", "unclean_shutdowns_total", st.UncleanShutdowns())
	}
	log.Info("store open", "took_ms", time.Since(t0).Milliseconds())

	reg := api.NewRegistry()
	reg.MustRegister(spanAgg.Collectors()...)
	inst := api.NewInstrument(reg)
	c.ingest.Logger, c.ingest.Registerer = log, reg
	recv := ingest.NewReceiver(st, &c.ingest)
	apiH := api.New(st, api.Options{Version: ver, Logger: log, Registry: reg})
	api.NewBackup(st, log).Register(apiH.Handle)
	uiH := ui.New(st, ui.Options{Version: ver, Logger: log})
	uiH.Handle("GET /settings", ui.NewSettingsPage(uiH, c.settings))
	var det *detectors // anomaly detection, rules, incidents: over the TSDB
	if db, ok := st.MetricsBackend().(*tsdb.DB); ok {
		if det, err = startDetect(c, ver, st, db, log, reg, apiH, uiH); err != nil {
			st.Close()
			return err
		}
		reg.MustRegister(db.Collectors()...)
		api.NewPrometheus(db, api.PromOptions{Version: ver, Logger: log, Registerer: reg, CacheBytes: cacheBytes(c.queryCacheBytes)}).Register(apiH.Handle)
		uiH.Handle("GET /graph", ui.NewMetricsPage(uiH, db))
		spanAgg.Start(func(ctx context.Context, md pmetric.Metrics) error {
			_, _, err := db.WriteMetrics(ctx, md)
			return err
		})
	}
	if ix, ok := st.TracesBackend().(*traceindex.Index); ok {
		api.NewJaeger(ix, api.JaegerOptions{Logger: log}).Register(apiH.Handle)
		var spanMetrics storage.Queryable
		if db, ok := st.MetricsBackend().(*tsdb.DB); ok {
			spanMetrics = db
		}
		ui.NewTracePages(uiH, ix, spanMetrics).Register(uiH.Handle)
	}
	var logsAPI *api.Logs
	if ix, ok := st.LogsBackend().(*logindex.Index); ok {
		reg.MustRegister(ix.Collectors()...)
		logsAPI = api.NewLogs(ix, api.LogsOptions{Logger: log})
		logsAPI.Register(apiH.Handle)
		uiH.Handle("GET /logs", ui.NewLogsPage(uiH))
	}
	mux := http.NewServeMux()
	mux.Handle("/assets/", inst.Wrap("assets", http.StripPrefix("/assets/", assets.Handler())))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if apiH.Handles(r) {
			inst.Wrap("api", apiH).ServeHTTP(w, r)
			return
		}
		inst.Wrap("ui", uiH).ServeHTTP(w, r)
	}))
	var handler http.Handler = mux
	switch c.auth {
	case "login":
		auth, err := api.OpenAuth(api.AuthOptions{
			Dir: st.Dir(), AdminPassword: c.adminPassword, SecureCookies: c.tlsCert != "", Logger: log.With("component", "auth"),
			WithUser: func(r *http.Request, user string) *http.Request { return r.WithContext(ui.WithUser(r.Context(), user)) },
		})
		if err != nil {
			det.Close()
			st.Close()
			return err
		}
		ui.NewLoginPages(uiH, auth).Register(uiH.Handle)
		handler = auth.Wrap(mux)
	case "none":
		log.Warn("--auth=none: the UI and query APIs are open to anyone who can reach " + c.httpAddr)
	}
	var tlsConf *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			det.Close()
			st.Close()
			return fmt.Errorf("cannot load --tls-cert-file and --tls-key-file: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	// Listen on every address before serving any, so a taken port fails fast.
	lnUI, err1 := net.Listen("tcp", c.httpAddr)
	lnGRPC, err2 := net.Listen("tcp", c.grpcAddr)
	lnOTLP, err3 := net.Listen("tcp", c.otlpHTTPAddr)
	if err := errors.Join(err1, err2, err3); err != nil {
		for _, ln := range []net.Listener{lnUI, lnGRPC, lnOTLP} {
			if ln != nil {
				ln.Close()
			}
		}
		det.Close()
		st.Close()
		return fmt.Errorf("cannot listen: %w", err)
	}
	if tlsConf != nil {
		lnUI, lnOTLP = tls.NewListener(lnUI, tlsConf), tls.NewListener(lnOTLP, tlsConf)
	}
	uiSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if logsAPI != nil {
		uiSrv.RegisterOnShutdown(logsAPI.Close) // Shutdown does not wait for open tails
	}
	otlpSrv := &http.Server{Handler: recv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	var grpcOpts []grpc.ServerOption
	if tlsConf != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	grpcSrv := recv.NewGRPCServer(grpcOpts...)
	errc := make(chan error, 3)
	go func() { errc <- ignoreClosed(uiSrv.Serve(lnUI)) }()
	go func() { errc <- ignoreClosed(otlpSrv.Serve(lnOTLP)) }()
	go func() { errc <- grpcSrv.Serve(lnGRPC) }()
	apiH.SetReady(true)
	log.Info("listening", "http", lnUI.Addr().String(), "otlp_grpc", lnGRPC.Addr().String(), "otlp_http", lnOTLP.Addr().String(), "startup_ms", time.Since(t0).Milliseconds())

	demoDone := make(chan error, 1)
	demoCtx, stopDemo := context.WithCancel(ctx)
	defer stopDemo()
	if withDemo {
		go func() {
			demoDone <- demo.Run(demoCtx, demo.Options{GRPCEndpoint: dialable(lnGRPC.Addr()), HTTPEndpoint: dialable(lnOTLP.Addr()), Logger: log.With("component", "demo")})
		}()
		attrs := []any{"url", "http://" + dialable(lnUI.Addr()) + "/"}
		if pw := filepath.Join(st.Dir(), "initial-admin-password"); c.auth == "login" {
			if _, err := os.Stat(pw); err == nil {
				attrs = append(attrs, "sign_in", "admin, with the password in "+pw)
			}
		}
		log.Info("demo telemetry is flowing; open the UI", attrs...)
	} else {
		close(demoDone)
	}

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "reason", "signal")
			break wait
		case runErr = <-errc:
			log.Error("server failed; shutting down", "err", runErr)
			break wait
		case <-hup:
			if det != nil {
				log.Info("SIGHUP: re-reading rule files and the notification configuration")
				det.Reload() // refused files are logged and keep their last valid version
			}
		}
	}
	return shutdown(log, apiH, stopDemo, demoDone, uiSrv, otlpSrv, grpcSrv, spanAgg, det, st, runErr)
}

// shutdown stops in reverse order of starting, within 10 s in all: the demo feed,
// then the listeners (draining requests in flight), then the store.
func shutdown(log *slog.Logger, apiH *api.API, stopDemo func(), demoDone <-chan error, uiSrv, otlpSrv *http.Server, grpcSrv *grpc.Server, spanAgg *spanmetrics.Aggregator, det *detectors, st *store.Store, runErr error) error {
	t0 := time.Now()
	apiH.SetReady(false)
	stopDemo()
	select {
	case <-demoDone:
	case <-time.After(2 * time.Second):
		log.Warn("demo feed did not stop in time")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	grpcStopped := make(chan struct{})
	go func() { grpcSrv.GracefulStop(); close(grpcStopped) }()
	err := errors.Join(runErr, otlpSrv.Shutdown(ctx))
	select {
	case <-grpcStopped:
	case <-ctx.Done():
		grpcSrv.Stop()
	}
	log.Info("ingest stopped", "took_ms", time.Since(t0).Milliseconds())
	err = errors.Join(err, uiSrv.Shutdown(ctx))
	t1 := time.Now()
	if serr := spanAgg.Close(); serr != nil { // the last span metrics, before the TSDB closes
		log.Warn("cannot write the last span metrics", "err", serr)
	}
	det.Close() // rules, incidents and the detector's queue, before the TSDB closes
	if cerr := st.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("cannot close store: %w", cerr))
	}
	log.Info("store closed", "took_ms", time.Since(t1).Milliseconds(), "total_ms", time.Since(t0).Milliseconds())
	return err
}

// detectors are what watches the stored metrics: the live anomaly detector, the
// alert and recording rules, and the incidents both open.
type detectors struct {
	log       *slog.Logger
	live      *detect.Live
	rules     *rules.Manager
	incidents *incident.Manager
	notifier  *notify.Notifier
}

// silence creates a silence for the Incidents page.
func (d *detectors) silence(ms map[string]string, until time.Time, by, comment string) (string, error) {
	var matchers notify.Matchers
	for k, v := range ms {
		m, err := notify.NewMatcher(notify.MatchEqual, k, v)
		if err != nil {
			return "", err
		}
		matchers = append(matchers, m)
	}
	return d.notifier.PutSilence(notify.Silence{Matchers: matchers, StartsAt: time.Now(), EndsAt: until, CreatedBy: by, Comment: comment})
}

// startDetect starts the detectors over db and mounts their APIs and pages.
func startDetect(c *config, ver string, st *store.Store, db *tsdb.DB, log *slog.Logger, reg *prometheus.Registry, apiH *api.API, uiH *ui.Handler) (*detectors, error) {
	d := &detectors{log: log}
	var err error
	observe := tsdb.Observer(nil)
	if sels := detect.SplitSelectors(c.detectSeries); len(sels) > 0 {
		f, err := detect.NewFilter(sels)
		if err != nil {
			return nil, fmt.Errorf("invalid --detect-series: %w", err)
		}
		log.Info("anomaly detection limited to matching series", "selectors", sels)
		observe = f.Wrap(func(b []tsdb.ObservedSample) { d.live.Observe(b) })
	}
	if c.detectMaxSeries <= 0 {
		return nil, fmt.Errorf("invalid --detect-max-series %d: want a positive number", c.detectMaxSeries)
	}
	d.live, err = detect.NewLive(detect.LiveOptions{Storage: db, MetricTypes: metricTypes(db), MaxSeries: c.detectMaxSeries, Logger: log.With("component", "detect")})
	if err != nil {
		return nil, err
	}
	if observe == nil {
		observe = d.live.Observe
	}
	db.SetObserver(observe)
	reg.MustRegister(d.live.Collectors()...)
	api.NewAnomalies(d.live).Register(apiH.Handle)
	uiH.Handle("GET /anomalies", ui.NewAnomaliesPage(uiH, d.live))

	// Notifications: routes, groups, silences and receivers, as Alertmanager.
	extURL := externalURL(c)
	d.notifier, err = notify.New(notify.Options{
		Dir: filepath.Join(st.Dir(), "detect", "notify"), ConfigFile: c.notifyConfig, ExternalURL: extURL,
		Logger: log.With("component", "notify"), Registerer: reg,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	api.NewNotify(d.notifier, api.NotifyOptions{Version: ver, Logger: log}).Register(apiH.Handle)
	ui.NewNotifyPages(uiH, d.notifier).Register(uiH.Handle)

	// Incidents: firing alerts and strong anomalies, grouped by service. Strong
	// anomalies are notified like alerts.
	d.incidents, err = incident.Open(incident.Options{
		Dir: filepath.Join(st.Dir(), "detect", "incidents"), Anomalies: d.live.Anomalies, Queryable: db,
		ExternalURL: extURL, Logger: log.With("component", "incidents"),
		Send: func(as []incident.Alert) {
			out := make([]notify.Alert, len(as))
			for i, a := range as {
				out[i] = notify.Alert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}
			}
			d.notifier.Send(out...)
		},
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	st.AddSnapshotter("detect/incidents", d.incidents)
	api.NewIncidents(d.incidents).Register(apiH.Handle)
	ui.NewIncidentPages(uiH, d.incidents, d.silence).Register(uiH.Handle)
	uiH.ShowIncidents(d.incidents)

	// Alert and recording rules: the operator's files and those made in the UI.
	// Alerts due to be sent join incidents (their notifications link them), then
	// go to the notifier.
	d.rules, err = rules.New(rules.Options{
		Storage: db, Dir: c.rulesDir, UserDir: filepath.Join(st.Dir(), "detect", "rules"),
		Logger: log.With("component", "rules"), Registerer: reg,
		Notify: func(_ context.Context, expr string, alerts ...*promrules.Alert) {
			as := notify.FromRules(extURL, expr, alerts...)
			for i, a := range as {
				id := d.incidents.ObserveAlert(expr, incident.Alert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL})
				if id != 0 {
					as[i].Annotations = maps.Clone(a.Annotations)
					if as[i].Annotations == nil {
						as[i].Annotations = map[string]string{}
					}
					as[i].Annotations["incident_url"] = d.incidents.URL(id)
				}
			}
			if len(as) > 0 {
				d.notifier.Send(as...)
			}
		},
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	if c.demo {
		d.provisionDemoRules()
	}
	api.NewRules(d.rules, api.RulesOptions{Logger: log}).Register(apiH.Handle)
	ui.NewRulesPages(uiH, d.rules).Register(uiH.Handle)
	return d, nil
}

// demoRules is the rule group the demo starts with: an alert on the error rate
// its error bursts raise, so the demo shows incidents from rules as well as
// from anomalies.
const demoRules = `name: demo
interval: 15s
rules:
  - alert: HighErrorRate
    expr: |
      sum by (job) (rate(traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_ERROR"}[1m]))
        / sum by (job) (rate(traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"}[1m])) > 0.1
    for: 30s
    labels:
      severity: critical
    annotations:
      summary: "{{ $labels.job }}: {{ $value | humanizePercentage }} of requests fail"
`

// provisionDemoRules adds the demo's rule group, unless one named demo exists
// (a person may have edited or deleted it in the UI: a deleted one comes back
// at the next demo start).
func (d *detectors) provisionDemoRules() {
	if _, err := d.rules.UserGroup("demo"); err == nil {
		return
	}
	if ferrs, err := d.rules.PutGroup("demo", []byte(demoRules)); err != nil {
		d.log.Warn("cannot add the demo's alert rules", "err", err, "errors", ferrs)
	}
}

// Reload re-reads the rule files and the notification configuration; a
// refused file is logged and the running version kept.
func (d *detectors) Reload() {
	if d == nil {
		return
	}
	if d.rules != nil {
		d.rules.Reload()
	}
	if d.notifier != nil {
		if err := d.notifier.Reload(); err != nil {
			d.log.Error("notification configuration refused; the previous one keeps running", "err", err)
		}
	}
}

// Close stops rule evaluation, then incidents, then scores what the detector
// has queued; all before the TSDB closes. A nil d does nothing.
func (d *detectors) Close() {
	if d == nil {
		return
	}
	if d.rules != nil {
		d.rules.Close()
	}
	if d.incidents != nil {
		if err := d.incidents.Close(); err != nil {
			d.log.Warn("cannot close incidents", "err", err)
		}
	}
	if d.notifier != nil { // after everything that sends to it
		d.notifier.Close()
	}
	if d.live != nil {
		d.live.Close()
	}
}

// externalURL is --external-url, or http://<hostname>:<port of --http-addr>.
func externalURL(c *config) string {
	if c.externalURL != "" {
		return strings.TrimRight(c.externalURL, "/")
	}
	host, port, err := net.SplitHostPort(c.httpAddr)
	if err != nil {
		return ""
	}
	if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// metricTypes reads the metric types the detector needs from the TSDB's metadata.
func metricTypes(db *tsdb.DB) func() map[string]string {
	return func() map[string]string {
		m := map[string]string{}
		for name, md := range db.Metadata() {
			m[name] = md.Type
		}
		return m
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// dialable turns a listen address such as [::]:4317 into one a client can dial.
func dialable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
