package notify

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/common/model"
)

// Default timers of the root route, as Alertmanager's.
const (
	defaultGroupWait      = 30 * time.Second
	defaultGroupInterval  = 5 * time.Minute
	defaultRepeatInterval = 4 * time.Hour
)

// actionAnnotation is the annotation that asks for an action webhook.
const actionAnnotation = "action_webhook"

// route is one node of the compiled routing tree.
type route struct {
	id       int
	parent   *route
	key      string // Alertmanager's Route.Key
	source   string // "file", "ui", "action" or "default"
	receiver string

	groupBy        []model.LabelName
	groupByAll     bool
	groupWait      time.Duration
	groupInterval  time.Duration
	repeatInterval time.Duration

	matchers Matchers
	cont     bool
	children []*route

	// actions are the route's action webhooks (inherited by children that
	// set none).
	actions []*integration
	// byAction marks the route of the action_webhook annotation: it groups by
	// alertname and the annotation's URL.
	byAction bool
}

// match returns the routes an alert goes to in the tree below r, with
// Alertmanager's depth-first, left-to-right semantics.
func (r *route) match(lset model.LabelSet) []*route {
	if !r.matchers.Matches(lset) {
		return nil
	}
	var all []*route
	for _, c := range r.children {
		m := c.match(lset)
		all = append(all, m...)
		if m != nil && !c.cont {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, r)
	}
	return all
}

// groupLabels returns the labels the alert is grouped by on r.
func (r *route) groupLabels(e *alertEntry) model.LabelSet {
	if r.byAction {
		return model.LabelSet{
			model.AlertNameLabel: e.labels[model.AlertNameLabel],
			actionAnnotation:     e.annotations[actionAnnotation],
		}
	}
	if r.groupByAll {
		return e.labels
	}
	gl := make(model.LabelSet, len(r.groupBy))
	for _, n := range r.groupBy {
		if v, ok := e.labels[n]; ok {
			gl[n] = v
		}
	}
	return gl
}

// receiverInfo is a compiled receiver.
type receiverInfo struct {
	name         string
	source       string // "file" or "ui"
	kinds        []string
	integrations []*integration
}

// routing is a compiled configuration: the tree of the file, the routes of
// the receivers created in the UI and the route of the action annotation.
type routing struct {
	root      *route
	extra     []*route // evaluated beside the tree, each on its own
	routes    []*route // by id
	receivers map[string]*receiverInfo
	order     []string // receiver names: file order, then UI by name
	env       *env
	resolve   time.Duration
}

// match returns every route an alert goes to.
func (rt *routing) match(e *alertEntry) []*route {
	rs := rt.root.match(e.labels)
	for _, r := range rt.extra {
		if r.byAction {
			if e.annotations[actionAnnotation] != "" {
				rs = append(rs, r)
			}
			continue
		}
		if r.matchers.Matches(e.labels) {
			rs = append(rs, r)
		}
	}
	return rs
}

