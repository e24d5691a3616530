package notify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// TestWebhookPayloadGolden checks the webhook body field by field against
// testdata/webhook.golden.json, built on Alertmanager's documented payload
// (version 4: receiver, status, alerts, groupLabels, commonLabels,
// commonAnnotations, externalURL, version, groupKey, truncatedAlerts).
func TestWebhookPayloadGolden(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, `
route:
  receiver: webhook-team
  group_by: [alertname, cluster]
  group_wait: 30s
receivers:
- name: webhook-team
  webhook_configs:
  - url: `+rec.url("/alerts")+`
    max_alerts: 3
    http_config:
      basic_auth: {username: am, password: pw}
`)
	mk := func(instance, job string, ends time.Time) Alert {
		return Alert{
			Labels: map[string]string{"alertname": "InstanceDown", "cluster": "eu-1", "severity": "page",
				"instance": instance, "job": job},
			Annotations: map[string]string{
				"summary":     instance + " of job " + job + " is down",
				"description": "It has not answered a scrape for more than 5 minutes.",
				"runbook_url": "https://runbooks.example.org/InstanceDown",
			},
			StartsAt:     t0.Add(-10 * time.Minute),
			EndsAt:       ends,
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
		}
	}
	far := t0.Add(time.Hour)
	a4 := mk("10.0.0.4:9100", "node", far)
	a4.Annotations["summary"] = "another summary"
	h.n.Send(
		mk("10.0.0.1:9100", "node", far),
		mk("10.0.0.2:9100", "node", t0.Add(10*time.Second)), // resolved by the flush
		mk("10.0.0.3:8080", "api", far),
		a4,
	)
	h.advance(30*time.Second, 30*time.Second)
	rec.mu.Lock()
	if len(rec.got) != 1 {
		rec.mu.Unlock()
		t.Fatalf("got %d requests", len(rec.got))
	}
	got := rec.got[0]
	rec.mu.Unlock()
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if u, p, ok := basicAuth(got.header.Get("Authorization")); !ok || u != "am" || p != "pw" {
		t.Errorf("basic auth %q", got.header.Get("Authorization"))
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, got.body, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	golden := filepath.Join("testdata", "webhook.golden.json")
	if *update {
		os.WriteFile(golden, indented.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	// Field by field, with a path for each difference.
	var gv, wv any
	json.Unmarshal(got.body, &gv)
	json.Unmarshal(want, &wv)
	for _, d := range diffJSON("", wv, gv) {
		t.Error(d)
	}
	// Same fields in the same order as Alertmanager writes them.
	if !bytes.Equal(indented.Bytes(), want) {
		t.Errorf("payload differs from %s in order or format:\n%s", golden, indented.Bytes())
	}
	// The fingerprints are Prometheus' label-set fingerprints.
	var msg WebhookMessage
	json.Unmarshal(got.body, &msg)
	for _, a := range msg.Alerts {
		ls := model.LabelSet{}
		for k, v := range a.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if a.Fingerprint != ls.Fingerprint().String() || len(a.Fingerprint) != 16 {
			t.Errorf("fingerprint %s of %v, want %s", a.Fingerprint, a.Labels, ls.Fingerprint())
		}
	}
}

func basicAuth(h string) (string, string, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	if err != nil {
		return "", "", false
	}
	u, p, ok := strings.Cut(string(b), ":")
	return u, p, ok
}

// diffJSON lists the differences between two decoded JSON values.
func diffJSON(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want object", path, got)}
		}
		var out []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, diffJSON(path+"."+k, wv, gv)...)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: unexpected field", path, k))
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, diffJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
	}
	return nil
}

