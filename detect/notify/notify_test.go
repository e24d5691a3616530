package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the injected clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder is an HTTP receiver that records what it is sent and answers
// with the codes queued in codes (200 once they run out).
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []received
	codes []int
	hang  chan struct{} // if set, requests wait until it is closed
	seen  chan struct{} // a value per request received
}

type received struct {
	path   string
	header http.Header
	body   []byte
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{seen: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.URL.Path, req.Header.Clone(), b})
		code := http.StatusOK
		if len(r.codes) > 0 {
			code, r.codes = r.codes[0], r.codes[1:]
		}
		hang := r.hang
		r.mu.Unlock()
		r.seen <- struct{}{}
		if hang != nil {
			select {
			case <-hang:
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) url(path string) string { return r.srv.URL + path }

// messages returns the webhook payloads received on path ("" for all).
func (r *recorder) messages(t *testing.T, path string) []WebhookMessage {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []WebhookMessage
	for _, g := range r.got {
		if path != "" && g.path != path {
			continue
		}
		var m WebhookMessage
		if err := json.Unmarshal(g.body, &m); err != nil {
			t.Fatalf("bad payload %s: %v", g.body, err)
		}
		out = append(out, m)
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) answer(codes ...int) {
	r.mu.Lock()
	r.codes = append(r.codes, codes...)
	r.mu.Unlock()
}

var quiet = slog.New(slog.DiscardHandler)

// harness is a notifier without its scheduler: the test moves the clock and
// calls step, which runs what is due and waits for the deliveries.
type harness struct {
	t     testing.TB
	n     *Notifier
	clock *fakeClock
	dir   string
	opts  Options
}

func newHarness(t testing.TB, config string, mod ...func(*Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, clock: &fakeClock{t: t0}, dir: filepath.Join(dir, "state")}
	h.opts = Options{Dir: h.dir, Now: h.clock.Now, Logger: quiet, ExternalURL: "http://outpost.example:8080"}
	if config != "" {
		h.opts.ConfigFile = filepath.Join(dir, "alertmanager.yml")
		if err := os.WriteFile(h.opts.ConfigFile, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range mod {
		f(&h.opts)
	}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	n, err := newNotifier(h.opts, false)
	if err != nil {
		h.t.Fatal(err)
	}
	h.n = n
	h.t.Cleanup(n.Close)
}

// restart closes the notifier and opens a new one on the same directory.
func (h *harness) restart() {
	h.t.Helper()
	h.n.Close()
	h.open()
}

func (h *harness) step() {
	h.n.tick()
	h.n.waitIdle()
}

// advance moves the clock by d in steps of at most by, stepping after each.
func (h *harness) advance(d, by time.Duration) {
	for d > 0 {
		s := min(d, by)
		h.clock.Add(s)
		d -= s
		h.step()
	}
}

func webhookConfig(url, extra string) string {
	return `
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
- name: team
  webhook_configs:
  - url: ` + url + `
` + extra
}

func alert(name, instance string, starts time.Time) Alert {
	return Alert{
		Labels:      map[string]string{"alertname": name, "instance": instance, "severity": "critical"},
		Annotations: map[string]string{"summary": name + " on " + instance},
		StartsAt:    starts,
		EndsAt:      starts.Add(24 * time.Hour),
	}
}

func TestBurstGivesOneNotification(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	for i := range 20 {
		h.n.Send(alert("HighLatency", fmt.Sprintf("host-%02d", i), t0))
		h.clock.Add(100 * time.Millisecond)
		h.step()
	}
	if c := rec.count(); c != 0 {
		t.Fatalf("%d notifications during group_wait", c)
	}
	h.advance(30*time.Second, 5*time.Second)
	msgs := rec.messages(t, "/hook")
	if len(msgs) != 1 {
		t.Fatalf("got %d notifications, want 1", len(msgs))
	}
	if len(msgs[0].Alerts) != 20 || msgs[0].Status != "firing" {
		t.Fatalf("notification has %d alerts, status %s", len(msgs[0].Alerts), msgs[0].Status)
	}
	if got, want := msgs[0].GroupKey, `{}:{alertname="HighLatency"}`; got != want {
		t.Errorf("groupKey %q, want %q", got, want)
	}
	h.advance(4*time.Minute, 30*time.Second)
	if c := rec.count(); c != 1 {
		t.Fatalf("%d notifications before group_interval, want 1", c)
	}
}

func TestNewAlertWaitsForGroupInterval(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Second, 10*time.Second) // first flush at t0+30s
	if c := rec.count(); c != 1 {
		t.Fatalf("%d notifications after group_wait, want 1", c)
	}
	h.advance(time.Minute, 10*time.Second)
	h.n.Send(alert("HighLatency", "b", h.clock.Now()))
	h.advance(3*time.Minute+50*time.Second, 10*time.Second) // t0+5m20s: 10 s before the next flush
	if c := rec.count(); c != 1 {
		t.Fatalf("a joining alert was notified before group_interval (%d notifications)", c)
	}
	h.advance(10*time.Second, 10*time.Second)
	msgs := rec.messages(t, "")
	if len(msgs) != 2 {
		t.Fatalf("got %d notifications after group_interval, want 2", len(msgs))
	}
	if len(msgs[1].Alerts) != 2 {
		t.Fatalf("second notification has %d alerts, want 2", len(msgs[1].Alerts))
	}
	// Another alert in another group opens its own group with its own wait.
	h.n.Send(alert("DiskFull", "a", h.clock.Now()))
	h.advance(20*time.Second, 10*time.Second)
	if c := rec.count(); c != 2 {
		t.Fatalf("new group notified before group_wait (%d)", c)
	}
	h.advance(10*time.Second, 10*time.Second)
	if msgs := rec.messages(t, ""); len(msgs) != 3 || msgs[2].GroupLabels["alertname"] != "DiskFull" {
		t.Fatalf("new group not notified after group_wait: %d notifications", len(msgs))
	}
}

func TestRepeatInterval(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	if c := rec.count(); c != 1 {
		t.Fatalf("%d notifications, want 1", c)
	}
	// Flushes happen at t0+30s+k*5m; the first more than 4h after the
	// notification (t0+4h5m30s, not t0+4h30s) repeats it.
	h.advance(4*time.Hour, time.Minute)
	if c := rec.count(); c != 1 {
		t.Fatalf("unchanged group repeated before repeat_interval (%d notifications)", c)
	}
	h.advance(5*time.Minute, time.Minute)
	if c := rec.count(); c != 2 {
		t.Fatalf("unchanged group not repeated after repeat_interval (%d notifications)", c)
	}
	h.advance(4*time.Hour-10*time.Minute, 5*time.Minute)
	if c := rec.count(); c != 2 {
		t.Fatalf("second repeat came early (%d notifications)", c)
	}
}

func TestResolvedNotification(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, `
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
  - receiver: team
    continue: true
  - receiver: quiet
receivers:
- name: team
  webhook_configs:
  - url: `+rec.url("/hook")+`
- name: quiet
  webhook_configs:
  - url: `+rec.url("/quiet")+`
    send_resolved: false
`)
	a := alert("HighLatency", "a", t0)
	a.EndsAt = time.Time{} // resolves through the resolve timeout unless resent
	h.n.Send(a)
	h.advance(30*time.Second, 30*time.Second)
	if len(rec.messages(t, "/hook")) != 1 || len(rec.messages(t, "/quiet")) != 1 {
		t.Fatalf("firing not notified to both receivers")
	}
	if st := h.n.Alerts(); len(st) != 1 || st[0].State != StateActive || strings.Join(st[0].Receivers, ",") != "quiet,team" {
		t.Fatalf("alerts: %+v", st)
	}
	// Not resent: resolves at t0+5m (resolve timeout); the flush at t0+5m30s tells.
	h.advance(5*time.Minute, 30*time.Second)
	msgs := rec.messages(t, "/hook")
	if len(msgs) != 2 {
		t.Fatalf("got %d notifications on /hook, want a resolved one", len(msgs))
	}
	r := msgs[1]
	if r.Status != "resolved" || len(r.Alerts) != 1 || r.Alerts[0].Status != "resolved" || !r.Alerts[0].EndsAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("resolved notification: %+v", r)
	}
	if n := len(rec.messages(t, "/quiet")); n != 1 {
		t.Fatalf("send_resolved: false receiver got %d notifications, want 1", n)
	}
	if st := h.n.Alerts(); len(st) != 1 || st[0].State != StateResolved {
		t.Fatalf("alert state after resolution: %+v", st)
	}
	if g := h.n.Groups(); len(g) != 0 {
		t.Fatalf("groups left after the resolved notification: %+v", g)
	}
	h.advance(10*time.Minute, time.Minute)
	if c := rec.count(); c != 3 {
		t.Fatalf("%d notifications after the resolution, want 3", c)
	}
	// An explicit resolution (EndsAt now) of a new occurrence works the same.
	b := alert("HighLatency", "b", h.clock.Now())
	h.n.Send(b)
	h.advance(30*time.Second, 30*time.Second)
	b.EndsAt = h.clock.Now()
	h.n.Send(b)
	h.advance(5*time.Minute, 30*time.Second)
	if msgs := rec.messages(t, "/hook"); len(msgs) != 4 || msgs[3].Status != "resolved" {
		t.Fatalf("explicit resolution not notified: %d", len(msgs))
	}
}

func TestSilence(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	id, err := h.n.PutSilence(Silence{
		Matchers:  mustMatchers(t, `alertname="HighLatency"`, `instance=~"a|b"`),
		StartsAt:  t0,
		EndsAt:    t0.Add(2 * time.Hour),
		CreatedBy: "alice",
		Comment:   "maintenance",
	})
	if err != nil {
		t.Fatal(err)
	}
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Minute, time.Minute)
	if c := rec.count(); c != 0 {
		t.Fatalf("silenced alert notified %d times", c)
	}
	st := h.n.Alerts()
	if len(st) != 1 || st[0].State != StateSuppressed || len(st[0].SilencedBy) != 1 || st[0].SilencedBy[0] != id {
		t.Fatalf("alert status: %+v", st)
	}
	// An unsilenced alert of the same group is notified alone.
	h.n.Send(alert("HighLatency", "c", h.clock.Now()))
	h.advance(5*time.Minute, time.Minute)
	msgs := rec.messages(t, "")
	if len(msgs) != 1 || len(msgs[0].Alerts) != 1 || msgs[0].Alerts[0].Labels["instance"] != "c" {
		t.Fatalf("want one notification of the unsilenced alert, got %+v", msgs)
	}
	if err := h.n.ExpireSilence(id); err != nil {
		t.Fatal(err)
	}
	if err := h.n.ExpireSilence(id); !errors.Is(err, ErrSilenceExpired) {
		t.Fatalf("expiring twice: %v", err)
	}
	if st := h.n.Alerts(); st[0].State != StateActive {
		t.Fatalf("state after expiry: %s", st[0].State)
	}
	// The next flush (group_interval after the last) lets it through.
	h.advance(5*time.Minute, time.Minute)
	msgs = rec.messages(t, "")
	if len(msgs) != 2 || len(msgs[1].Alerts) != 2 {
		t.Fatalf("after expiry: %d notifications, last %+v", len(msgs), msgs[len(msgs)-1])
	}
}