// buildRouting compiles the file configuration (nil: none) and the UI
// receivers.
func buildRouting(file *FileConfig, ui []UIReceiver, e *env, resolveDefault time.Duration) (*routing, error) {
	rt := &routing{receivers: map[string]*receiverInfo{}, env: e, resolve: resolveDefault}
	if file != nil {
		e.global = file.Global
		if file.Global.ResolveTimeout != nil {
			rt.resolve = time.Duration(*file.Global.ResolveTimeout)
		}
		for _, rc := range file.Receivers {
			ints, err := buildIntegrations(rc.Name, rc.WebhookConfigs, rc.SlackConfigs, rc.EmailConfigs, e)
			if err != nil {
				return nil, fmt.Errorf("receiver %q: %w", rc.Name, err)
			}
			rt.addReceiver(rc.Name, "file", ints)
		}
		root, err := rt.compile(file.Route, nil, "file")
		if err != nil {
			return nil, err
		}
		rt.root = root
	} else {
		rt.root = rt.newRoute(&route{
			source: "default", groupBy: []model.LabelName{model.AlertNameLabel},
			groupWait: defaultGroupWait, groupInterval: defaultGroupInterval, repeatInterval: defaultRepeatInterval,
		})
		rt.root.key = "{}"
	}
	for _, u := range ui {
		if _, ok := rt.receivers[u.Name]; ok {
			return nil, fmt.Errorf("%w: %q", ErrReceiverConflict, u.Name)
		}
		ints, err := buildIntegrations(u.Name, u.WebhookConfigs, u.SlackConfigs, u.EmailConfigs, e)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", u.Name, err)
		}
		rt.addReceiver(u.Name, "ui", ints)
		r, err := uiRoute(u, rt.root)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", u.Name, err)
		}
		rt.extra = append(rt.extra, rt.newRoute(r))
	}
	root := rt.root
	ar := rt.newRoute(&route{
		parent: root, source: "action", byAction: true,
		groupBy:   []model.LabelName{actionAnnotation, model.AlertNameLabel},
		groupWait: root.groupWait, groupInterval: root.groupInterval, repeatInterval: root.repeatInterval,
	})
	ar.key = root.key + "/{" + actionAnnotation + "}"
	rt.extra = append(rt.extra, ar)
	return rt, nil
}

func (rt *routing) addReceiver(name, source string, ints []*integration) {
	ri := &receiverInfo{name: name, source: source, integrations: ints}
	for _, i := range ints {
		if !slices.Contains(ri.kinds, i.kind) {
			ri.kinds = append(ri.kinds, i.kind)
		}
	}
	rt.receivers[name] = ri
	rt.order = append(rt.order, name)
}

func (rt *routing) newRoute(r *route) *route {
	r.id = len(rt.routes)
	rt.routes = append(rt.routes, r)
	return r
}

// compile builds a route and its children from the configuration, inheriting
// the parent's options as Alertmanager does.
func (rt *routing) compile(c *RouteConfig, parent *route, source string) (*route, error) {
	r := &route{parent: parent, source: source, cont: c.Continue}
	if parent == nil {
		r.groupWait, r.groupInterval, r.repeatInterval = defaultGroupWait, defaultGroupInterval, defaultRepeatInterval
	} else {
		r.receiver = parent.receiver
		r.groupBy, r.groupByAll = parent.groupBy, parent.groupByAll
		r.groupWait, r.groupInterval, r.repeatInterval = parent.groupWait, parent.groupInterval, parent.repeatInterval
		r.actions = parent.actions
	}
	if c.Receiver != "" {
		r.receiver = c.Receiver
	}
	if c.GroupBy != nil {
		gb, all, err := parseGroupBy(c.GroupBy)
		if err != nil {
			return nil, err
		}
		r.groupBy, r.groupByAll = gb, all
	}
	if c.GroupWait != nil {
		r.groupWait = time.Duration(*c.GroupWait)
	}
	if c.GroupInterval != nil {
		r.groupInterval = time.Duration(*c.GroupInterval)
	}
	if c.RepeatInterval != nil {
		r.repeatInterval = time.Duration(*c.RepeatInterval)
	}
	for k, v := range c.Match {
		m, err := NewMatcher(MatchEqual, k, v)
		if err != nil {
			return nil, err
		}
		r.matchers = append(r.matchers, m)
	}
	for k, v := range c.MatchRE {
		m, err := NewMatcher(MatchRegexp, k, v)
		if err != nil {
			return nil, err
		}
		r.matchers = append(r.matchers, m)
	}
	for _, s := range c.Matchers {
		ms, err := ParseMatchers(s)
		if err != nil {
			return nil, err
		}
		r.matchers = append(r.matchers, ms...)
	}
	sortMatchers(r.matchers)
	if parent != nil {
		r.key = parent.key + "/" + r.matchers.String()
	} else {
		r.key = r.matchers.String()
	}
	rt.newRoute(r)
	if c.ActionWebhookConfigs != nil {
		r.actions = nil
		for i, a := range c.ActionWebhookConfigs {
			if err := checkURL(string(a.URL)); err != nil {
				return nil, fmt.Errorf("action_webhook_configs[%d]: %w", i, err)
			}
			r.actions = append(r.actions, &integration{receiver: actionReceiver, kind: kindAction, idx: i, sendResolved: true,
				s: &webhookSender{env: rt.env, url: string(a.URL), auth: a.HTTPConfig}})
		}
	}
	for _, cc := range c.Routes {
		child, err := rt.compile(cc, r, source)
		if err != nil {
			return nil, err
		}
		r.children = append(r.children, child)
	}
	return r, nil
}