func TestSlackPayload(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, `
global:
  slack_api_url: `+rec.url("/services/T000/B000/XXXX")+`
route:
  receiver: slack
  group_by: [alertname]
receivers:
- name: slack
  slack_configs:
  - channel: '#ops'
    send_resolved: true
  - api_url: `+rec.url("/custom")+`
    username: bot
    title: '{{ .CommonLabels.alertname }} is {{ .Status }}'
    text: '{{ range .Alerts }}{{ .Annotations.summary }};{{ end }}'
`)
	a := alert("HighLatency", "a", t0)
	h.n.Send(a, alert("HighLatency", "b", t0))
	h.advance(30*time.Second, 30*time.Second)
	bodies := map[string]map[string]any{}
	rec.mu.Lock()
	for _, g := range rec.got {
		var m map[string]any
		if err := json.Unmarshal(g.body, &m); err != nil {
			t.Fatal(err)
		}
		bodies[g.path] = m
	}
	rec.mu.Unlock()
	def := bodies["/services/T000/B000/XXXX"]
	if def == nil {
		t.Fatalf("no request to the global api_url: %v", bodies)
	}
	if def["channel"] != "#ops" || def["username"] != "Outpost" {
		t.Errorf("channel/username: %v", def)
	}
	atts, _ := def["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments: %v", def["attachments"])
	}
	att := atts[0].(map[string]any)
	for _, k := range []string{"title", "text", "color", "fallback"} {
		if _, ok := att[k].(string); !ok {
			t.Errorf("attachment has no %s: %v", k, att)
		}
	}
	if att["color"] != "danger" || att["title"] != "[FIRING:2] HighLatency (critical)" {
		t.Errorf("attachment title %q color %q", att["title"], att["color"])
	}
	text := att["text"].(string)
	for _, want := range []string{"2 firing: HighLatency\n", "Summary: HighLatency on a", "instance = b", "Alerts: http://outpost.example:8080"} {
		if !strings.Contains(text, want) {
			t.Errorf("default text lacks %q:\n%s", want, text)
		}
	}
	if !strings.HasPrefix(att["fallback"].(string), "[FIRING:2] HighLatency") {
		t.Errorf("fallback %q", att["fallback"])
	}
	custom := bodies["/custom"]["attachments"].([]any)[0].(map[string]any)
	if custom["title"] != "HighLatency is firing" || custom["text"] != "HighLatency on a;HighLatency on b;" || bodies["/custom"]["username"] != "bot" {
		t.Errorf("custom templates: %v", bodies["/custom"])
	}
	// Resolved: only the send_resolved one is told, in green.
	a.EndsAt = h.clock.Now()
	b := alert("HighLatency", "b", t0)
	b.EndsAt = h.clock.Now()
	h.n.Send(a, b)
	h.advance(5*time.Minute, time.Minute)
	if c := rec.count(); c != 3 {
		t.Fatalf("%d requests, want 3", c)
	}
	rec.mu.Lock()
	last := rec.got[2]
	rec.mu.Unlock()
	var m SlackMessage
	json.Unmarshal(last.body, &m)
	if last.path != "/services/T000/B000/XXXX" || m.Attachments[0].Color != "good" || !strings.HasPrefix(m.Attachments[0].Title, "[RESOLVED]") {
		t.Fatalf("resolved message to %s: %+v", last.path, m)
	}
}

