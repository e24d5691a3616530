package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ConfigError is a refused configuration: the file, the line (0 when unknown)
// and why.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Duration is a duration in Prometheus' format ("30s", "5m", "4h", "1d") in
// YAML and JSON.
type Duration time.Duration

func (d Duration) String() string { return model.Duration(d).String() }

// UnmarshalYAML parses a Prometheus duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a valid duration: %v", n.Line, s, err)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML formats a Prometheus duration.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON formats a Prometheus duration as a JSON string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON parses a Prometheus duration from a JSON string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Secret is a credential or a secret URL. It is written as "<secret>" when a
// configuration is shown (YAML, and the redacted copies of the API); stored
// state keeps the value.
type Secret string

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return secretMask, nil
}

const secretMask = "<secret>"

// GlobalConfig is the global section of the configuration file.
type GlobalConfig struct {
	ResolveTimeout   *Duration `yaml:"resolve_timeout,omitempty"`
	SMTPFrom         string    `yaml:"smtp_from,omitempty"`
	SMTPSmarthost    string    `yaml:"smtp_smarthost,omitempty"`
	SMTPHello        string    `yaml:"smtp_hello,omitempty"`
	SMTPAuthUsername string    `yaml:"smtp_auth_username,omitempty"`
	SMTPAuthPassword Secret    `yaml:"smtp_auth_password,omitempty"`
	SMTPAuthIdentity string    `yaml:"smtp_auth_identity,omitempty"`
	SMTPRequireTLS   *bool     `yaml:"smtp_require_tls,omitempty"`
	SlackAPIURL      Secret    `yaml:"slack_api_url,omitempty"`
}

// RouteConfig is one node of the routing tree.
type RouteConfig struct {
	Receiver       string            `yaml:"receiver,omitempty"`
	GroupBy        []string          `yaml:"group_by,omitempty"`
	GroupWait      *Duration         `yaml:"group_wait,omitempty"`
	GroupInterval  *Duration         `yaml:"group_interval,omitempty"`
	RepeatInterval *Duration         `yaml:"repeat_interval,omitempty"`
	Matchers       []string          `yaml:"matchers,omitempty"`
	Match          map[string]string `yaml:"match,omitempty"`
	MatchRE        map[string]string `yaml:"match_re,omitempty"`
	Continue       bool              `yaml:"continue,omitempty"`
	Routes         []*RouteConfig    `yaml:"routes,omitempty"`
	// ActionWebhookConfigs is Outpost's extension: webhooks POSTed once when a
	// group of this route (or of a child that does not set its own) first
	// fires, and once when all its alerts are resolved.
	ActionWebhookConfigs []ActionWebhookConfig `yaml:"action_webhook_configs,omitempty"`

	MuteTimeIntervals   []string `yaml:"mute_time_intervals,omitempty"`
	ActiveTimeIntervals []string `yaml:"active_time_intervals,omitempty"`
}