// UIReceiver is a receiver created in the UI: its integrations and the route
// that feeds it. It behaves as a child route of the root with continue: true
// that is evaluated on its own, so it never takes alerts away from the
// routes of the configuration file. Zero group_by and timers are the root's.
type UIReceiver struct {
	Name           string          `json:"name"`
	Matchers       []string        `json:"matchers,omitempty"`
	GroupBy        []string        `json:"group_by,omitempty"`
	GroupWait      *Duration       `json:"group_wait,omitempty"`
	GroupInterval  *Duration       `json:"group_interval,omitempty"`
	RepeatInterval *Duration       `json:"repeat_interval,omitempty"`
	WebhookConfigs []WebhookConfig `json:"webhook_configs,omitempty"`
	SlackConfigs   []SlackConfig   `json:"slack_configs,omitempty"`
	EmailConfigs   []EmailConfig   `json:"email_configs,omitempty"`
}

func uiRoute(u UIReceiver, root *route) (*route, error) {
	r := &route{
		parent: root, source: "ui", receiver: u.Name, cont: true,
		groupBy: root.groupBy, groupByAll: root.groupByAll,
		groupWait: root.groupWait, groupInterval: root.groupInterval, repeatInterval: root.repeatInterval,
	}
	if u.GroupBy != nil {
		gb, all, err := parseGroupBy(u.GroupBy)
		if err != nil {
			return nil, err
		}
		r.groupBy, r.groupByAll = gb, all
	}
	if u.GroupWait != nil {
		r.groupWait = time.Duration(*u.GroupWait)
	}
	if u.GroupInterval != nil {
		r.groupInterval = time.Duration(*u.GroupInterval)
	}
	if u.RepeatInterval != nil {
		r.repeatInterval = time.Duration(*u.RepeatInterval)
	}
	for _, s := range u.Matchers {
		ms, err := ParseMatchers(s)
		if err != nil {
			return nil, err
		}
		r.matchers = append(r.matchers, ms...)
	}
	sortMatchers(r.matchers)
	r.key = root.key + "/" + r.matchers.String()
	return r, nil
}

// validateUIReceiver checks a receiver sent by the UI.
func validateUIReceiver(u *UIReceiver, g *GlobalConfig) error {
	if u.Name == "" {
		return fmt.Errorf("%w: missing name", ErrInvalidReceiver)
	}
	if len(u.Name) > 128 || strings.ContainsFunc(u.Name, func(r rune) bool { return unicode.IsControl(r) || r == '/' }) {
		return fmt.Errorf("%w: name %q: at most 128 characters, no '/' or control characters", ErrInvalidReceiver, u.Name)
	}
	if u.Name == actionReceiver {
		return fmt.Errorf("%w: name %q is reserved", ErrInvalidReceiver, u.Name)
	}
	if len(u.WebhookConfigs)+len(u.SlackConfigs)+len(u.EmailConfigs) == 0 {
		return fmt.Errorf("%w: %q has no webhook_configs, slack_configs or email_configs", ErrInvalidReceiver, u.Name)
	}
	for _, s := range u.Matchers {
		if _, err := ParseMatchers(s); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidReceiver, err)
		}
	}
	if _, _, err := parseGroupBy(u.GroupBy); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidReceiver, err)
	}
	for _, d := range []*Duration{u.GroupInterval, u.RepeatInterval} {
		if d != nil && *d <= 0 {
			return fmt.Errorf("%w: group_interval and repeat_interval must be positive", ErrInvalidReceiver)
		}
	}
	if u.GroupWait != nil && *u.GroupWait < 0 {
		return fmt.Errorf("%w: group_wait cannot be negative", ErrInvalidReceiver)
	}
	for i := range u.WebhookConfigs {
		if err := checkWebhook(&u.WebhookConfigs[i]); err != nil {
			return fmt.Errorf("%w: webhook_configs[%d]: %v", ErrInvalidReceiver, i, err)
		}
	}
	for i := range u.SlackConfigs {
		if err := checkSlack(&u.SlackConfigs[i], g); err != nil {
			return fmt.Errorf("%w: slack_configs[%d]: %v", ErrInvalidReceiver, i, err)
		}
	}
	for i := range u.EmailConfigs {
		if err := checkEmail(&u.EmailConfigs[i], g); err != nil {
			return fmt.Errorf("%w: email_configs[%d]: %v", ErrInvalidReceiver, i, err)
		}
	}
	return nil
}

