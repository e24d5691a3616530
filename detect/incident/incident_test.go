package incident

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect"
	"outpost/tsdb"
)

var t0 = time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	*Manager
	clk       *clock
	dir       string
	anomalies []detect.Anomaly
	sent      [][]Alert
	opts      Options
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{now: t0}, dir: t.TempDir()}
	f.opts = Options{
		Dir: f.dir, Interval: -1, Now: f.clk.Now, ExternalURL: "http://outpost:8080/",
		Anomalies: func() []detect.Anomaly { return f.anomalies },
		Send:      func(a []Alert) { f.sent = append(f.sent, a) },
	}
	if mod != nil {
		mod(&f.opts)
	}
	f.open(t)
	t.Cleanup(func() { f.Close() })
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	m, err := Open(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.Manager = m
}

func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
}

// firing is an alert as the rule manager sends it while it fires.
func (f *fixture) firing(name string, since time.Time, kv ...string) Alert {
	ls := map[string]string{"alertname": name}
	for i := 0; i < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return Alert{Labels: ls, Annotations: map[string]string{"summary": name + " is firing"}, StartsAt: since, EndsAt: f.clk.Now().Add(4 * time.Minute)}
}

func resolved(a Alert, at time.Time) Alert { a.EndsAt = at; return a }

func kinds(inc Incident) string {
	var ks []string
	for _, e := range inc.Events {
		ks = append(ks, e.Kind)
	}
	return strings.Join(ks, ",")
}

func TestBurstOfRelatedAlertsIsOneIncident(t *testing.T) {
	f := newFixture(t, nil)
	var ids = map[uint64]bool{}
	for i := range 20 {
		ids[f.ObserveAlert("rate(errors[5m]) > 1", f.firing("HighErrors", t0, "job", "checkout", "instance", fmt.Sprint("pod-", i), "severity", "warning"))] = true
	}
	f.ObserveAlert("up == 0", f.firing("Down", t0, "job", "checkout", "severity", "critical"))
	other := f.ObserveAlert("x > 1", f.firing("DiskFull", t0, "job", "db"))
	if len(ids) != 1 || ids[other] {
		t.Fatalf("incidents %v and %d: want one for checkout and another for db", ids, other)
	}
	list := f.List("", 0)
	if len(list) != 2 {
		t.Fatalf("%d incidents, want 2", len(list))
	}
	inc := list[0]
	if inc.Service != "checkout" || inc.ServiceBy != "job" || len(inc.Members) != 21 || inc.Severity != "critical" || inc.State != StateOpen {
		t.Fatalf("first incident: service %q by %q, %d members, severity %q, state %s", inc.Service, inc.ServiceBy, len(inc.Members), inc.Severity, inc.State)
	}
	if got := kinds(inc); !strings.HasPrefix(got, "opened,joined,joined") || strings.Count(got, "joined") != 20 {
		t.Errorf("timeline %s", got)
	}
	if inc.Title != "HighErrors on checkout" || inc.Members[20].Expr != "up == 0" || inc.Members[0].Summary != "HighErrors is firing" {
		t.Errorf("title %q, expr %q, summary %q", inc.Title, inc.Members[20].Expr, inc.Members[0].Summary)
	}
	// Renewing an alert adds nothing.
	f.clk.Add(time.Minute)
	f.ObserveAlert("up == 0", f.firing("Down", t0, "job", "checkout", "severity", "critical"))
	if inc2, _ := f.Get(inc.ID); len(inc2.Events) != len(inc.Events) || len(inc2.Members) != 21 {
		t.Errorf("renewal changed the incident: %d events, %d members", len(inc2.Events), len(inc2.Members))
	}
}

func TestGroupWithoutService(t *testing.T) {
	for _, tc := range []struct {
		ls      map[string]string
		group   string
		service string
	}{
		{map[string]string{"alertname": "A", "service": "s", "job": "j"}, "service=s", "s"},
		{map[string]string{"alertname": "A", "service_name": "s2", "job": "j"}, "service=s2", "s2"},
		{map[string]string{"alertname": "A", "exported_job": "e"}, "service=e", "e"},
		{map[string]string{"alertname": "A", "instance": "i"}, "alertname=A", ""},
	} {
		g, s, _ := groupOf(KindAlert, tc.ls["alertname"], tc.ls)
		if g != tc.group || s != tc.service {
			t.Errorf("%v: group %q service %q, want %q %q", tc.ls, g, s, tc.group, tc.service)
		}
	}
}

