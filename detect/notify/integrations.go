package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Integration kinds.
const (
	kindWebhook = "webhook"
	kindSlack   = "slack"
	kindEmail   = "email"
	kindAction  = "action_webhook"
)

// actionReceiver is the receiver name of action webhooks in payloads, the
// notification log and the delivery log.
const actionReceiver = "action_webhook"

// message is one notification: what a sender turns into a request.
type message struct {
	receiver    string
	groupKey    string
	groupLabels model.LabelSet
	alerts      []*snapAlert
	now         time.Time
}

// sender delivers a message. retry says whether a failure may succeed later
// (network error, 5xx, 429).
type sender interface {
	send(ctx context.Context, m *message) (retry bool, err error)
}

// integration is one configured webhook, Slack channel, e-mail address or
// action webhook of a receiver.
type integration struct {
	receiver     string
	kind         string
	idx          int
	sendResolved bool
	s            sender
}

// id is the integration's part of a notification-log key, as Alertmanager
// builds it: receiver/integration/index.
func (i *integration) id() string { return fmt.Sprintf("%s/%s/%d", i.receiver, i.kind, i.idx) }

// env is what senders need from the notifier.
type env struct {
	client      *http.Client
	externalURL string
	userAgent   string
	hostname    string
	global      GlobalConfig
}

