package notify

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
)

// Data is what notification templates see, the shape of Alertmanager's
// template.Data, and the body of webhook notifications.
type Data struct {
	Receiver          string     `json:"receiver"`
	Status            string     `json:"status"`
	Alerts            DataAlerts `json:"alerts"`
	GroupLabels       KV         `json:"groupLabels"`
	CommonLabels      KV         `json:"commonLabels"`
	CommonAnnotations KV         `json:"commonAnnotations"`
	ExternalURL       string     `json:"externalURL"`
}

// DataAlert is one alert of a notification.
type DataAlert struct {
	Status       string    `json:"status"`
	Labels       KV        `json:"labels"`
	Annotations  KV        `json:"annotations"`
	StartsAt     time.Time `json:"startsAt"`
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	Fingerprint  string    `json:"fingerprint"`
}

// DataAlerts is the alerts of a notification.
type DataAlerts []DataAlert

// Firing returns the firing alerts.
func (as DataAlerts) Firing() DataAlerts {
	var out DataAlerts
	for _, a := range as {
		if a.Status == statusFiring {
			out = append(out, a)
		}
	}
	return out
}

// Resolved returns the resolved alerts.
func (as DataAlerts) Resolved() DataAlerts {
	var out DataAlerts
	for _, a := range as {
		if a.Status == statusResolved {
			out = append(out, a)
		}
	}
	return out
}

// KV is a set of labels or annotations with Alertmanager's template methods.
type KV map[string]string

// Pair is one name and value of a KV.
type Pair struct{ Name, Value string }

// Pairs is a sorted list of pairs.
type Pairs []Pair

// Names returns the names of the pairs.
func (ps Pairs) Names() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// Values returns the values of the pairs.
func (ps Pairs) Values() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Value
	}
	return out
}

// SortedPairs returns the pairs sorted by name, alertname first.
func (kv KV) SortedPairs() Pairs {
	out := make(Pairs, 0, len(kv))
	for k, v := range kv {
		out = append(out, Pair{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name == "alertname" {
			return out[j].Name != "alertname"
		}
		if out[j].Name == "alertname" {
			return false
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Names returns the sorted names.
func (kv KV) Names() []string { return kv.SortedPairs().Names() }

// Values returns the values sorted by name.
func (kv KV) Values() []string { return kv.SortedPairs().Values() }

// Remove returns a copy without the given names.
func (kv KV) Remove(names []string) KV {
	out := make(KV, len(kv))
	for k, v := range kv {
		if !slices.Contains(names, k) {
			out[k] = v
		}
	}
	return out
}

const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// newData builds the template data of one notification as Alertmanager's
// template.Data does (the receiver name quoted as a regular expression,
// common labels and annotations shared by every alert).
func newData(receiver, externalURL string, groupLabels model.LabelSet, alerts []*snapAlert) *Data {
	d := &Data{
		Receiver:          regexp.QuoteMeta(receiver),
		Status:            statusResolved,
		Alerts:            make(DataAlerts, 0, len(alerts)),
		GroupLabels:       KV{},
		CommonLabels:      KV{},
		CommonAnnotations: KV{},
		ExternalURL:       externalURL,
	}
	for _, a := range alerts {
		st := statusFiring
		if a.resolved {
			st = statusResolved
		} else {
			d.Status = statusFiring
		}
		da := DataAlert{
			Status:       st,
			Labels:       make(KV, len(a.labels)),
			Annotations:  make(KV, len(a.annotations)),
			StartsAt:     a.startsAt,
			EndsAt:       a.endsAt,
			GeneratorURL: a.generatorURL,
			Fingerprint:  a.fp.String(),
		}
		for k, v := range a.labels {
			da.Labels[string(k)] = string(v)
		}
		for k, v := range a.annotations {
			da.Annotations[string(k)] = string(v)
		}
		d.Alerts = append(d.Alerts, da)
	}
	for k, v := range groupLabels {
		d.GroupLabels[string(k)] = string(v)
	}
	if len(alerts) > 0 {
		for k, v := range alerts[0].labels {
			d.CommonLabels[string(k)] = string(v)
		}
		for k, v := range alerts[0].annotations {
			d.CommonAnnotations[string(k)] = string(v)
		}
		for _, a := range alerts[1:] {
			for k, v := range d.CommonLabels {
				if string(a.labels[model.LabelName(k)]) != v {
					delete(d.CommonLabels, k)
				}
			}
			for k, v := range d.CommonAnnotations {
				if string(a.annotations[model.LabelName(k)]) != v {
					delete(d.CommonAnnotations, k)
				}
			}
		}
	}
	return d
}

// templateFuncs are the functions of Alertmanager's templates that make sense
// in plain text.
var templateFuncs = template.FuncMap{
	"toUpper":   strings.ToUpper,
	"toLower":   strings.ToLower,
	"title":     func(s string) string { return strings.Title(s) }, //nolint:staticcheck // as Alertmanager
	"trimSpace": strings.TrimSpace,
	"join":      func(sep string, s []string) string { return strings.Join(s, sep) },
	"match":     regexp.MatchString,
	"reReplaceAll": func(pattern, repl, text string) string {
		return regexp.MustCompile(pattern).ReplaceAllString(text, repl)
	},
	"stringSlice": func(s ...string) []string { return s },
	"urlquery":    url.QueryEscape,
	"since":       func(t time.Time) time.Duration { return time.Since(t) },
	// alertnames is Outpost's: the distinct alertname labels, sorted.
	"alertnames": func(as DataAlerts) []string {
		var out []string
		for _, a := range as {
			if n := a.Labels["alertname"]; !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	},
}

// The default templates: plain text, in the spirit of Alertmanager's
// default.tmpl.
const (
	defaultTitle = `[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if gt (len .CommonLabels) (len .GroupLabels) }}({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " " }}{{ end }}){{ end }}`

	defaultText = `{{ with .Alerts.Firing }}{{ len . }} firing{{ end }}{{ if and .Alerts.Firing .Alerts.Resolved }}, {{ end }}{{ with .Alerts.Resolved }}{{ len . }} resolved{{ end }}: {{ .Alerts | alertnames | join ", " }}
{{ range .Alerts }}
[{{ .Status | toUpper }}] {{ .Labels.alertname }}
{{ with .Annotations.summary }}Summary: {{ . }}
{{ end }}{{ with .Annotations.description }}Description: {{ . }}
{{ end }}Labels:
{{ range .Labels.SortedPairs }}  {{ .Name }} = {{ .Value }}
{{ end }}Started: {{ .StartsAt.UTC.Format "2006-01-02 15:04:05 MST" }}
{{ if eq .Status "resolved" }}Ended: {{ .EndsAt.UTC.Format "2006-01-02 15:04:05 MST" }}
{{ end }}{{ with .GeneratorURL }}Source: {{ . }}
{{ end }}{{ end }}{{ with .ExternalURL }}
Alerts: {{ . }}
{{ end }}`

	defaultSlackColor     = `{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}`
	defaultSlackUsername  = `Outpost`
	defaultSlackTitleLink = `{{ .ExternalURL }}`
)

// tmpl is a parsed notification template.
type tmpl struct {
	src string
	t   *template.Template
}

func parseTemplate(name, src string) (*tmpl, error) {
	t, err := template.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	return &tmpl{src: src, t: t}, nil
}

func mustTemplate(name, src string) *tmpl {
	t, err := parseTemplate(name, src)
	if err != nil {
		panic(err)
	}
	return t
}

func (t *tmpl) exec(d *Data) (string, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("cannot execute template %s: %w", t.t.Name(), err)
	}
	return strings.TrimSpace(b.String()), nil
}
