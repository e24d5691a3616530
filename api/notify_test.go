package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/detect/notify"
)

// notifyServer serves the notification API over a real notifier whose
// configuration sends to a local webhook that answers with the codes queued
// in fail (200 once they run out).
func notifyServer(t *testing.T) (srv *httptest.Server, n *notify.Notifier, hook *hookRecorder) {
	t.Helper()
	hook = &hookRecorder{}
	hs := httptest.NewServer(hook)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(cfg, []byte(`
route:
  receiver: team
  group_by: [alertname]
  routes:
  - matchers: [severity="page"]
    receiver: pager
receivers:
- name: team
  webhook_configs:
  - url: `+hs.URL+`/team
- name: pager
  webhook_configs:
  - url: `+hs.URL+`/pager
`), 0o644)
	n, err := notify.New(notify.Options{Dir: filepath.Join(dir, "state"), ConfigFile: cfg, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return base }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	mux := http.NewServeMux()
	NewNotify(n, NotifyOptions{Version: "v1.2.3", Started: base, Logger: slog.New(slog.DiscardHandler)}).Register(mux.Handle)
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, n, hook
}

type hookRecorder struct {
	mu    sync.Mutex
	paths []string
	fail  []int
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.paths = append(h.paths, r.URL.Path)
	code := 200
	if len(h.fail) > 0 {
		code, h.fail = h.fail[0], h.fail[1:]
	}
	h.mu.Unlock()
	w.WriteHeader(code)
}

func TestNotifyAlertsAPI(t *testing.T) {
	srv, n, _ := notifyServer(t)
	u := srv.URL
	post := `[
	 {"labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "page"}, "annotations": {"summary": "disk"},
	  "startsAt": "2025-12-31T23:50:00Z", "generatorURL": "http://x/graph"},
	 {"labels": {"alertname": "DiskFull", "instance": "db-2"}},
	 {"labels": {"alertname": "HighLatency", "instance": "web-1"}, "endsAt": "2026-01-01T01:00:00Z"},
	 {"labels": {"alertname": "Gone", "instance": "x"}, "startsAt": "2025-12-31T22:00:00Z", "endsAt": "2025-12-31T23:00:00Z"}
	]`
	call(t, "POST", u+"/api/v2/alerts", post, 200, nil)
	var errMsg string
	call(t, "POST", u+"/api/v2/alerts", `[{"labels": {}}, {"labels": {"alertname": "Valid"}}]`, 400, &errMsg)
	if !strings.Contains(errMsg, "alert 0: at least one label pair required") {
		t.Errorf("error %q", errMsg)
	}
	call(t, "POST", u+"/api/v2/alerts", `{"not": "a list"}`, 400, nil)

	type amAlertJSON struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Fingerprint string            `json:"fingerprint"`
		Receivers   []struct {
			Name string `json:"name"`
		} `json:"receivers"`
		StartsAt, EndsAt, UpdatedAt time.Time
		GeneratorURL                string `json:"generatorURL"`
		Status                      struct {
			State       string   `json:"state"`
			SilencedBy  []string `json:"silencedBy"`
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	var all []amAlertJSON
	call(t, "GET", u+"/api/v2/alerts", "", 200, &all)
	if len(all) != 4 { // the resolved one is left out, the valid one of the refused batch is in
		t.Fatalf("got %d alerts: %+v", len(all), all)
	}
	byInst := map[string]amAlertJSON{}
	for _, a := range all {
		byInst[a.Labels["instance"]] = a
	}
	db1 := byInst["db-1"]
	if db1.Status.State != "active" || len(db1.Receivers) != 1 || db1.Receivers[0].Name != "pager" || db1.Annotations["summary"] != "disk" ||
		db1.GeneratorURL != "http://x/graph" || len(db1.Fingerprint) != 16 || db1.Status.InhibitedBy == nil || !db1.EndsAt.Equal(base.Add(5*time.Minute)) {
		t.Errorf("db-1: %+v", db1)
	}
	// Filters.
	var got []amAlertJSON
	call(t, "GET", u+"/api/v2/alerts?filter="+url.QueryEscape(`alertname="DiskFull"`)+"&filter="+url.QueryEscape(`instance=~"db-2|db-3"`), "", 200, &got)
	if len(got) != 1 || got[0].Labels["instance"] != "db-2" {
		t.Errorf("filtered: %+v", got)
	}
	call(t, "GET", u+"/api/v2/alerts?receiver=pag.*", "", 200, &got)
	if len(got) != 1 || got[0].Labels["instance"] != "db-1" {
		t.Errorf("by receiver: %+v", got)
	}
	call(t, "GET", u+"/api/v2/alerts?filter="+url.QueryEscape(`alertname=~"(`), "", 400, nil)
	call(t, "GET", u+"/api/v2/alerts?silenced=maybe", "", 400, nil)
	call(t, "GET", u+"/api/v2/alerts?receiver=(", "", 400, nil)

	// Silence db-2: it is suppressed, and silenced=false leaves it out.
	var created struct {
		SilenceID string `json:"silenceID"`
	}
	call(t, "POST", u+"/api/v2/silences", `{"matchers": [{"name": "instance", "value": "db-2", "isRegex": false}],
	 "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T02:00:00Z", "createdBy": "alice", "comment": "disk swap"}`, 200, &created)
	call(t, "GET", u+"/api/v2/alerts?filter="+url.QueryEscape(`instance="db-2"`), "", 200, &got)
	if len(got) != 1 || got[0].Status.State != "suppressed" || len(got[0].Status.SilencedBy) != 1 || got[0].Status.SilencedBy[0] != created.SilenceID {
		t.Fatalf("silenced alert: %+v", got)
	}
	call(t, "GET", u+"/api/v2/alerts?silenced=false", "", 200, &got)
	if len(got) != 3 {
		t.Errorf("silenced=false: %d alerts", len(got))
	}
	call(t, "GET", u+"/api/v2/alerts?active=false", "", 200, &got)
	if len(got) != 1 {
		t.Errorf("active=false: %d alerts", len(got))
	}

	var groups []struct {
		Labels   map[string]string `json:"labels"`
		Receiver struct {
			Name string `json:"name"`
		} `json:"receiver"`
		Alerts []amAlertJSON `json:"alerts"`
	}
	call(t, "GET", u+"/api/v2/alerts/groups", "", 200, &groups)
	if len(groups) != 4 {
		t.Fatalf("groups: %+v", groups)
	}
	if groups[0].Receiver.Name != "pager" || groups[0].Labels["alertname"] != "DiskFull" || len(groups[0].Alerts) != 1 {
		t.Errorf("first group: %+v", groups[0])
	}
	call(t, "GET", u+"/api/v2/alerts/groups?receiver=team&filter="+url.QueryEscape(`alertname="DiskFull"`), "", 200, &groups)
	if len(groups) != 1 || groups[0].Alerts[0].Labels["instance"] != "db-2" {
		t.Errorf("filtered groups: %+v", groups)
	}
	call(t, "GET", u+"/api/v2/alerts/groups?active=x", "", 400, nil)

	if len(n.Alerts()) != 5 {
		t.Errorf("notifier holds %d alerts, want 5 (with the resolved one)", len(n.Alerts()))
	}
}

func TestNotifySilencesAPI(t *testing.T) {
	srv, _, _ := notifyServer(t)
	u := srv.URL
	var created struct {
		SilenceID string `json:"silenceID"`
	}
	body := `{"matchers": [{"name": "alertname", "value": "Disk.*", "isRegex": true}, {"name": "env", "value": "dev", "isRegex": false, "isEqual": false}],
	 "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T02:00:00Z", "createdBy": "alice", "comment": "maintenance"}`
	call(t, "POST", u+"/api/v2/silences", body, 200, &created)
	if created.SilenceID == "" {
		t.Fatal("no silence ID")
	}
	type silenceJSON struct {
		ID       string `json:"id"`
		Matchers []struct {
			Name    string `json:"name"`
			Value   string `json:"value"`
			IsRegex bool   `json:"isRegex"`
			IsEqual bool   `json:"isEqual"`
		} `json:"matchers"`
		StartsAt, EndsAt, UpdatedAt time.Time
		CreatedBy                   string `json:"createdBy"`
		Comment                     string `json:"comment"`
		Status                      struct {
			State string `json:"state"`
		} `json:"status"`
	}
	var s silenceJSON
	call(t, "GET", u+"/api/v2/silence/"+created.SilenceID, "", 200, &s)
	if s.ID != created.SilenceID || s.Status.State != "active" || s.CreatedBy != "alice" || len(s.Matchers) != 2 ||
		!s.Matchers[0].IsRegex || !s.Matchers[0].IsEqual || s.Matchers[1].IsEqual || !s.UpdatedAt.Equal(base) {
		t.Fatalf("silence: %+v", s)
	}
	// Update in place (longer), keeps the ID.
	var upd struct {
		SilenceID string `json:"silenceID"`
	}
	call(t, "POST", u+"/api/v2/silences", strings.Replace(body, `"startsAt"`, `"id": "`+created.SilenceID+`", "startsAt"`, 1), 200, &upd)
	if upd.SilenceID != created.SilenceID {
		t.Errorf("update changed the ID")
	}
	var list []silenceJSON
	call(t, "GET", u+"/api/v2/silences", "", 200, &list)
	if len(list) != 1 {
		t.Fatalf("silences: %+v", list)
	}
	call(t, "GET", u+"/api/v2/silences?filter="+url.QueryEscape(`env="dev"`), "", 200, &list)
	if len(list) != 1 {
		t.Errorf("filter env=dev: %+v", list)
	}
	call(t, "GET", u+"/api/v2/silences?filter="+url.QueryEscape(`env="prod"`), "", 200, &list)
	if len(list) != 0 {
		t.Errorf("filter env=prod: %+v", list)
	}
	call(t, "GET", u+"/api/v2/silences?filter=bad", "", 400, nil)

	for _, bad := range []string{
		`{"matchers": [], "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-01T02:00:00Z", "createdBy": "a", "comment": "c"}`,
		`{"matchers": [{"name": "a", "value": "b", "isRegex": false}], "startsAt": "2026-01-01T03:00:00Z", "endsAt": "2026-01-01T02:00:00Z", "createdBy": "a", "comment": "c"}`,
		`{"matchers": [{"name": "a", "value": "b", "isRegex": false}], "startsAt": "2025-01-01T00:00:00Z", "endsAt": "2025-01-02T00:00:00Z", "createdBy": "a", "comment": "c"}`,
		`{"matchers": [{"name": "a", "value": "(", "isRegex": true}], "endsAt": "2026-01-01T02:00:00Z"}`,
		`{"matchers": [{"name": "a", "value": ".*", "isRegex": true}], "endsAt": "2026-01-01T02:00:00Z"}`,
		`not json`,
	} {
		var msg string
		call(t, "POST", u+"/api/v2/silences", bad, 400, &msg)
		if msg == "" {
			t.Errorf("no message for %s", bad)
		}
	}
	call(t, "POST", u+"/api/v2/silences", `{"id": "nope", "matchers": [{"name": "a", "value": "b", "isRegex": false}], "endsAt": "2026-01-01T02:00:00Z"}`, 404, nil)
	call(t, "GET", u+"/api/v2/silence/nope", "", 404, nil)
	call(t, "DELETE", u+"/api/v2/silence/nope", "", 404, nil)
	call(t, "DELETE", u+"/api/v2/silence/"+created.SilenceID, "", 200, nil)
	call(t, "GET", u+"/api/v2/silence/"+created.SilenceID, "", 200, &s)
	if s.Status.State != "expired" {
		t.Errorf("after DELETE: %s", s.Status.State)
	}
	call(t, "DELETE", u+"/api/v2/silence/"+created.SilenceID, "", 400, nil)
}

func TestNotifyStatusAndReceiversAPI(t *testing.T) {
	srv, n, hook := notifyServer(t)
	u := srv.URL
	var st struct {
		Cluster struct {
			Status string   `json:"status"`
			Peers  []string `json:"peers"`
		} `json:"cluster"`
		VersionInfo map[string]string `json:"versionInfo"`
		Config      struct {
			Original string `json:"original"`
		} `json:"config"`
		Uptime time.Time `json:"uptime"`
	}
	call(t, "GET", u+"/api/v2/status", "", 200, &st)
	if st.Cluster.Status != "disabled" || st.Cluster.Peers == nil || st.VersionInfo["version"] != "v1.2.3" || st.VersionInfo["goVersion"] == "" ||
		!strings.Contains(st.Config.Original, "receiver: team") || !strings.Contains(st.Config.Original, "<secret>") || strings.Contains(st.Config.Original, "127.0.0.1") || !st.Uptime.Equal(base) {
		t.Errorf("status: %+v", st)
	}
	var names []struct {
		Name string `json:"name"`
	}
	call(t, "GET", u+"/api/v2/receivers", "", 200, &names)
	if len(names) != 2 || names[0].Name != "team" || names[1].Name != "pager" {
		t.Errorf("v2 receivers: %+v", names)
	}

	var bad rulesEnvelope
	call(t, "PUT", u+"/api/v1/notify/receivers/ops", `{"webhook_configs": [{"url": "team"}]}`, 400, &bad) // not a URL
	if bad.Status != "error" || bad.ErrorType != "bad_data" || !strings.Contains(bad.Error, "webhook_configs[0]") {
		t.Errorf("invalid receiver: %+v", bad)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook.ServeHTTP(w, r)
	}))
	defer hs.Close()
	good := `{"matchers": ["severity=\"page\""], "group_by": ["instance"], "group_wait": "10s",
	  "webhook_configs": [{"url": "` + hs.URL + `/ops", "http_config": {"bearer_token": "tok"}}]}`
	call(t, "PUT", u+"/api/v1/notify/receivers/ops", good, 200, nil)
	call(t, "PUT", u+"/api/v1/notify/receivers/ops", `{"webhook_configs": [{"url": "http://x/"}], "typo": 1}`, 400, nil)
	call(t, "PUT", u+"/api/v1/notify/receivers/ops", `{"name": "other", "webhook_configs": [{"url": "http://x/"}]}`, 400, nil)
	call(t, "PUT", u+"/api/v1/notify/receivers/team", `{"webhook_configs": [{"url": "http://x/"}]}`, 409, nil)
	call(t, "PUT", u+"/api/v1/notify/receivers/ops", `{"group_wait": "soon", "webhook_configs": [{"url": "http://x/"}]}`, 400, nil)

	var rs struct {
		Status string                  `json:"status"`
		Data   []notify.ReceiverStatus `json:"data"`
	}
	call(t, "GET", u+"/api/v1/notify/receivers", "", 200, &rs)
	if len(rs.Data) != 3 || rs.Data[2].Name != "ops" || rs.Data[2].Source != "ui" || rs.Data[0].Source != "file" ||
		rs.Data[2].Config == nil || rs.Data[2].Config.WebhookConfigs[0].HTTPConfig.BearerToken != "<secret>" || rs.Data[2].Config.WebhookConfigs[0].URL != "<secret>" {
		t.Fatalf("receivers: %+v", rs)
	}

	// Test notifications: ok, failing, unknown.
	call(t, "POST", u+"/api/v1/notify/receivers/ops/test", "", 200, nil)
	hook.mu.Lock()
	hook.fail = []int{500}
	hook.mu.Unlock()
	var fail rulesEnvelope
	call(t, "POST", u+"/api/v1/notify/receivers/team/test", "", 502, &fail)
	if !strings.Contains(fail.Error, "500") {
		t.Errorf("failed test: %+v", fail)
	}
	call(t, "POST", u+"/api/v1/notify/receivers/nobody/test", "", 404, nil)
	hook.mu.Lock()
	paths := strings.Join(hook.paths, ",")
	hook.mu.Unlock()
	if paths != "/ops,/team" {
		t.Errorf("test notifications reached %s", paths)
	}

	var ds struct {
		Data []notify.Delivery `json:"data"`
	}
	call(t, "GET", u+"/api/v1/notify/deliveries?limit=1", "", 200, &ds)
	if len(ds.Data) != 1 || ds.Data[0].Receiver != "team" || ds.Data[0].OK {
		t.Errorf("deliveries: %+v", ds.Data)
	}
	call(t, "GET", u+"/api/v1/notify/deliveries", "", 200, &ds)
	if len(ds.Data) != 2 || !ds.Data[1].OK {
		t.Errorf("deliveries: %+v", ds.Data)
	}
	for _, l := range []string{"0", "x", "1001"} {
		call(t, "GET", u+"/api/v1/notify/deliveries?limit="+l, "", 400, nil)
	}

	call(t, "DELETE", u+"/api/v1/notify/receivers/ops", "", 200, nil)
	call(t, "DELETE", u+"/api/v1/notify/receivers/ops", "", 404, nil)
	call(t, "DELETE", u+"/api/v1/notify/receivers/team", "", 409, nil)
	left := n.Receivers()
	if len(left) != 2 {
		t.Errorf("receivers after delete: %+v", left)
	}
	if b, _ := json.Marshal(left); strings.Contains(string(b), "tok") {
		t.Errorf("secret in receivers: %s", b)
	}
}