// buildIntegrations returns the integrations of a receiver, validating them.
func buildIntegrations(name string, webhooks []WebhookConfig, slacks []SlackConfig, emails []EmailConfig, e *env) ([]*integration, error) {
	var out []*integration
	for i, c := range webhooks {
		if err := checkWebhook(&c); err != nil {
			return nil, fmt.Errorf("webhook_configs[%d]: %w", i, err)
		}
		out = append(out, &integration{receiver: name, kind: kindWebhook, idx: i, sendResolved: boolOr(c.SendResolved, true),
			s: &webhookSender{env: e, url: string(c.URL), maxAlerts: c.MaxAlerts, auth: c.HTTPConfig}})
	}
	for i, c := range slacks {
		if err := checkSlack(&c, &e.global); err != nil {
			return nil, fmt.Errorf("slack_configs[%d]: %w", i, err)
		}
		s, err := newSlackSender(c, e)
		if err != nil {
			return nil, fmt.Errorf("slack_configs[%d]: %w", i, err)
		}
		out = append(out, &integration{receiver: name, kind: kindSlack, idx: i, sendResolved: boolOr(c.SendResolved, false), s: s})
	}
	for i, c := range emails {
		if err := checkEmail(&c, &e.global); err != nil {
			return nil, fmt.Errorf("email_configs[%d]: %w", i, err)
		}
		s, err := newEmailSender(c, e)
		if err != nil {
			return nil, fmt.Errorf("email_configs[%d]: %w", i, err)
		}
		out = append(out, &integration{receiver: name, kind: kindEmail, idx: i, sendResolved: boolOr(c.SendResolved, false), s: s})
	}
	return out, nil
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// WebhookMessage is the body of webhook notifications: Alertmanager's
// webhook payload, version 4.
type WebhookMessage struct {
	*Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// webhookSender POSTs Alertmanager's webhook payload.
type webhookSender struct {
	env       *env
	url       string
	maxAlerts uint64
	auth      *HTTPConfig
}

func (w *webhookSender) payload(m *message) ([]byte, error) {
	alerts := m.alerts
	var truncated uint64
	if w.maxAlerts > 0 && uint64(len(alerts)) > w.maxAlerts {
		truncated = uint64(len(alerts)) - w.maxAlerts
		alerts = alerts[:w.maxAlerts]
	}
	msg := WebhookMessage{
		Data:            newData(m.receiver, w.env.externalURL, m.groupLabels, alerts),
		Version:         "4",
		GroupKey:        m.groupKey,
		TruncatedAlerts: truncated,
	}
	return json.Marshal(msg)
}

func (w *webhookSender) send(ctx context.Context, m *message) (bool, error) {
	body, err := w.payload(m)
	if err != nil {
		return false, fmt.Errorf("cannot encode webhook payload: %w", err)
	}
	return postJSON(ctx, w.env, w.url, w.auth, body, nil)
}

// postJSON POSTs body and classifies the answer: 2xx is success, 5xx and 429
// are worth a retry, other codes are not. check, if set, inspects a 2xx body.
func postJSON(ctx context.Context, e *env, target string, auth *HTTPConfig, body []byte, check func([]byte) error) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("cannot build request to %s: %w", redactURL(target), unwrapURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", e.userAgent)
	if auth != nil {
		switch {
		case auth.BasicAuth != nil:
			req.SetBasicAuth(auth.BasicAuth.Username, string(auth.BasicAuth.Password))
		case auth.BearerToken != "":
			req.Header.Set("Authorization", "Bearer "+string(auth.BearerToken))
		case auth.Authorization != nil:
			typ := auth.Authorization.Type
			if typ == "" {
				typ = "Bearer"
			}
			req.Header.Set("Authorization", typ+" "+string(auth.Authorization.Credentials))
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("cannot POST to %s: %w", redactURL(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		if check != nil {
			if err := check(b); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	retry := resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests
	msg := strings.TrimSpace(string(b))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	if msg != "" {
		return retry, fmt.Errorf("unexpected status code %d from %s: %s", resp.StatusCode, redactURL(target), msg)
	}
	return retry, fmt.Errorf("unexpected status code %d from %s", resp.StatusCode, redactURL(target))
}

// redactURL keeps the scheme and host of a URL: paths and queries of
// webhook URLs often hold tokens.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "<url>"
	}
	return u.Scheme + "://" + u.Host
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// slackSender POSTs a Slack incoming-webhook message with one attachment.
type slackSender struct {
	env                                            *env
	url                                            string
	auth                                           *HTTPConfig
	channel, username, title, titleLink, text, col *tmpl
	iconEmoji, iconURL                             string
}

func newSlackSender(c SlackConfig, e *env) (*slackSender, error) {
	u := c.APIURL
	if u == "" {
		u = e.global.SlackAPIURL
	}
	s := &slackSender{env: e, url: string(u), auth: c.HTTPConfig, iconEmoji: c.IconEmoji, iconURL: c.IconURL}
	for _, t := range []struct {
		dst      **tmpl
		name     string
		src, def string
	}{
		{&s.channel, "channel", c.Channel, ""},
		{&s.username, "username", c.Username, defaultSlackUsername},
		{&s.title, "title", c.Title, defaultTitle},
		{&s.titleLink, "title_link", c.TitleLink, defaultSlackTitleLink},
		{&s.text, "text", c.Text, defaultText},
		{&s.col, "color", c.Color, defaultSlackColor},
	} {
		src := t.src
		if src == "" {
			src = t.def
		}
		p, err := parseTemplate(t.name, src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		*t.dst = p
	}
	return s, nil
}

// SlackMessage is the body of a Slack notification.
type SlackMessage struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	IconEmoji   string            `json:"icon_emoji,omitempty"`
	IconURL     string            `json:"icon_url,omitempty"`
	Attachments []SlackAttachment `json:"attachments"`
}

// SlackAttachment is the one attachment of a Slack notification.
type SlackAttachment struct {
	Title     string   `json:"title,omitempty"`
	TitleLink string   `json:"title_link,omitempty"`
	Text      string   `json:"text"`
	Fallback  string   `json:"fallback"`
	Color     string   `json:"color,omitempty"`
	MrkdwnIn  []string `json:"mrkdwn_in,omitempty"`
}

func (s *slackSender) payload(m *message) ([]byte, error) {
	d := newData(m.receiver, s.env.externalURL, m.groupLabels, m.alerts)
	var (
		msg SlackMessage
		att SlackAttachment
		err error
	)
	for _, f := range []struct {
		dst *string
		t   *tmpl
	}{
		{&msg.Channel, s.channel}, {&msg.Username, s.username}, {&att.Title, s.title},
		{&att.TitleLink, s.titleLink}, {&att.Text, s.text}, {&att.Color, s.col},
	} {
		if *f.dst, err = f.t.exec(d); err != nil {
			return nil, err
		}
	}
	msg.IconEmoji, msg.IconURL = s.iconEmoji, s.iconURL
	att.Fallback = att.Title
	if att.TitleLink != "" {
		att.Fallback += " | " + att.TitleLink
	}
	att.MrkdwnIn = []string{"fallback", "pretext", "text"}
	msg.Attachments = []SlackAttachment{att}
	return json.Marshal(msg)
}

func (s *slackSender) send(ctx context.Context, m *message) (bool, error) {
	body, err := s.payload(m)
	if err != nil {
		return false, err
	}
	return postJSON(ctx, s.env, s.url, s.auth, body, checkSlackAnswer)
}

// checkSlackAnswer reads Slack's answer: incoming webhooks say "ok", the Web
// API says {"ok": true} or {"ok": false, "error": …}.
func checkSlackAnswer(b []byte) error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return nil
	}
	var r struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(t, &r) == nil && r.OK != nil && !*r.OK {
		return fmt.Errorf("slack answered an error: %s", r.Error)
	}
	return nil
}

// emailSender sends a text/plain message through an SMTP smarthost.
type emailSender struct {
	env                      *env
	to                       *tmpl
	from, hello, smarthost   string
	username, identity, pass string
	requireTLS               bool
	text                     *tmpl
	headers                  map[string]*tmpl
}

func newEmailSender(c EmailConfig, e *env) (*emailSender, error) {
	g := e.global
	s := &emailSender{env: e, from: c.From, hello: c.Hello, smarthost: c.Smarthost,
		username: c.AuthUsername, identity: c.AuthIdentity, pass: string(c.AuthPassword),
		requireTLS: boolOr(c.RequireTLS, boolOr(g.SMTPRequireTLS, true)), headers: map[string]*tmpl{}}
	if s.from == "" {
		s.from = g.SMTPFrom
	}
	if s.smarthost == "" {
		s.smarthost = g.SMTPSmarthost
		if s.username == "" {
			s.username, s.pass, s.identity = g.SMTPAuthUsername, string(g.SMTPAuthPassword), g.SMTPAuthIdentity
		}
	}
	if s.hello == "" {
		s.hello = g.SMTPHello
	}
	if s.hello == "" {
		s.hello = "localhost"
	}
	var err error
	if s.to, err = parseTemplate("to", c.To); err != nil {
		return nil, err
	}
	text := c.Text
	if text == "" {
		text = defaultText
	}
	if s.text, err = parseTemplate("text", text); err != nil {
		return nil, err
	}
	hdr := map[string]string{"Subject": defaultTitle}
	for k, v := range c.Headers {
		hdr[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	for k, v := range hdr {
		if s.headers[k], err = parseTemplate(k, v); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// permanent is an SMTP answer that will not change on retry (5xx).
func smtpRetry(err error) bool {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code < 500
	}
	return true
}

func (s *emailSender) message(m *message) (to []string, msg []byte, err error) {
	d := newData(m.receiver, s.env.externalURL, m.groupLabels, m.alerts)
	toStr, err := s.to.exec(d)
	if err != nil {
		return nil, nil, err
	}
	addrs, err := mail.ParseAddressList(toStr)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid to address %q: %w", toStr, err)
	}
	for _, a := range addrs {
		to = append(to, a.Address)
	}
	body, err := s.text.exec(d)
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	hdr := map[string]string{}
	for k, t := range s.headers {
		v, err := t.exec(d)
		if err != nil {
			return nil, nil, err
		}
		hdr[k] = v
	}
	if _, ok := hdr["To"]; !ok {
		hdr["To"] = toStr
	}
	if _, ok := hdr["From"]; !ok {
		hdr["From"] = s.from
	}
	hdr["Date"] = m.now.Format(time.RFC1123Z)
	hdr["Message-Id"] = fmt.Sprintf("<%d.%d@%s>", m.now.UnixNano(), rand.Uint64(), s.env.hostname)
	hdr["Mime-Version"] = "1.0"
	hdr["Content-Type"] = "text/plain; charset=UTF-8"
	hdr["Content-Transfer-Encoding"] = "quoted-printable"
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.NewReplacer("\r", " ", "\n", " ").Replace(hdr[k])
		if k == "Subject" {
			v = mime.QEncoding.Encode("utf-8", v)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"))
	qp.Close()
	return to, b.Bytes(), nil
}

func (s *emailSender) send(ctx context.Context, m *message) (bool, error) {
	to, msg, err := s.message(m)
	if err != nil {
		return false, err
	}
	from, err := mail.ParseAddress(s.from)
	if err != nil {
		return false, fmt.Errorf("invalid from address %q: %w", s.from, err)
	}
	host, port, err := net.SplitHostPort(s.smarthost)
	if err != nil {
		return false, fmt.Errorf("invalid smarthost %q: %w", s.smarthost, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.smarthost)
	if err != nil {
		return true, fmt.Errorf("cannot connect to %s: %w", s.smarthost, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tlsConf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	implicitTLS := port == "465"
	if implicitTLS {
		conn = tls.Client(conn, tlsConf)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return true, fmt.Errorf("cannot start SMTP session with %s: %w", s.smarthost, err)
	}
	defer c.Close()
	if err := c.Hello(s.hello); err != nil {
		return smtpRetry(err), fmt.Errorf("SMTP HELO to %s: %w", s.smarthost, err)
	}
	if s.requireTLS && !implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return false, fmt.Errorf("require_tls is true (the default) but %s does not advertise STARTTLS", s.smarthost)
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return true, fmt.Errorf("SMTP STARTTLS with %s: %w", s.smarthost, err)
		}
	}
	if s.username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return false, fmt.Errorf("%s does not offer AUTH PLAIN", s.smarthost)
		}
		if err := c.Auth(smtp.PlainAuth(s.identity, s.username, s.pass, host)); err != nil {
			return smtpRetry(err), fmt.Errorf("SMTP AUTH with %s: %w", s.smarthost, err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return smtpRetry(err), fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	for _, a := range to {
		if err := c.Rcpt(a); err != nil {
			return smtpRetry(err), fmt.Errorf("SMTP RCPT TO %s: %w", a, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpRetry(err), fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return true, fmt.Errorf("cannot write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return smtpRetry(err), fmt.Errorf("SMTP DATA: %w", err)
	}
	c.Quit()
	return false, nil
}