func TestResolveReopenAndNew(t *testing.T) {
	f := newFixture(t, nil)
	a := f.firing("Slow", t0, "job", "api")
	id := f.ObserveAlert("e", a)
	f.clk.Add(2 * time.Minute)
	if got := f.ObserveAlert("e", resolved(a, f.clk.Now())); got != id {
		t.Fatalf("resolved alert answered incident %d, want %d", got, id)
	}
	inc, _ := f.Get(id)
	if inc.Members[0].Active || !inc.Members[0].Ended.Equal(f.clk.Now()) || inc.State != StateOpen {
		t.Fatalf("after the alert resolved: member active %v ended %v, state %s", inc.Members[0].Active, inc.Members[0].Ended, inc.State)
	}
	// Not quiet long enough yet.
	f.clk.Add(4 * time.Minute)
	f.Tick()
	if inc, _ = f.Get(id); inc.State != StateOpen {
		t.Fatalf("resolved after 4m quiet, QuietFor is 5m")
	}
	f.clk.Add(time.Minute)
	f.Tick()
	if inc, _ = f.Get(id); inc.State != StateResolved || inc.ResolvedBy != "" {
		t.Fatalf("state %s by %q after 5m quiet, want resolved by itself", inc.State, inc.ResolvedBy)
	}
	// Fires again within the join window: the same incident reopens.
	f.clk.Add(10 * time.Minute)
	b := f.firing("Slow", f.clk.Now(), "job", "api")
	if got := f.ObserveAlert("e", b); got != id {
		t.Fatalf("refiring within the join window opened %d, want %d reopened", got, id)
	}
	if inc, _ = f.Get(id); inc.State != StateOpen || !strings.HasSuffix(kinds(inc), "resolved,reopened,fired_again") {
		t.Fatalf("state %s, timeline %s", inc.State, kinds(inc))
	}
	// Resolve, wait past the window: a new incident.
	f.ObserveAlert("e", resolved(b, f.clk.Now()))
	f.clk.Add(5 * time.Minute)
	f.Tick()
	f.clk.Add(16 * time.Minute)
	if got := f.ObserveAlert("e", f.firing("Slow", f.clk.Now(), "job", "api")); got == id || got == 0 {
		t.Fatalf("firing after the join window answered %d, want a new incident", got)
	}
}

func TestStaleAlertEnds(t *testing.T) {
	f := newFixture(t, nil)
	id := f.ObserveAlert("e", f.firing("Gone", t0, "job", "api"))
	f.clk.Add(5 * time.Minute)
	f.Tick()
	if inc, _ := f.Get(id); !inc.Members[0].Active {
		t.Fatal("ended after 5m without renewal; the limit is more than 5m")
	}
	f.clk.Add(time.Second)
	f.Tick()
	inc, _ := f.Get(id)
	if inc.Members[0].Active || !inc.Members[0].Ended.Equal(t0) {
		t.Fatalf("not renewed for 5m1s: active %v, ended %v (want the last sighting)", inc.Members[0].Active, inc.Members[0].Ended)
	}
	f.Tick()
	if inc, _ := f.Get(id); inc.State != StateResolved {
		t.Fatalf("state %s: quiet since the last sighting more than 5m ago", inc.State)
	}
}

func TestAcknowledgeResolveDismiss(t *testing.T) {
	f := newFixture(t, nil)
	a := f.firing("Err", t0, "job", "api")
	id := f.ObserveAlert("e", a)
	if err := f.Acknowledge(id, "ana", "looking"); err != nil {
		t.Fatal(err)
	}
	if err := f.Acknowledge(id, "bob", ""); !errors.Is(err, ErrState) {
		t.Fatalf("second acknowledge: %v, want ErrState", err)
	}
	if err := f.Acknowledge(99, "bob", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown incident: %v, want ErrNotFound", err)
	}
	// Joining an acknowledged incident keeps it acknowledged.
	f.ObserveAlert("e2", f.firing("Err2", t0, "job", "api"))
	inc, _ := f.Get(id)
	if inc.State != StateAcked || inc.AckedBy != "ana" || len(inc.Members) != 2 {
		t.Fatalf("state %s by %q, %d members", inc.State, inc.AckedBy, len(inc.Members))
	}
	if err := f.Resolve(id, "ana", "rolled back"); err != nil {
		t.Fatal(err)
	}
	inc, _ = f.Get(id)
	if inc.State != StateResolved || inc.ResolvedBy != "ana" || inc.Events[len(inc.Events)-1].Text != "resolved by hand: rolled back" {
		t.Fatalf("state %s by %q, last event %+v", inc.State, inc.ResolvedBy, inc.Events[len(inc.Events)-1])
	}
	// The dismissed alert, still firing, opens nothing.
	f.clk.Add(time.Minute)
	a.EndsAt = f.clk.Now().Add(4 * time.Minute)
	if got := f.ObserveAlert("e", a); got != 0 || len(f.List("", 0)) != 1 {
		t.Fatalf("dismissed alert answered %d, %d incidents", got, len(f.List("", 0)))
	}
	// It ends and fires again: a new incident.
	f.ObserveAlert("e", resolved(a, f.clk.Now()))
	f.clk.Add(time.Minute)
	if got := f.ObserveAlert("e", f.firing("Err", f.clk.Now(), "job", "api")); got == 0 || got == id {
		t.Fatalf("alert firing again after dismissal answered %d", got)
	}
	if err := f.Note(id, "", "ana", "post-mortem on Friday"); err != nil {
		t.Fatal(err)
	}
}

