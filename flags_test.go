package main

import (
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestFlagsAndEnvironment(t *testing.T) {
	t.Setenv("OUTPOST_HTTP_ADDR", ":9999")
	t.Setenv("OUTPOST_RETENTION", "7d")
	t.Setenv("OUTPOST_DATA", "/from/env")
	c, err := parseFlags("serve", []string{"--data", "/from/flag", "--promote-resource-attributes", "k8s.namespace.name, ,cloud.region"})
	if err != nil {
		t.Fatal(err)
	}
	if c.data != "/from/flag" || c.httpAddr != ":9999" || time.Duration(c.retention) != 7*24*time.Hour {
		t.Errorf("data %q http %q retention %v: want the flag to win over the environment, the environment over defaults", c.data, c.httpAddr, time.Duration(c.retention))
	}
	if got := splitList(c.promote); len(got) != 2 || got[0] != "k8s.namespace.name" || got[1] != "cloud.region" {
		t.Errorf("promoted attributes = %q", got)
	}
	// The Settings page's rows: where each value came from; secrets hidden.
	t.Setenv("OUTPOST_INGEST_TOKEN", "s3cret-token")
	c, err = parseFlags("serve", []string{"--data", "/from/flag"})
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]string{}
	for _, st := range c.settings {
		src[st.Name] = st.Source + " " + st.Value
		if strings.Contains(st.Value, "s3cret") {
			t.Errorf("setting %s shows the secret", st.Name)
		}
	}
	if src["data"] != "flag /from/flag" || src["http-addr"] != "OUTPOST_HTTP_ADDR :9999" || src["log-level"] != "default info" || src["ingest-token"] != "OUTPOST_INGEST_TOKEN (set, not shown)" {
		t.Errorf("settings %v", src)
	}
	t.Setenv("OUTPOST_MAX_ATTRIBUTES", "lots")
	if _, err := parseFlags("serve", nil); err == nil {
		t.Error("a bad OUTPOST_MAX_ATTRIBUTES was accepted")
	}
	for _, bad := range []string{"0d", "-1h", "xd", "soon"} {
		var d days
		if d.Set(bad) == nil {
			t.Errorf("retention %q accepted", bad)
		}
	}
}

// The garbage collector's target is 30% unless GOGC says otherwise.
func TestDefaultGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if got := setGCPercent(); got != "30" {
		t.Errorf("without GOGC: reported %q, want 30", got)
	}
	if p := debug.SetGCPercent(100); p != 30 {
		t.Errorf("without GOGC: the target is %d%%, want 30%%", p)
	}
	t.Setenv("GOGC", "80")
	if got := setGCPercent(); got != "80" {
		t.Errorf("with GOGC=80: reported %q", got)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("with GOGC=80: the target was changed to %d%%; the runtime's own reading of GOGC must stand", p)
	}
}
