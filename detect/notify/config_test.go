package notify

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"outpost/detect/rules/promrules"
)

// treeConfig is a routing tree in the style of Alertmanager's documentation:
// nested routes, new and legacy matchers, continue.
const treeConfig = `
global:
  smtp_smarthost: 'localhost:25'
  smtp_from: 'alertmanager@example.org'
  resolve_timeout: 5m
route:
  receiver: default
  group_by: ['alertname', 'cluster']
  routes:
  - matchers: [service=~"foo1|foo2|baz"]
    receiver: team-X-mails
    routes:
    - matchers: [severity="critical"]
      receiver: team-X-pager
  - matchers: [service="files"]
    receiver: team-Y-mails
    routes:
    - matchers: [severity="critical"]
      receiver: team-Y-pager
  - match: {service: database}
    receiver: team-DB-pager
    group_by: [alertname, cluster, database]
    routes:
    - match: {owner: team-X}
      receiver: team-X-pager
      continue: true
    - match: {owner: team-Y}
      receiver: team-Y-pager
  - match_re: {service: ^(web|api)$}
    receiver: frontend
    group_by: ['...']
    continue: true
  - matchers: ['env!="prod"', 'team!~"a|b"']
    receiver: nonprod
receivers:
- name: default
- name: team-X-mails
  email_configs: [{to: 'team-X+alerts@example.org'}]
- name: team-X-pager
  webhook_configs: [{url: 'http://127.0.0.1:1/x'}]
- name: team-Y-mails
  email_configs: [{to: 'team-Y+alerts@example.org'}]
- name: team-Y-pager
  webhook_configs: [{url: 'http://127.0.0.1:1/y'}]
- name: team-DB-pager
  webhook_configs: [{url: 'http://127.0.0.1:1/db'}]
- name: frontend
  slack_configs: [{api_url: 'http://127.0.0.1:1/slack', channel: '#web'}]
- name: nonprod
  webhook_configs: [{url: 'http://127.0.0.1:1/np'}]
`

func TestRouting(t *testing.T) {
	cfg, err := ParseConfig("alertmanager.yml", []byte(treeConfig))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := buildRouting(cfg, nil, &env{}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels string
		want   []string
		key    string // group key on the first route
	}{
		{`service="foo1", severity="critical"`, []string{"team-X-pager"}, `{}/{service=~"foo1|foo2|baz"}/{severity="critical"}:{alertname="A", cluster="c1"}`},
		{`service="foo2", severity="warning"`, []string{"team-X-mails"}, ""},
		{`service="files", severity="critical"`, []string{"team-Y-pager"}, ""},
		{`service="files"`, []string{"team-Y-mails"}, ""},
		{`service="database", owner="team-X", database="d1"`, []string{"team-X-pager"}, `{}/{service="database"}/{owner="team-X"}:{alertname="A", cluster="c1", database="d1"}`},
		{`service="database", owner="team-Y"`, []string{"team-Y-pager"}, ""},
		{`service="database", owner="nobody"`, []string{"team-DB-pager"}, ""},
		{`service="web", env="prod"`, []string{"frontend"}, `{}/{service=~"^(web|api)$"}:{alertname="A", cluster="c1", env="prod", service="web"}`},
		{`service="api", env="dev", team="c"`, []string{"frontend", "nonprod"}, ""},
		{`service="api", env="dev", team="a"`, []string{"frontend"}, ""},
		{`service="other", env="prod"`, []string{"default"}, `{}:{alertname="A", cluster="c1"}`},
		{`env="staging"`, []string{"nonprod"}, ""},
		{`service="web2"`, []string{"nonprod"}, ""},
	} {
		ms, err := ParseMatchers(tc.labels)
		if err != nil {
			t.Fatal(err)
		}
		e := &alertEntry{labels: model.LabelSet{"alertname": "A", "cluster": "c1"}}
		for _, m := range ms {
			e.labels[model.LabelName(m.Name)] = model.LabelValue(m.Value)
		}
		routes := rt.match(e)
		var got []string
		for _, r := range routes {
			got = append(got, r.receiver)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: receivers %v, want %v", tc.labels, got, tc.want)
		}
		if tc.key != "" {
			if key := routes[0].key + ":" + routes[0].groupLabels(e).String(); key != tc.key {
				t.Errorf("%s: group key %s, want %s", tc.labels, key, tc.key)
			}
		}
	}
	// Inherited options.
	db := rt.root.children[2]
	if db.receiver != "team-DB-pager" || len(db.groupBy) != 3 || db.groupWait != defaultGroupWait || db.children[0].groupInterval != defaultGroupInterval || len(db.children[0].groupBy) != 3 {
		t.Errorf("inheritance: %+v", db)
	}
}