func anomaly(metric, job string, since time.Time, score float64) detect.Anomaly {
	ls := labels.FromStrings(labels.MetricName, metric, "job", job)
	return detect.Anomaly{
		Labels: ls, Metric: metric, Selector: detect.Selector(ls), Score: score, Current: score,
		Since: since, Last: since, Active: true, Value: 2.4, Expected: 0.4, Lower: 0.3, Upper: 0.6,
		Explanation: metric + ": 2.4, expected 0.3–0.6",
	}
}

func TestAnomaliesJoinAndAreSent(t *testing.T) {
	f := newFixture(t, nil)
	id := f.ObserveAlert("e", f.firing("Err", t0, "job", "api"))
	f.anomalies = []detect.Anomaly{
		anomaly("latency_p99_seconds", "api", t0, 0.95),
		anomaly("queue_depth", "api", t0, 0.6), // weak: no incident
		anomaly("cpu", "batch", t0, 0.9),
	}
	f.anomalies[1].Current = 0.6
	f.Tick()
	inc, _ := f.Get(id)
	if len(inc.Members) != 2 || inc.Members[1].Kind != KindAnomaly || inc.Members[1].Upper == nil || *inc.Members[1].Upper != 0.6 {
		t.Fatalf("members %+v", inc.Members)
	}
	if n := len(f.List("", 0)); n != 2 {
		t.Fatalf("%d incidents, want 2 (api, batch)", n)
	}
	if len(f.sent) != 1 || len(f.sent[0]) != 2 {
		t.Fatalf("sent %v", f.sent)
	}
	a := f.sent[0][0]
	if a.Labels["job"] != "api" && a.Labels["job"] != "batch" || a.Labels["alertname"] != AnomalyAlertName || a.Labels["metric"] == "" || !a.EndsAt.After(t0) {
		t.Fatalf("anomaly alert %+v", a)
	}
	if !strings.HasPrefix(a.Annotations["incident_url"], "http://outpost:8080/incidents/") || !strings.Contains(a.GeneratorURL, "/graph?band=1") {
		t.Fatalf("links %q %q", a.Annotations["incident_url"], a.GeneratorURL)
	}
	// The anomaly ends: its member ends, a resolved alert is sent.
	f.anomalies = nil
	f.clk.Add(time.Minute)
	f.Tick()
	inc, _ = f.Get(id)
	if inc.Members[1].Active {
		t.Fatal("anomaly no longer listed is still an active member")
	}
	last := f.sent[len(f.sent)-1]
	if len(last) != 2 || !last[0].EndsAt.Equal(f.clk.Now()) {
		t.Fatalf("resolved anomaly alerts %+v", last)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	f := newFixture(t, nil)
	id := f.ObserveAlert("e", f.firing("Err", t0, "job", "api"))
	f.Acknowledge(id, "ana", "")
	a := f.firing("Other", t0, "job", "db")
	id2 := f.ObserveAlert("e", a)
	f.Resolve(id2, "bob", "")
	f.reopen(t)
	inc, err := f.Get(id)
	if err != nil || inc.State != StateAcked || inc.AckedBy != "ana" || len(inc.Events) != 2 {
		t.Fatalf("after restart: %+v, %v", inc, err)
	}
	// Dismissal survives too, and numbering goes on.
	a.EndsAt = f.clk.Now().Add(time.Minute)
	if got := f.ObserveAlert("e", a); got != 0 {
		t.Fatalf("dismissed alert opened %d after restart", got)
	}
	if got := f.ObserveAlert("e", f.firing("New", t0, "job", "web")); got != id2+1 {
		t.Fatalf("new incident %d, want %d", got, id2+1)
	}
}

func TestCapsAndRetention(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxMembers, o.MaxEvents, o.Retention = 5, 4, time.Hour })
	var id uint64
	for i := range 8 {
		id = f.ObserveAlert("e", f.firing("A", t0, "job", "api", "i", fmt.Sprint(i)))
	}
	inc, _ := f.Get(id)
	if len(inc.Members) != 5 || inc.DroppedMembers != 3 || len(inc.Events) != 4 || inc.DroppedEvents != 4 || inc.Events[0].Kind != "opened" {
		t.Fatalf("%d members (+%d), %d events (+%d), first %s", len(inc.Members), inc.DroppedMembers, len(inc.Events), inc.DroppedEvents, inc.Events[0].Kind)
	}
	f.Resolve(id, "x", "")
	f.clk.Add(time.Hour + time.Second)
	f.Tick()
	if _, err := f.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolved incident past retention: %v", err)
	}
	f.reopen(t)
	if n := len(f.List("", 0)); n != 0 {
		t.Fatalf("%d incidents after restart, want the deleted one gone", n)
	}
}