func TestSilenceEndsByItself(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	if _, err := h.n.PutSilence(Silence{Matchers: mustMatchers(t, `severity="critical"`), StartsAt: t0, EndsAt: t0.Add(20 * time.Minute), CreatedBy: "bob"}); err != nil {
		t.Fatal(err)
	}
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(20*time.Minute, time.Minute)
	if c := rec.count(); c != 0 {
		t.Fatalf("notified while silenced (%d)", c)
	}
	h.advance(5*time.Minute, time.Minute)
	if c := rec.count(); c != 1 {
		t.Fatalf("not notified at the first flush after the silence ended (%d)", c)
	}
}

func mustMatchers(t *testing.T, ss ...string) Matchers {
	t.Helper()
	var out Matchers
	for _, s := range ss {
		ms, err := ParseMatchers(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ms...)
	}
	return out
}

func TestRetryWithBackoff(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	rec.answer(500, 503, 429)
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	if c := rec.count(); c != 1 {
		t.Fatalf("%d attempts, want 1", c)
	}
	d := h.n.Deliveries(0)
	if len(d) != 1 || d[0].OK || d[0].Attempt != 1 || !strings.Contains(d[0].Error, "500") || d[0].Receiver != "team" || d[0].Integration != "webhook" || d[0].Alerts != 1 || d[0].Status != "firing" {
		t.Fatalf("deliveries: %+v", d)
	}
	// The first retry waits between 0.5 and 1 s, the second 1 to 2 s, the
	// third 2 to 4 s.
	h.advance(400*time.Millisecond, 400*time.Millisecond)
	if c := rec.count(); c != 1 {
		t.Fatalf("retried after 400ms (%d attempts)", c)
	}
	h.advance(600*time.Millisecond, 600*time.Millisecond)
	if c := rec.count(); c != 2 {
		t.Fatalf("%d attempts after 1 s, want 2", c)
	}
	h.advance(2*time.Second, 2*time.Second)
	h.advance(4*time.Second, 4*time.Second)
	if c := rec.count(); c != 4 {
		t.Fatalf("%d attempts, want 4", c)
	}
	d = h.n.Deliveries(10)
	if len(d) != 4 || !d[0].OK || d[0].Attempt != 4 || d[1].OK || d[1].Attempt != 3 || !strings.Contains(d[1].Error, "429") || !strings.Contains(d[2].Error, "503") {
		t.Fatalf("deliveries, newest first: %+v", d)
	}
	if got := h.n.Deliveries(2); len(got) != 2 || got[0] != d[0] {
		t.Fatalf("Deliveries(2) = %+v", got)
	}
	rs := h.n.Receivers()
	if len(rs) != 1 || rs[0].LastSuccess == nil || !strings.Contains(rs[0].LastError, "429") {
		t.Fatalf("receiver status: %+v", rs)
	}
	// Nothing more: the notification log has it.
	h.advance(10*time.Minute, time.Minute)
	if c := rec.count(); c != 4 {
		t.Fatalf("%d attempts after success, want 4", c)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	rec.answer(400, 404)
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	h.advance(4*time.Minute, 10*time.Second)
	if c := rec.count(); c != 1 {
		t.Fatalf("a 400 was retried: %d attempts", c)
	}
	// The next flush tries again, as a new notification.
	h.advance(time.Minute, 10*time.Second)
	d := h.n.Deliveries(0)
	if len(d) != 2 || d[0].Attempt != 1 || !strings.Contains(d[0].Error, "404") {
		t.Fatalf("deliveries: %+v", d)
	}
}

func TestRetriesStopAtNextFlush(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	codes := make([]int, 100)
	for i := range codes {
		codes[i] = 500
	}
	rec.answer(codes...)
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	h.advance(5*time.Minute-time.Second, time.Second)
	d := h.n.Deliveries(0)
	// Backoff 1, 2, 4, …, 64→60 s with jitter: about 9 to 13 attempts in 5 min.
	if len(d) < 6 || len(d) > 20 {
		t.Fatalf("%d attempts in one group_interval", len(d))
	}
	for i, x := range d {
		if x.Attempt != len(d)-i {
			t.Fatalf("attempt numbers: %+v", d)
		}
	}
	h.advance(time.Second, time.Second) // the next flush supersedes the retries
	if d2 := h.n.Deliveries(1); d2[0].Attempt != 1 {
		t.Fatalf("after the next flush: %+v", d2[0])
	}
}

func TestHangingReceiverBlocksNothing(t *testing.T) {
	slow, fast := newRecorder(t), newRecorder(t)
	slow.hang = make(chan struct{})
	t.Cleanup(func() { close(slow.hang) })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(cfg, []byte(`
route:
  receiver: fast
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  routes:
  - receiver: slow
    continue: true
  - receiver: fast
receivers:
- name: slow
  webhook_configs: [{url: "`+slow.url("/")+`"}]
- name: fast
  webhook_configs: [{url: "`+fast.url("/")+`"}]
`), 0o644)
	n, err := New(Options{Dir: filepath.Join(dir, "state"), ConfigFile: cfg, Logger: quiet, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	wait := func(r *recorder, what string) {
		t.Helper()
		select {
		case <-r.seen:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no request", what)
		}
	}
	n.Send(alert("First", "a", time.Now()))
	wait(slow, "slow receiver")
	wait(fast, "fast receiver, first group")
	// The slow receiver still hangs; another group and Send go on.
	for i := range 100 {
		n.Send(alert("Second", fmt.Sprint(i), time.Now()))
	}
	wait(fast, "fast receiver, second group")
	if c := fast.count(); c != 2 {
		t.Fatalf("fast receiver got %d notifications, want 2", c)
	}
	// Close cancels the hanging request and returns.
	n.Close()
	closed = true
	n.Send(alert("Third", "a", time.Now()))
	n.tick()
	if n.busy != 0 {
		t.Fatalf("%d attempts in flight after Close", n.busy)
	}
	if c := fast.count(); c != 2 {
		t.Fatalf("delivery after Close: %d", c)
	}
}

func TestNoDeliveryAfterClose(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	h.n.Send(alert("HighLatency", "a", t0))
	h.n.Close()
	h.clock.Add(time.Hour)
	h.n.Send(alert("HighLatency", "b", t0))
	h.step()
	if c := rec.count(); c != 0 {
		t.Fatalf("%d deliveries after Close", c)
	}
	if len(h.n.Alerts()) != 1 {
		t.Fatalf("Send after Close stored an alert")
	}
	if _, err := h.n.PutSilence(Silence{Matchers: mustMatchers(t, `a="b"`), EndsAt: t0.Add(2 * time.Hour)}); err == nil {
		t.Fatal("PutSilence after Close succeeded")
	}
}

func TestRestartKeepsState(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	if err := h.n.PutReceiver(UIReceiver{
		Name:           "ops",
		Matchers:       []string{`severity="critical"`},
		GroupBy:        []string{"instance"},
		WebhookConfigs: []WebhookConfig{{URL: Secret(rec.url("/ops"))}},
	}); err != nil {
		t.Fatal(err)
	}
	sid, err := h.n.PutSilence(Silence{Matchers: mustMatchers(t, `alertname="Muted"`), StartsAt: t0, EndsAt: t0.Add(48 * time.Hour), CreatedBy: "carol", Comment: "known"})
	if err != nil {
		t.Fatal(err)
	}
	a := alert("HighLatency", "a", t0)
	h.n.Send(a, alert("Muted", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	if len(rec.messages(t, "/hook")) != 1 || len(rec.messages(t, "/ops")) != 1 {
		t.Fatalf("before restart: hook %d, ops %d", len(rec.messages(t, "/hook")), len(rec.messages(t, "/ops")))
	}
	before := h.n.Deliveries(0)

	h.restart()
	h.clock.Add(time.Minute)
	// The rule manager sends its alerts again.
	h.n.Send(a, alert("Muted", "a", t0))
	h.advance(2*time.Hour, 5*time.Minute)
	if c := rec.count(); c != 2 {
		t.Fatalf("restart notified unchanged groups again: %d notifications, want 2", c)
	}
	ss := h.n.Silences()
	if len(ss) != 1 || ss[0].ID != sid || ss[0].Status.State != SilenceStateActive || ss[0].Comment != "known" {
		t.Fatalf("silences after restart: %+v", ss)
	}
	rs := h.n.Receivers()
	if len(rs) != 2 || rs[1].Name != "ops" || rs[1].Source != "ui" || rs[1].Config == nil || rs[1].Config.WebhookConfigs[0].URL != secretMask {
		t.Fatalf("receivers after restart: %+v", rs)
	}
	if after := h.n.Deliveries(0); len(after) != len(before) || after[0] != before[0] {
		t.Fatalf("delivery log after restart: %d entries, want %d", len(after), len(before))
	}
	// The repeat interval still counts from the notification before the restart.
	h.advance(2*time.Hour+5*time.Minute, 5*time.Minute)
	if c := rec.count(); c != 4 {
		t.Fatalf("after repeat_interval: %d notifications, want 4", c)
	}
}

func TestNoConfigKeepsAlerts(t *testing.T) {
	h := newHarness(t, "")
	h.n.Send(alert("HighLatency", "a", t0), alert("HighLatency", "b", t0), Alert{Labels: map[string]string{}})
	h.advance(time.Hour, time.Minute)
	st := h.n.Alerts()
	if len(st) != 2 || st[0].State != StateActive || len(st[0].Receivers) != 0 {
		t.Fatalf("alerts: %+v", st)
	}
	if g := h.n.Groups(); len(g) != 1 || len(g[0].Alerts) != 2 || g[0].Receiver != "" {
		t.Fatalf("groups: %+v", g)
	}
	if d := h.n.Deliveries(0); len(d) != 0 {
		t.Fatalf("deliveries without receivers: %+v", d)
	}
	if err := h.n.Reload(); err != nil {
		t.Fatalf("Reload without a file: %v", err)
	}
	// A receiver created in the UI gets the alerts at once: they waited long enough.
	rec := newRecorder(t)
	if err := h.n.PutReceiver(UIReceiver{Name: "ui", WebhookConfigs: []WebhookConfig{{URL: Secret(rec.url("/ui"))}}}); err != nil {
		t.Fatal(err)
	}
	h.step()
	msgs := rec.messages(t, "/ui")
	if len(msgs) != 1 || len(msgs[0].Alerts) != 2 || msgs[0].Receiver != "ui" {
		t.Fatalf("UI receiver: %+v", msgs)
	}
	if err := h.n.DeleteReceiver("ui"); err != nil {
		t.Fatal(err)
	}
	if err := h.n.DeleteReceiver("ui"); !errors.Is(err, ErrReceiverNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	if rs := h.n.Receivers(); len(rs) != 0 {
		t.Fatalf("receivers after delete: %+v", rs)
	}
}

func TestUIReceivers(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	bad := []UIReceiver{
		{Name: ""},
		{Name: "x"},
		{Name: "team", WebhookConfigs: []WebhookConfig{{URL: "http://a/"}}},
		{Name: "x", WebhookConfigs: []WebhookConfig{{URL: "ftp://a/"}}},
		{Name: "x", Matchers: []string{`a=~"("`}, WebhookConfigs: []WebhookConfig{{URL: "http://a/"}}},
		{Name: "x", GroupBy: []string{"a", "a"}, WebhookConfigs: []WebhookConfig{{URL: "http://a/"}}},
		{Name: "x", EmailConfigs: []EmailConfig{{To: "ops@example.com"}}}, // no smarthost
		{Name: "a/b", WebhookConfigs: []WebhookConfig{{URL: "http://a/"}}},
	}
	for _, u := range bad {
		err := h.n.PutReceiver(u)
		if err == nil {
			t.Errorf("PutReceiver(%+v) succeeded", u)
			continue
		}
		if !errors.Is(err, ErrInvalidReceiver) && !errors.Is(err, ErrReceiverConflict) {
			t.Errorf("PutReceiver(%+v): %v is neither invalid nor conflict", u, err)
		}
	}
	if err := h.n.DeleteReceiver("team"); !errors.Is(err, ErrReceiverConflict) {
		t.Errorf("deleting a file receiver: %v", err)
	}
	// A secret sent back as <secret> keeps its value.
	tok := "s3cret"
	if err := h.n.PutReceiver(UIReceiver{Name: "ui", WebhookConfigs: []WebhookConfig{{URL: Secret(rec.url("/ui")), HTTPConfig: &HTTPConfig{BearerToken: Secret(tok)}}}}); err != nil {
		t.Fatal(err)
	}
	cfg := *h.n.Receivers()[1].Config
	if cfg.WebhookConfigs[0].HTTPConfig.BearerToken != secretMask {
		t.Fatalf("token shown: %+v", cfg.WebhookConfigs[0].HTTPConfig)
	}
	cfg.Matchers = []string{`alertname="X"`}
	if err := h.n.PutReceiver(cfg); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Test(context.Background(), "ui"); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	last := rec.got[len(rec.got)-1]
	rec.mu.Unlock()
	if last.path != "/ui" || last.header.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("test notification: path %s, auth %q", last.path, last.header.Get("Authorization"))
	}
	var m WebhookMessage
	json.Unmarshal(last.body, &m)
	if m.CommonLabels["alertname"] != "OutpostTestNotification" || m.Status != "firing" {
		t.Fatalf("test payload: %+v", m)
	}
	if err := h.n.Test(context.Background(), "nobody"); !errors.Is(err, ErrReceiverNotFound) {
		t.Fatalf("test of an unknown receiver: %v", err)
	}
	rec.answer(500)
	if err := h.n.Test(context.Background(), "team"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("failing test: %v", err)
	}
	if d := h.n.Deliveries(1); d[0].OK || d[0].Receiver != "team" {
		t.Fatalf("failed test not in the delivery log: %+v", d)
	}
}

func TestActionWebhooks(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, `
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 30m
  routes:
  - matchers: [service="checkout"]
    action_webhook_configs:
    - url: `+rec.url("/rollback")+`
receivers:
- name: team
  webhook_configs:
  - url: `+rec.url("/hook")+`
`)
	a := alert("ErrorRate", "a", t0)
	a.Labels["service"] = "checkout"
	h.n.Send(a)
	h.advance(30*time.Second, 30*time.Second)
	acts := rec.messages(t, "/rollback")
	if len(acts) != 1 || acts[0].Status != "firing" || acts[0].Receiver != actionReceiver {
		t.Fatalf("open: %+v", acts)
	}
	// More alerts and repeats do not open it again.
	b := alert("ErrorRate", "b", h.clock.Now())
	b.Labels["service"] = "checkout"
	h.n.Send(b)
	h.advance(2*time.Hour, 5*time.Minute)
	if n := len(rec.messages(t, "/rollback")); n != 1 {
		t.Fatalf("action webhook called %d times while open", n)
	}
	if n := len(rec.messages(t, "/hook")); n < 3 {
		t.Fatalf("receiver got %d notifications (repeats expected)", n)
	}
	// One alert resolves: still open. Both resolved: resolve.
	a.EndsAt = h.clock.Now()
	h.n.Send(a)
	h.advance(5*time.Minute, 5*time.Minute)
	if n := len(rec.messages(t, "/rollback")); n != 1 {
		t.Fatalf("resolved while an alert still fires")
	}
	b.EndsAt = h.clock.Now()
	h.n.Send(b)
	h.advance(5*time.Minute, 5*time.Minute)
	acts = rec.messages(t, "/rollback")
	if len(acts) != 2 || acts[1].Status != "resolved" {
		t.Fatalf("resolve: %+v", acts)
	}
	// A new occurrence opens again.
	a.StartsAt, a.EndsAt = h.clock.Now(), h.clock.Now().Add(time.Hour)
	h.n.Send(a)
	h.advance(30*time.Second, 30*time.Second)
	if n := len(rec.messages(t, "/rollback")); n != 3 {
		t.Fatalf("reopen: %d calls", n)
	}
}

func TestActionAnnotation(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, "")
	mk := func(inst string) Alert {
		a := alert("DeployBroken", inst, t0)
		a.Annotations["action_webhook"] = rec.url("/act")
		return a
	}
	a, b := mk("a"), mk("b")
	// A silence keeps the group from opening.
	sid, err := h.n.PutSilence(Silence{Matchers: mustMatchers(t, `alertname="DeployBroken"`), StartsAt: t0, EndsAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.n.Send(a, b)
	h.advance(10*time.Minute, time.Minute)
	if c := rec.count(); c != 0 {
		t.Fatalf("silenced action webhook called %d times", c)
	}
	h.n.ExpireSilence(sid)
	h.advance(5*time.Minute, time.Minute)
	acts := rec.messages(t, "/act")
	if len(acts) != 1 || acts[0].Status != "firing" || len(acts[0].Alerts) != 2 || acts[0].GroupLabels["alertname"] != "DeployBroken" {
		t.Fatalf("open: %+v", acts)
	}
	a.EndsAt, b.EndsAt = h.clock.Now(), h.clock.Now()
	h.n.Send(a, b)
	h.advance(5*time.Minute, time.Minute)
	acts = rec.messages(t, "/act")
	if len(acts) != 2 || acts[1].Status != "resolved" || len(acts[1].Alerts) != 2 {
		t.Fatalf("resolve: %+v", acts)
	}
	if st := h.n.Alerts(); len(st[0].Receivers) != 0 {
		t.Fatalf("action webhook listed as receiver: %+v", st[0].Receivers)
	}
}

func TestLimits(t *testing.T) {
	h := newHarness(t, "", func(o *Options) { o.MaxAlerts = 10; o.MaxGroups = 3 })
	for i := range 15 {
		h.n.Send(alert(fmt.Sprintf("A%d", i%5), fmt.Sprint(i), t0))
	}
	if got := len(h.n.Alerts()); got != 10 {
		t.Fatalf("%d alerts kept, want 10", got)
	}
	if got := len(h.n.Groups()); got != 3 {
		t.Fatalf("%d groups, want 3", got)
	}
}

func TestReloadKeepsConfigOnError(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook"), ""))
	os.WriteFile(h.opts.ConfigFile, []byte("route:\n  receiver: nobody\nreceivers:\n- name: team\n"), 0o644)
	err := h.n.Reload()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 2 || !strings.Contains(err.Error(), "alertmanager.yml:2: undefined receiver") {
		t.Fatalf("Reload: %v", err)
	}
	h.n.Send(alert("HighLatency", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	if c := rec.count(); c != 1 {
		t.Fatalf("old config not kept: %d notifications", c)
	}
	if !strings.Contains(h.n.ConfigYAML(), "<secret>") {
		t.Fatalf("config shown without hidden url: %s", h.n.ConfigYAML())
	}
}

func TestResolveTimeout(t *testing.T) {
	h := newHarness(t, webhookConfig("http://127.0.0.1:1/", "global:\n  resolve_timeout: 1m\n"))
	a := alert("X", "a", t0)
	a.EndsAt = time.Time{}
	h.n.Send(a)
	h.clock.Add(59 * time.Second)
	if st := h.n.Alerts(); st[0].State != StateActive || !st[0].EndsAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("before the timeout: %+v", st[0])
	}
	h.n.Send(a) // an update pushes the end further
	h.clock.Add(30 * time.Second)
	if st := h.n.Alerts(); st[0].State != StateActive {
		t.Fatalf("resolved although updated")
	}
	h.clock.Add(31 * time.Second)
	if st := h.n.Alerts(); st[0].State != StateResolved {
		t.Fatalf("not resolved after the timeout")
	}
}

func TestCorruptStateIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, silencesFile), []byte("{not json"), 0o644)
	_, err := New(Options{Dir: dir, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), silencesFile) {
		t.Fatalf("New with a corrupt state file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, silencesFile), []byte(`{"version": 99}`), 0o644)
	if _, err := New(Options{Dir: dir, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("New with a newer state file: %v", err)
	}
}