// HTTPConfig is the optional authentication of a webhook or Slack request.
type HTTPConfig struct {
	BasicAuth     *BasicAuth     `yaml:"basic_auth,omitempty" json:"basic_auth,omitempty"`
	BearerToken   Secret         `yaml:"bearer_token,omitempty" json:"bearer_token,omitempty"`
	Authorization *Authorization `yaml:"authorization,omitempty" json:"authorization,omitempty"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string `yaml:"username" json:"username"`
	Password Secret `yaml:"password,omitempty" json:"password,omitempty"`
}

// Authorization is an Authorization header: type (default Bearer) and credentials.
type Authorization struct {
	Type        string `yaml:"type,omitempty" json:"type,omitempty"`
	Credentials Secret `yaml:"credentials,omitempty" json:"credentials,omitempty"`
}

// WebhookConfig is Alertmanager's <webhook_config>.
type WebhookConfig struct {
	SendResolved *bool       `yaml:"send_resolved,omitempty" json:"send_resolved,omitempty"`
	URL          Secret      `yaml:"url" json:"url"`
	MaxAlerts    uint64      `yaml:"max_alerts,omitempty" json:"max_alerts,omitempty"`
	HTTPConfig   *HTTPConfig `yaml:"http_config,omitempty" json:"http_config,omitempty"`
}

// SlackConfig is the subset of Alertmanager's <slack_config> Outpost sends.
type SlackConfig struct {
	SendResolved *bool       `yaml:"send_resolved,omitempty" json:"send_resolved,omitempty"`
	APIURL       Secret      `yaml:"api_url,omitempty" json:"api_url,omitempty"`
	Channel      string      `yaml:"channel,omitempty" json:"channel,omitempty"`
	Username     string      `yaml:"username,omitempty" json:"username,omitempty"`
	IconEmoji    string      `yaml:"icon_emoji,omitempty" json:"icon_emoji,omitempty"`
	IconURL      string      `yaml:"icon_url,omitempty" json:"icon_url,omitempty"`
	Title        string      `yaml:"title,omitempty" json:"title,omitempty"`
	TitleLink    string      `yaml:"title_link,omitempty" json:"title_link,omitempty"`
	Text         string      `yaml:"text,omitempty" json:"text,omitempty"`
	Color        string      `yaml:"color,omitempty" json:"color,omitempty"`
	HTTPConfig   *HTTPConfig `yaml:"http_config,omitempty" json:"http_config,omitempty"`
}

// EmailConfig is the subset of Alertmanager's <email_config> Outpost sends:
// a text/plain message.
type EmailConfig struct {
	SendResolved *bool             `yaml:"send_resolved,omitempty" json:"send_resolved,omitempty"`
	To           string            `yaml:"to" json:"to"`
	From         string            `yaml:"from,omitempty" json:"from,omitempty"`
	Hello        string            `yaml:"hello,omitempty" json:"hello,omitempty"`
	Smarthost    string            `yaml:"smarthost,omitempty" json:"smarthost,omitempty"`
	AuthUsername string            `yaml:"auth_username,omitempty" json:"auth_username,omitempty"`
	AuthPassword Secret            `yaml:"auth_password,omitempty" json:"auth_password,omitempty"`
	AuthIdentity string            `yaml:"auth_identity,omitempty" json:"auth_identity,omitempty"`
	RequireTLS   *bool             `yaml:"require_tls,omitempty" json:"require_tls,omitempty"`
	Headers      map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Text         string            `yaml:"text,omitempty" json:"text,omitempty"`
	HTML         string            `yaml:"html,omitempty" json:"html,omitempty"`
}

// ActionWebhookConfig is an action webhook (Outpost's extension).
type ActionWebhookConfig struct {
	URL        Secret      `yaml:"url" json:"url"`
	HTTPConfig *HTTPConfig `yaml:"http_config,omitempty" json:"http_config,omitempty"`
}

// ReceiverConfig is a receiver of the configuration file.
type ReceiverConfig struct {
	Name           string          `yaml:"name"`
	WebhookConfigs []WebhookConfig `yaml:"webhook_configs,omitempty"`
	SlackConfigs   []SlackConfig   `yaml:"slack_configs,omitempty"`
	EmailConfigs   []EmailConfig   `yaml:"email_configs,omitempty"`

	Unsupported unsupportedIntegrations `yaml:",inline"`
}

// unsupportedIntegrations are Alertmanager's integrations Outpost does not
// send; naming them gives a clearer error than an unknown field.
type unsupportedIntegrations struct {
	Discord    any `yaml:"discord_configs,omitempty"`
	Incidentio any `yaml:"incidentio_configs,omitempty"`
	Jira       any `yaml:"jira_configs,omitempty"`
	MSTeams    any `yaml:"msteams_configs,omitempty"`
	MSTeamsV2  any `yaml:"msteamsv2_configs,omitempty"`
	Opsgenie   any `yaml:"opsgenie_configs,omitempty"`
	PagerDuty  any `yaml:"pagerduty_configs,omitempty"`
	Pushover   any `yaml:"pushover_configs,omitempty"`
	RocketChat any `yaml:"rocketchat_configs,omitempty"`
	SNS        any `yaml:"sns_configs,omitempty"`
	Telegram   any `yaml:"telegram_configs,omitempty"`
	VictorOps  any `yaml:"victorops_configs,omitempty"`
	Webex      any `yaml:"webex_configs,omitempty"`
	WeChat     any `yaml:"wechat_configs,omitempty"`
}

// FileConfig is the operator's configuration file: a subset of
// alertmanager.yml.
type FileConfig struct {
	Global    GlobalConfig     `yaml:"global,omitempty"`
	Route     *RouteConfig     `yaml:"route,omitempty"`
	Receivers []ReceiverConfig `yaml:"receivers,omitempty"`

	InhibitRules      any `yaml:"inhibit_rules,omitempty"`
	Templates         any `yaml:"templates,omitempty"`
	TimeIntervals     any `yaml:"time_intervals,omitempty"`
	MuteTimeIntervals any `yaml:"mute_time_intervals,omitempty"`
	TracingConfig     any `yaml:"tracing,omitempty"`
}

// configFile is a loaded, valid configuration file.
type configFile struct {
	path string
	raw  []byte
	cfg  *FileConfig
}

// LoadConfig reads and validates a configuration file. Errors are
// *ConfigError values naming the file and line.
func LoadConfig(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read notification config: %w", err)
	}
	return ParseConfig(path, b)
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// ParseConfig parses and validates the content of a configuration file; name
// is used in errors.
func ParseConfig(name string, b []byte) (*FileConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(name, err)
	}
	cfg := &FileConfig{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err)
	}
	v := &validator{file: name, root: &root}
	if err := v.config(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func yamlError(file string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	return &ConfigError{File: file, Line: line, Msg: strings.TrimSpace(msg)}
}

// validator checks a decoded configuration and locates its errors in the
// YAML node tree.
type validator struct {
	file string
	root *yaml.Node
}

// at returns the line of the node at path (mapping keys and sequence
// indexes) or of its deepest existing ancestor.
func (v *validator) at(path ...any) int {
	n := v.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		}
		if next == nil {
			return line
		}
		n = next
		if _, ok := p.(int); ok {
			line = n.Line
		}
	}
	return line
}

func (v *validator) errorf(path []any, format string, args ...any) error {
	return &ConfigError{File: v.file, Line: v.at(path...), Msg: fmt.Sprintf(format, args...)}
}

func with(path []any, more ...any) []any {
	return append(slices.Clip(path), more...)
}

func (v *validator) config(c *FileConfig) error {
	for _, u := range []struct {
		key string
		set bool
	}{
		{"inhibit_rules", c.InhibitRules != nil},
		{"templates", c.Templates != nil},
		{"time_intervals", c.TimeIntervals != nil},
		{"mute_time_intervals", c.MuteTimeIntervals != nil},
		{"tracing", c.TracingConfig != nil},
	} {
		if u.set {
			return v.errorf([]any{u.key}, "%s is not supported by Outpost's notifier", u.key)
		}
	}
	if c.Global.ResolveTimeout != nil && *c.Global.ResolveTimeout <= 0 {
		return v.errorf([]any{"global", "resolve_timeout"}, "resolve_timeout must be positive")
	}
	if h := c.Global.SMTPSmarthost; h != "" {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return v.errorf([]any{"global", "smtp_smarthost"}, "invalid smtp_smarthost %q: want host:port", h)
		}
	}
	if u := c.Global.SlackAPIURL; u != "" {
		if err := checkURL(string(u)); err != nil {
			return v.errorf([]any{"global", "slack_api_url"}, "invalid slack_api_url: %v", err)
		}
	}
	names := map[string]bool{}
	for i := range c.Receivers {
		r := &c.Receivers[i]
		path := []any{"receivers", i}
		if r.Name == "" {
			return v.errorf(path, "missing name in receiver")
		}
		if names[r.Name] {
			return v.errorf(with(path, "name"), "receiver name %q is not unique", r.Name)
		}
		names[r.Name] = true
		if err := v.receiver(path, r, &c.Global); err != nil {
			return err
		}
	}
	if c.Route == nil {
		return v.errorf(nil, "no route provided in config")
	}
	if c.Route.Receiver == "" {
		return v.errorf([]any{"route"}, "root route must specify a default receiver")
	}
	if len(c.Route.Matchers) > 0 || len(c.Route.Match) > 0 || len(c.Route.MatchRE) > 0 {
		return v.errorf([]any{"route"}, "root route must not have any matchers")
	}
	if c.Route.Continue {
		return v.errorf([]any{"route", "continue"}, "cannot have continue in root route")
	}
	return v.route([]any{"route"}, c.Route, names)
}

func (v *validator) route(path []any, r *RouteConfig, receivers map[string]bool) error {
	if r.Receiver != "" && !receivers[r.Receiver] {
		return v.errorf(with(path, "receiver"), "undefined receiver %q used in route", r.Receiver)
	}
	if len(r.MuteTimeIntervals) > 0 {
		return v.errorf(with(path, "mute_time_intervals"), "mute_time_intervals are not supported by Outpost's notifier; use silences")
	}
	if len(r.ActiveTimeIntervals) > 0 {
		return v.errorf(with(path, "active_time_intervals"), "active_time_intervals are not supported by Outpost's notifier; use silences")
	}
	if _, _, err := parseGroupBy(r.GroupBy); err != nil {
		return v.errorf(with(path, "group_by"), "%v", err)
	}
	for i, s := range r.Matchers {
		if _, err := ParseMatchers(s); err != nil {
			return v.errorf(with(path, "matchers", i), "invalid matcher: %v", err)
		}
	}
	for k, val := range r.Match {
		if _, err := NewMatcher(MatchEqual, k, val); err != nil {
			return v.errorf(with(path, "match", k), "invalid match: %v", err)
		}
	}
	for k, val := range r.MatchRE {
		if _, err := NewMatcher(MatchRegexp, k, val); err != nil {
			return v.errorf(with(path, "match_re", k), "invalid match_re: %v", err)
		}
	}
	if r.GroupInterval != nil && *r.GroupInterval <= 0 {
		return v.errorf(with(path, "group_interval"), "group_interval cannot be zero")
	}
	if r.RepeatInterval != nil && *r.RepeatInterval <= 0 {
		return v.errorf(with(path, "repeat_interval"), "repeat_interval cannot be zero")
	}
	if r.GroupWait != nil && *r.GroupWait < 0 {
		return v.errorf(with(path, "group_wait"), "group_wait cannot be negative")
	}
	for i, a := range r.ActionWebhookConfigs {
		if err := checkURL(string(a.URL)); err != nil {
			return v.errorf(with(path, "action_webhook_configs", i, "url"), "invalid action webhook url: %v", err)
		}
		if err := checkHTTPConfig(a.HTTPConfig); err != nil {
			return v.errorf(with(path, "action_webhook_configs", i, "http_config"), "%v", err)
		}
	}
	for i, c := range r.Routes {
		if c == nil {
			return v.errorf(with(path, "routes", i), "empty route")
		}
		if err := v.route(with(path, "routes", i), c, receivers); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) receiver(path []any, r *ReceiverConfig, g *GlobalConfig) error {
	u := r.Unsupported
	for _, x := range []struct {
		key string
		set bool
	}{
		{"discord_configs", u.Discord != nil}, {"incidentio_configs", u.Incidentio != nil},
		{"jira_configs", u.Jira != nil}, {"msteams_configs", u.MSTeams != nil},
		{"msteamsv2_configs", u.MSTeamsV2 != nil}, {"opsgenie_configs", u.Opsgenie != nil},
		{"pagerduty_configs", u.PagerDuty != nil}, {"pushover_configs", u.Pushover != nil},
		{"rocketchat_configs", u.RocketChat != nil}, {"sns_configs", u.SNS != nil},
		{"telegram_configs", u.Telegram != nil}, {"victorops_configs", u.VictorOps != nil},
		{"webex_configs", u.Webex != nil}, {"wechat_configs", u.WeChat != nil},
	} {
		if x.set {
			return v.errorf(with(path, x.key), "%s are not supported by Outpost's notifier (webhook_configs, slack_configs and email_configs are)", x.key)
		}
	}
	for i := range r.WebhookConfigs {
		if err := checkWebhook(&r.WebhookConfigs[i]); err != nil {
			return v.errorf(with(path, "webhook_configs", i), "%v", err)
		}
	}
	for i := range r.SlackConfigs {
		if err := checkSlack(&r.SlackConfigs[i], g); err != nil {
			return v.errorf(with(path, "slack_configs", i), "%v", err)
		}
	}
	for i := range r.EmailConfigs {
		if err := checkEmail(&r.EmailConfigs[i], g); err != nil {
			return v.errorf(with(path, "email_configs", i), "%v", err)
		}
	}
	return nil
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("missing url")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("cannot parse url") // the URL may hold a secret: not echoed
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("unsupported scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("missing host in url")
	}
	return nil
}

func checkHTTPConfig(h *HTTPConfig) error {
	if h == nil {
		return nil
	}
	n := 0
	if h.BasicAuth != nil {
		n++
	}
	if h.BearerToken != "" {
		n++
	}
	if h.Authorization != nil {
		n++
	}
	if n > 1 {
		return errors.New("at most one of basic_auth, bearer_token and authorization must be configured")
	}
	return nil
}

func checkWebhook(c *WebhookConfig) error {
	if err := checkURL(string(c.URL)); err != nil {
		return fmt.Errorf("invalid webhook url: %w", err)
	}
	return checkHTTPConfig(c.HTTPConfig)
}

func checkSlack(c *SlackConfig, g *GlobalConfig) error {
	u := c.APIURL
	if u == "" && g != nil {
		u = g.SlackAPIURL
	}
	if u == "" {
		return errors.New("no api_url for Slack (set it here or global.slack_api_url)")
	}
	if err := checkURL(string(u)); err != nil {
		return fmt.Errorf("invalid Slack api_url: %w", err)
	}
	for _, t := range []struct{ name, src string }{{"title", c.Title}, {"title_link", c.TitleLink}, {"text", c.Text}, {"color", c.Color}, {"username", c.Username}, {"channel", c.Channel}} {
		if _, err := parseTemplate(t.name, t.src); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	return checkHTTPConfig(c.HTTPConfig)
}

func checkEmail(c *EmailConfig, g *GlobalConfig) error {
	if c.To == "" {
		return errors.New("missing to address in email config")
	}
	if c.HTML != "" {
		return errors.New("html bodies are not supported by Outpost's notifier: use text")
	}
	host := c.Smarthost
	from := c.From
	if g != nil {
		if host == "" {
			host = g.SMTPSmarthost
		}
		if from == "" {
			from = g.SMTPFrom
		}
	}
	if host == "" {
		return errors.New("no smarthost for e-mail (set it here or global.smtp_smarthost)")
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		return fmt.Errorf("invalid smarthost %q: want host:port", host)
	}
	if from == "" {
		return errors.New("no from address for e-mail (set it here or global.smtp_from)")
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return fmt.Errorf("invalid from address %q: %w", from, err)
	}
	if !strings.Contains(c.To, "{{") {
		if _, err := mail.ParseAddressList(c.To); err != nil {
			return fmt.Errorf("invalid to address %q: %w", c.To, err)
		}
	}
	if _, err := parseTemplate("to", c.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if _, err := parseTemplate("text", c.Text); err != nil {
		return fmt.Errorf("text: %w", err)
	}
	for k, val := range c.Headers {
		if _, err := parseTemplate(k, val); err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
	}
	return nil
}

// parseGroupBy returns the sorted label names of group_by, or all=true for
// ['...'].
func parseGroupBy(in []string) (names []model.LabelName, all bool, err error) {
	seen := map[string]bool{}
	for _, s := range in {
		if s == "..." {
			if len(in) > 1 {
				return nil, false, errors.New("cannot have wildcard group_by (`...`) and other labels at the same time")
			}
			return nil, true, nil
		}
		if !model.LabelName(s).IsValid() || s == "" {
			return nil, false, fmt.Errorf("invalid label name %q in group_by list", s)
		}
		if seen[s] {
			return nil, false, fmt.Errorf("duplicated label %q in group_by", s)
		}
		seen[s] = true
		names = append(names, model.LabelName(s))
	}
	slices.Sort(names)
	return names, false, nil
}

// marshalRedacted renders the configuration as YAML with secrets hidden, for
// /api/v2/status.
func marshalRedacted(c *FileConfig) string {
	if c == nil {
		return ""
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return ""
	}
	return string(b)
}