func TestConfigErrors(t *testing.T) {
	const recv = "receivers:\n- name: a\n"
	for _, tc := range []struct {
		name, yaml string
		line       int
		msg        string
	}{
		// The YAML scanner reports the line of the last complete token.
		{"yaml syntax", "route:\n  receiver: a\n  group_by: [a\n" + recv, 2, "did not find expected"},
		{"unknown field", "route:\n  receiver: a\n  recevier: b\n" + recv, 3, "field recevier not found"},
		{"unknown nested field", recv + "  webhook_configs:\n  - url: http://x/\n    sendresolved: true\nroute:\n  receiver: a\n", 5, "field sendresolved not found"},
		{"unknown receiver", "route:\n  receiver: a\n  routes:\n  - receiver: b\n" + recv, 4, `undefined receiver "b" used in route`},
		{"bad matcher", "route:\n  receiver: a\n  routes:\n  - matchers:\n    - 'severity=~\"(\"'\n" + recv, 5, "invalid matcher"},
		{"matcher without operator", "route:\n  receiver: a\n  routes:\n  - matchers: [severity]\n" + recv, 4, "no operator"},
		{"bad match_re", "route:\n  receiver: a\n  routes:\n  - match_re:\n      a: '['\n" + recv, 5, "invalid match_re"},
		{"mute time intervals", "route:\n  receiver: a\n  routes:\n  - mute_time_intervals: [nights]\n" + recv, 4, "mute_time_intervals are not supported"},
		{"inhibit rules", "route:\n  receiver: a\n" + recv + "inhibit_rules:\n- equal: [a]\n", 5, "inhibit_rules is not supported"},
		{"pagerduty", "route:\n  receiver: a\n" + recv + "  pagerduty_configs:\n  - routing_key: x\n", 5, "pagerduty_configs are not supported"},
		{"duplicate receiver", "route:\n  receiver: a\n" + recv + "- name: a\n", 5, `receiver name "a" is not unique`},
		{"missing name", "route:\n  receiver: a\n" + recv + "- webhook_configs: []\n", 5, "missing name"},
		{"wildcard and labels", "route:\n  receiver: a\n  group_by: ['...', job]\n" + recv, 3, "wildcard group_by"},
		{"no root receiver", "route:\n  group_by: [a]\n" + recv, 1, "root route must specify a default receiver"},
		{"no route", recv, 1, "no route provided"},
		{"root matchers", "route:\n  receiver: a\n  matchers: [a=b]\n" + recv, 1, "root route must not have any matchers"},
		{"bad duration", "route:\n  receiver: a\n  group_wait: 5x\n" + recv, 3, "not a valid duration"},
		{"zero interval", "route:\n  receiver: a\n  group_interval: 0s\n" + recv, 3, "group_interval cannot be zero"},
		{"webhook without url", "route:\n  receiver: a\n" + recv + "  webhook_configs:\n  - send_resolved: true\n", 6, "missing url"},
		{"email without smarthost", "route:\n  receiver: a\n" + recv + "  email_configs:\n  - to: a@example.org\n", 6, "no smarthost"},
		{"email html", "route:\n  receiver: a\nglobal: {smtp_smarthost: 'h:25', smtp_from: a@b.c}\n" + recv + "  email_configs:\n  - {to: a@example.org, html: '<b>'}\n", 7, "html bodies are not supported"},
		{"slack template", "route:\n  receiver: a\n" + recv + "  slack_configs:\n  - api_url: http://x/\n    title: '{{ .Status '\n", 6, "invalid template"},
		{"action webhook url", "route:\n  receiver: a\n  action_webhook_configs:\n  - url: 'nope'\n" + recv, 4, "invalid action webhook url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("/etc/outpost/alertmanager.yml", []byte(tc.yaml))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if ce.Line != tc.line || !strings.Contains(ce.Msg, tc.msg) || !strings.HasPrefix(err.Error(), "/etc/outpost/alertmanager.yml:") {
				t.Fatalf("got %q (line %d), want line %d and %q", err, ce.Line, tc.line, tc.msg)
			}
		})
	}
}

func TestConfigFileErrorsAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "am.yml")
	os.WriteFile(cfg, []byte("route:\n  receiver: x\n"), 0o644)
	_, err := New(Options{Dir: dir, ConfigFile: cfg, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "am.yml:2: undefined receiver") {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Options{Dir: dir, ConfigFile: filepath.Join(dir, "missing.yml"), Logger: quiet}); err == nil {
		t.Fatal("New with a missing config file succeeded")
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Dir succeeded")
	}
}

func TestParseMatchers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{`severity="critical"`, `{severity="critical"}`, ""},
		{`{alertname=~"Disk.*", env!=dev}`, `{alertname=~"Disk.*",env!="dev"}`, ""},
		{`a !~ "x|y" , b="q\"uote",`, `{a!~"x|y",b="q\"uote"}`, ""},
		{`foo=bar`, `{foo="bar"}`, ""},
		{`foo=`, `{foo=""}`, ""},
		{`"odd name"="v"`, `{"odd name"="v"}`, ""},
		{``, "", "empty"},
		{`{a="b"`, "", "missing closing"},
		{`a`, "", "no operator"},
		{`a=~"("`, "", "invalid regular expression"},
		{`a="b" c="d"`, "", "expected ','"},
		{`=x`, "", "empty label name"},
	} {
		ms, err := ParseMatchers(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if ms.String() != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, ms, tc.want)
		}
	}
	ms, _ := ParseMatchers(`a=~"x|y", b!="z", c!~"w.*"`)
	for _, tc := range []struct {
		ls   model.LabelSet
		want bool
	}{
		{model.LabelSet{"a": "x", "c": "v"}, true},
		{model.LabelSet{"a": "xy"}, false}, // anchored
		{model.LabelSet{"a": "y", "b": "z"}, false},
		{model.LabelSet{"a": "y", "c": "wat"}, false},
		{model.LabelSet{}, false},
	} {
		if got := ms.Matches(tc.ls); got != tc.want {
			t.Errorf("%s matches %v = %v", ms, tc.ls, got)
		}
	}
}