// redacted returns a copy with every secret replaced by "<secret>".
func (u UIReceiver) redacted() UIReceiver {
	c := u
	c.Matchers = slices.Clone(u.Matchers)
	c.GroupBy = slices.Clone(u.GroupBy)
	c.WebhookConfigs = slices.Clone(u.WebhookConfigs)
	for i := range c.WebhookConfigs {
		w := &c.WebhookConfigs[i]
		w.URL = mask(w.URL)
		w.HTTPConfig = w.HTTPConfig.redacted()
	}
	c.SlackConfigs = slices.Clone(u.SlackConfigs)
	for i := range c.SlackConfigs {
		s := &c.SlackConfigs[i]
		s.APIURL = mask(s.APIURL)
		s.HTTPConfig = s.HTTPConfig.redacted()
	}
	c.EmailConfigs = slices.Clone(u.EmailConfigs)
	for i := range c.EmailConfigs {
		c.EmailConfigs[i].AuthPassword = mask(c.EmailConfigs[i].AuthPassword)
	}
	return c
}

// unredact puts back the secrets that the UI sent as "<secret>", taking them
// from the receiver's stored version (same kind and position).
func (u *UIReceiver) unredact(old UIReceiver) {
	for i := range u.WebhookConfigs {
		w := &u.WebhookConfigs[i]
		if i < len(old.WebhookConfigs) {
			o := old.WebhookConfigs[i]
			keep(&w.URL, o.URL)
			w.HTTPConfig.unredact(o.HTTPConfig)
		}
	}
	for i := range u.SlackConfigs {
		s := &u.SlackConfigs[i]
		if i < len(old.SlackConfigs) {
			o := old.SlackConfigs[i]
			keep(&s.APIURL, o.APIURL)
			s.HTTPConfig.unredact(o.HTTPConfig)
		}
	}
	for i := range u.EmailConfigs {
		if i < len(old.EmailConfigs) {
			keep(&u.EmailConfigs[i].AuthPassword, old.EmailConfigs[i].AuthPassword)
		}
	}
}

func mask(s Secret) Secret {
	if s == "" {
		return ""
	}
	return secretMask
}

func keep(dst *Secret, old Secret) {
	if *dst == secretMask {
		*dst = old
	}
}

func (h *HTTPConfig) redacted() *HTTPConfig {
	if h == nil {
		return nil
	}
	c := *h
	c.BearerToken = mask(c.BearerToken)
	if c.BasicAuth != nil {
		b := *c.BasicAuth
		b.Password = mask(b.Password)
		c.BasicAuth = &b
	}
	if c.Authorization != nil {
		a := *c.Authorization
		a.Credentials = mask(a.Credentials)
		c.Authorization = &a
	}
	return &c
}

func (h *HTTPConfig) unredact(old *HTTPConfig) {
	if h == nil || old == nil {
		return
	}
	keep(&h.BearerToken, old.BearerToken)
	if h.BasicAuth != nil && old.BasicAuth != nil {
		keep(&h.BasicAuth.Password, old.BasicAuth.Password)
	}
	if h.Authorization != nil && old.Authorization != nil {
		keep(&h.Authorization.Credentials, old.Authorization.Credentials)
	}
}