func TestListOrder(t *testing.T) {
	f := newFixture(t, nil)
	a := f.ObserveAlert("e", f.firing("A", t0, "job", "a", "severity", "warning"))
	b := f.ObserveAlert("e", f.firing("B", t0, "job", "b", "severity", "critical"))
	c := f.ObserveAlert("e", f.firing("C", t0, "job", "c"))
	d := f.ObserveAlert("e", f.firing("D", t0, "job", "d"))
	f.Acknowledge(c, "x", "")
	f.Resolve(d, "x", "")
	var got []uint64
	for _, inc := range f.List("", 0) {
		got = append(got, inc.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint([]uint64{b, a, c, d}) {
		t.Fatalf("order %v, want open by severity (b, a), acknowledged (c), resolved (d)", got)
	}
	if n := len(f.List("active", 0)); n != 3 {
		t.Fatalf("active: %d", n)
	}
	if open, acked := f.Counts(); open != 2 || acked != 1 {
		t.Fatalf("counts %d %d", open, acked)
	}
}

func TestMoved(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), &tsdb.Options{MaintenanceInterval: -1, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// An hour and a quarter of 15 s samples for four series of "api" and one of
	// another service; at t0 latency and the error counter jump.
	app := db.Appender(context.Background())
	start := t0.Add(-time.Hour)
	series := map[string]func(i int, t time.Time) float64{
		`latency_seconds`: func(i int, t time.Time) float64 {
			if t.Before(t0) {
				return 0.3 + 0.01*math.Sin(float64(i))
			}
			return 2.4
		},
		`errors_total`: func(i int, t time.Time) float64 {
			if t.Before(t0) {
				return float64(i)
			}
			return float64(int(t0.Sub(start)/(15*time.Second))) + 20*float64(i-int(t0.Sub(start)/(15*time.Second)))
		},
		`memory_bytes`:           func(i int, t time.Time) float64 { return 1e9 + 1e6*math.Sin(float64(i)) },
		`outpost_anomaly_score`:  func(i int, t time.Time) float64 { return float64(i % 2) },
		`request_seconds_bucket`: func(i int, t time.Time) float64 { return float64(i * i) },
	}
	for i := 0; ; i++ {
		ts := start.Add(time.Duration(i) * 15 * time.Second)
		if ts.After(t0.Add(10 * time.Minute)) {
			break
		}
		for name, f := range series {
			app.Append(0, labels.FromStrings(labels.MetricName, name, "job", "api"), ts.UnixMilli(), f(i, ts))
		}
		app.Append(0, labels.FromStrings(labels.MetricName, "latency_seconds", "job", "web"), ts.UnixMilli(), float64(i%7))
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.Queryable = db })
	f.clk.Add(10 * time.Minute)
	id := f.ObserveAlert("e", f.firing("Slow", t0.Add(time.Minute), "job", "api"))
	moved, err := f.Moved(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mv := range moved {
		names = append(names, mv.Metric)
	}
	if fmt.Sprint(names) != "[errors_total latency_seconds]" && fmt.Sprint(names) != "[latency_seconds errors_total]" {
		t.Fatalf("moved %v, want errors_total and latency_seconds only", names)
	}
	for _, mv := range moved {
		switch mv.Metric {
		case "errors_total":
			if !mv.Counter || math.Abs(mv.Before-1.0/15) > 1e-9 || math.Abs(mv.After-20.0/15) > 1e-9 {
				t.Errorf("errors_total: %+v, want a rate from 1/15 to 20/15", mv)
			}
		case "latency_seconds":
			if mv.After != 2.4 || mv.Change < 100 {
				t.Errorf("latency: %+v", mv)
			}
		}
	}
	// An incident without a service has no such evidence.
	id2 := f.ObserveAlert("e", f.firing("Lonely", t0))
	if moved, err := f.Moved(context.Background(), id2, 0); err != nil || moved != nil {
		t.Fatalf("no service: %v %v", moved, err)
	}
}

func TestCloseWaitsForLoop(t *testing.T) {
	var mu sync.Mutex
	ticks := 0
	f := newFixture(t, func(o *Options) {
		o.Interval = time.Millisecond
		o.Anomalies = func() []detect.Anomaly { mu.Lock(); ticks++; mu.Unlock(); return nil }
	})
	for {
		mu.Lock()
		n := ticks
		mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := ticks
	mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if ticks != n {
		t.Fatalf("ticked after Close: %d → %d", n, ticks)
	}
}