func TestSilenceSemantics(t *testing.T) {
	h := newHarness(t, "")
	ms := mustMatchers(t, `alertname="A"`)
	bad := []Silence{
		{EndsAt: t0.Add(time.Hour)},                                    // no matcher
		{Matchers: mustMatchers(t, `a=""`), EndsAt: t0.Add(time.Hour)}, // matches everything
		{Matchers: mustMatchers(t, `a=~".*"`), EndsAt: t0.Add(time.Hour)},
		{Matchers: ms}, // no end
		{Matchers: ms, EndsAt: t0.Add(-time.Minute)}, // in the past
		{Matchers: ms, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(time.Minute)},
		{Matchers: Matchers{{Type: MatchRegexp, Name: "a", Value: "("}}, EndsAt: t0.Add(time.Hour)},
	}
	for i, s := range bad {
		if _, err := h.n.PutSilence(s); !errors.Is(err, ErrInvalidSilence) {
			t.Errorf("bad silence %d: %v", i, err)
		}
	}
	if _, err := h.n.PutSilence(Silence{ID: "nope", Matchers: ms, EndsAt: t0.Add(time.Hour)}); !errors.Is(err, ErrSilenceNotFound) {
		t.Errorf("update of an unknown silence: %v", err)
	}
	// A start in the past becomes now.
	id, err := h.n.PutSilence(Silence{Matchers: ms, StartsAt: t0.Add(-time.Hour), EndsAt: t0.Add(time.Hour), CreatedBy: "a"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h.n.Silence(id)
	if !s.StartsAt.Equal(t0) || s.Status.State != SilenceStateActive {
		t.Fatalf("silence: %+v", s)
	}
	h.clock.Add(time.Minute)
	// Extending an active silence keeps its ID.
	s.EndsAt = t0.Add(2 * time.Hour)
	s.Comment = "longer"
	if id2, err := h.n.PutSilence(s); err != nil || id2 != id {
		t.Fatalf("extend: %s, %v", id2, err)
	}
	// Changing its matchers expires it and creates a new one.
	s.Matchers = mustMatchers(t, `alertname="B"`)
	id3, err := h.n.PutSilence(s)
	if err != nil || id3 == id {
		t.Fatalf("new matchers: %s, %v", id3, err)
	}
	old, _ := h.n.Silence(id)
	if old.Status.State != SilenceStateExpired || !old.EndsAt.Equal(h.clock.Now()) || old.Comment != "longer" {
		t.Fatalf("replaced silence: %+v", old)
	}
	// A pending silence may move its start; expiring it makes it end before it began.
	pid, _ := h.n.PutSilence(Silence{Matchers: ms, StartsAt: h.clock.Now().Add(time.Hour), EndsAt: h.clock.Now().Add(3 * time.Hour)})
	p, _ := h.n.Silence(pid)
	if p.Status.State != SilenceStatePending {
		t.Fatalf("pending: %+v", p)
	}
	p.StartsAt = p.StartsAt.Add(time.Hour)
	if got, _ := h.n.PutSilence(p); got != pid {
		t.Fatalf("moving a pending silence changed its ID")
	}
	if err := h.n.ExpireSilence(pid); err != nil {
		t.Fatal(err)
	}
	if p, _ = h.n.Silence(pid); p.Status.State != SilenceStateExpired || !p.StartsAt.Equal(h.clock.Now()) {
		t.Fatalf("expired pending silence: %+v", p)
	}
	if err := h.n.ExpireSilence("nope"); !errors.Is(err, ErrSilenceNotFound) {
		t.Fatalf("expire unknown: %v", err)
	}
	// Listing: active first, then expired; expired ones are collected after the retention.
	list := h.n.Silences()
	if len(list) != 3 || list[0].ID != id3 || list[1].Status.State != SilenceStateExpired {
		t.Fatalf("silences: %+v", list)
	}
	h.clock.Add(defaultRetention + 3*time.Hour)
	h.step()
	if list := h.n.Silences(); len(list) != 0 {
		t.Fatalf("expired silences not collected: %+v", list)
	}
}

func TestFromRules(t *testing.T) {
	fired := t0.Add(-time.Minute)
	in := []*promrules.Alert{
		{State: promrules.StateFiring, Labels: labels.FromStrings("alertname", "A", "job", "j"), Annotations: labels.FromStrings("summary", "s"),
			ActiveAt: t0.Add(-5 * time.Minute), FiredAt: fired, ValidUntil: t0.Add(4 * time.Minute)},
		{State: promrules.StateInactive, Labels: labels.FromStrings("alertname", "B"), FiredAt: fired, ResolvedAt: t0, ValidUntil: t0.Add(4 * time.Minute)},
		{State: promrules.StatePending, Labels: labels.FromStrings("alertname", "C"), ActiveAt: t0},
	}
	out := FromRules("http://outpost:8080", `rate(x[5m]) > 1`, in...)
	if len(out) != 2 {
		t.Fatalf("got %d alerts, want 2 (pending left out)", len(out))
	}
	a := out[0]
	if !a.StartsAt.Equal(fired) || !a.EndsAt.Equal(t0.Add(4*time.Minute)) || a.Labels["job"] != "j" || a.Annotations["summary"] != "s" ||
		a.GeneratorURL != "http://outpost:8080/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1" {
		t.Errorf("firing alert: %+v", a)
	}
	if !out[1].EndsAt.Equal(t0) {
		t.Errorf("resolved alert ends %v, want %v", out[1].EndsAt, t0)
	}
	// Through the hook.
	h := newHarness(t, "")
	h.n.RulesNotify()(nil, "up == 0", in...)
	if st := h.n.Alerts(); len(st) != 2 || st[0].Labels["alertname"] != "B" || st[0].State != StateResolved || st[1].State != StateActive {
		t.Fatalf("alerts from the rules hook: %+v", st)
	}
}

func TestAlertValidate(t *testing.T) {
	for _, a := range []Alert{
		{},
		{Labels: map[string]string{"": "x"}},
		{Labels: map[string]string{"a": "\xff"}},
		{Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"": "x"}},
		{Labels: map[string]string{"a": "b"}, StartsAt: t0, EndsAt: t0.Add(-time.Second)},
	} {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v validated", a)
		}
	}
	if err := (&Alert{Labels: map[string]string{"a": "b"}}).Validate(); err != nil {
		t.Error(err)
	}
}