func TestSlackErrorAnswer(t *testing.T) {
	if err := checkSlackAnswer([]byte(`{"ok":false,"error":"channel_not_found"}`)); err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Errorf("Slack error answer: %v", err)
	}
	for _, ok := range []string{"ok", `{"ok":true}`, ""} {
		if err := checkSlackAnswer([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// smtpServer is a minimal SMTP server on 127.0.0.1 that records messages.
type smtpServer struct {
	ln       net.Listener
	starttls bool
	mu       sync.Mutex
	msgs     []smtpMessage
	wg       sync.WaitGroup
}

type smtpMessage struct {
	helo, auth, from string
	to               []string
	data             []byte
}

func newSMTPServer(t *testing.T, starttls bool) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, starttls: starttls}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 127.0.0.1 ESMTP test")
	var m smtpMessage
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(cmd) {
		case "EHLO":
			m.helo = arg
			tp.PrintfLine("250-127.0.0.1")
			if s.starttls {
				tp.PrintfLine("250-STARTTLS")
			}
			tp.PrintfLine("250 AUTH PLAIN")
		case "HELO":
			m.helo = arg
			tp.PrintfLine("250 127.0.0.1")
		case "AUTH":
			b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(arg, "PLAIN "))
			m.auth = string(b)
			tp.PrintfLine("235 2.7.0 Authentication successful")
		case "MAIL":
			m.from = strings.Trim(strings.TrimPrefix(arg, "FROM:"), "<>")
			tp.PrintfLine("250 OK")
		case "RCPT":
			m.to = append(m.to, strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>"))
			tp.PrintfLine("250 OK")
		case "DATA":
			tp.PrintfLine("354 go ahead")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.data = b
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			tp.PrintfLine("250 OK queued")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 not implemented")
		}
	}
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func TestEmail(t *testing.T) {
	srv := newSMTPServer(t, false)
	h := newHarness(t, `
global:
  smtp_smarthost: `+srv.ln.Addr().String()+`
  smtp_from: Outpost <outpost@example.org>
  smtp_auth_username: outpost
  smtp_auth_password: hunter2
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
receivers:
- name: mail
  email_configs:
  - to: 'ops@example.org, Dev Team <dev@example.org>'
    headers:
      X-Team: 'ops-{{ .GroupLabels.alertname }}'
`)
	a := alert("DiskFull", "db-1", t0)
	a.Annotations["description"] = "Only 2% left — ünïcode too"
	a.GeneratorURL = "http://outpost.example:8080/graph?g0.expr=x"
	h.n.Send(a)
	h.advance(30*time.Second, 30*time.Second)
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d mails; deliveries %+v", len(msgs), h.n.Deliveries(0))
	}
	m := msgs[0]
	if m.auth != "\x00outpost\x00hunter2" || m.from != "outpost@example.org" || strings.Join(m.to, ",") != "ops@example.org,dev@example.org" || m.helo != "localhost" {
		t.Fatalf("envelope: %+v", m)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "[FIRING:1] DiskFull (db-1 critical)" {
		t.Errorf("Subject %q", subject)
	}
	if msg.Header.Get("From") != "Outpost <outpost@example.org>" || msg.Header.Get("To") != "ops@example.org, Dev Team <dev@example.org>" {
		t.Errorf("From %q To %q", msg.Header.Get("From"), msg.Header.Get("To"))
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(t0.Add(30*time.Second)) {
		t.Errorf("Date %q: %v", msg.Header.Get("Date"), err)
	}
	if !regexp.MustCompile(`^<\d+\.\d+@[^>]+>$`).MatchString(msg.Header.Get("Message-Id")) {
		t.Errorf("Message-Id %q", msg.Header.Get("Message-Id"))
	}
	if ct := msg.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" || msg.Header.Get("X-Team") != "ops-DiskFull" {
		t.Errorf("Content-Type %q, X-Team %q", ct, msg.Header.Get("X-Team"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 firing: DiskFull", "[FIRING] DiskFull", "Summary: DiskFull on db-1", "Description: Only 2% left — ünïcode too", "  instance = db-1", "Started: 2025-03-01 12:00:00 UTC", "Source: http://outpost.example:8080/graph?g0.expr=x"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if d := h.n.Deliveries(1); !d[0].OK || d[0].Integration != "email" {
		t.Errorf("delivery: %+v", d)
	}
}

func TestEmailRequiresTLS(t *testing.T) {
	srv := newSMTPServer(t, false)
	h := newHarness(t, `
route:
  receiver: mail
receivers:
- name: mail
  email_configs:
  - to: ops@example.org
    from: outpost@example.org
    smarthost: `+srv.ln.Addr().String()+`
`)
	h.n.Send(alert("DiskFull", "db-1", t0))
	h.advance(time.Minute, 10*time.Second)
	d := h.n.Deliveries(0)
	if len(d) != 1 || d[0].OK || !strings.Contains(d[0].Error, "STARTTLS") {
		t.Fatalf("deliveries: %+v", d)
	}
	if len(srv.messages()) != 0 {
		t.Fatal("mail sent without TLS")
	}
}

func TestEmailUnreachableIsRetried(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	h := newHarness(t, `
route:
  receiver: mail
  group_wait: 0s
receivers:
- name: mail
  email_configs:
  - {to: ops@example.org, from: o@example.org, smarthost: "`+addr+`", require_tls: false}
`)
	h.n.Send(alert("DiskFull", "db-1", t0))
	h.advance(4*time.Second, time.Second)
	if d := h.n.Deliveries(0); len(d) < 2 || d[0].Attempt < 2 || !strings.Contains(d[0].Error, "cannot connect") {
		t.Fatalf("deliveries: %+v", d)
	}
}

func TestRedactedErrors(t *testing.T) {
	rec := newRecorder(t)
	h := newHarness(t, webhookConfig(rec.url("/hook/secret-token"), ""))
	rec.answer(500)
	h.n.Send(alert("X", "a", t0))
	h.advance(30*time.Second, 30*time.Second)
	if d := h.n.Deliveries(1); strings.Contains(d[0].Error, "secret-token") || !strings.Contains(d[0].Error, "127.0.0.1") {
		t.Fatalf("error shows the URL path: %s", d[0].Error)
	}
}

func TestTemplateData(t *testing.T) {
	mk := func(ls, ann model.LabelSet, resolved bool) *snapAlert {
		return &snapAlert{fp: ls.Fingerprint(), labels: ls, annotations: ann, resolved: resolved}
	}
	d := newData("team.x", "http://o", model.LabelSet{"alertname": "A"}, []*snapAlert{
		mk(model.LabelSet{"alertname": "A", "job": "j", "i": "1"}, model.LabelSet{"summary": "s", "x": "1"}, false),
		mk(model.LabelSet{"alertname": "A", "job": "j", "i": "2"}, model.LabelSet{"summary": "s", "x": "2"}, true),
	})
	if d.Receiver != `team\.x` || d.Status != "firing" {
		t.Errorf("receiver %q status %q", d.Receiver, d.Status)
	}
	if !reflect.DeepEqual(d.CommonLabels, KV{"alertname": "A", "job": "j"}) || !reflect.DeepEqual(d.CommonAnnotations, KV{"summary": "s"}) {
		t.Errorf("common: %v %v", d.CommonLabels, d.CommonAnnotations)
	}
	if len(d.Alerts.Firing()) != 1 || len(d.Alerts.Resolved()) != 1 {
		t.Errorf("firing/resolved split")
	}
	if got := (KV{"b": "2", "alertname": "x", "a": "1"}).Names(); strings.Join(got, ",") != "alertname,a,b" {
		t.Errorf("SortedPairs order: %v", got)
	}
	tm := mustTemplate("t", defaultTitle)
	if s, _ := tm.exec(d); s != "[FIRING:1] A (j)" {
		t.Errorf("title %q", s)
	}
	if _, err := parseTemplate("bad", "{{ .Nope "); err == nil {
		t.Error("bad template parsed")
	}
	if _, err := mustTemplate("t", "{{ .Nope }}").exec(d); err == nil {
		t.Error("template with a missing field executed")
	}
}
