package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/util/strutil"

	"outpost/detect/rules/promrules"
)

// Alert is one alert as Alertmanager receives it (the POST /api/v2/alerts
// model).
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt,omitzero"`
	// EndsAt is when the alert resolves. Zero: it resolves after the resolve
	// timeout without an update, as Alertmanager does.
	EndsAt       time.Time `json:"endsAt,omitzero"`
	GeneratorURL string    `json:"generatorURL,omitempty"`
}

// Validate reports why Alertmanager would refuse the alert: no labels, an
// invalid label name or value, or an end before the start.
func (a *Alert) Validate() error {
	if len(a.Labels) == 0 {
		return errors.New("at least one label pair required")
	}
	for k, v := range a.Labels {
		if k == "" || !model.LabelName(k).IsValid() {
			return fmt.Errorf("invalid label name %q", k)
		}
		if !model.LabelValue(v).IsValid() {
			return fmt.Errorf("invalid value %q of label %q", v, k)
		}
	}
	for k, v := range a.Annotations {
		if k == "" || !model.LabelName(k).IsValid() {
			return fmt.Errorf("invalid annotation name %q", k)
		}
		if !model.LabelValue(v).IsValid() {
			return fmt.Errorf("invalid value of annotation %q", k)
		}
	}
	if !a.StartsAt.IsZero() && !a.EndsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
		return errors.New("start time must be before end time")
	}
	return nil
}

// Fingerprint returns the alert's identity: the fingerprint of its label set,
// as Alertmanager and Prometheus compute it.
func (a *Alert) Fingerprint() model.Fingerprint { return labelSet(a.Labels).Fingerprint() }

func labelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// FromRules converts the alerts the rule manager hands to its NotifyFunc the
// way Prometheus' rules.SendAlerts does: StartsAt is when the alert fired,
// EndsAt when it resolved or else until when it is valid, and GeneratorURL
// links the rule's expression expr at externalURL. Alerts that are not firing
// yet (pending) are left out.
func FromRules(externalURL, expr string, alerts ...*promrules.Alert) []Alert {
	out := make([]Alert, 0, len(alerts))
	for _, ra := range alerts {
		if ra == nil || ra.State == promrules.StatePending || ra.FiredAt.IsZero() {
			continue
		}
		a := Alert{
			StartsAt:     ra.FiredAt,
			Labels:       ra.Labels.Map(),
			Annotations:  ra.Annotations.Map(),
			GeneratorURL: externalURL + strutil.TableLinkForExpression(expr),
		}
		if !ra.ResolvedAt.IsZero() {
			a.EndsAt = ra.ResolvedAt
		} else {
			a.EndsAt = ra.ValidUntil
		}
		out = append(out, a)
	}
	return out
}

// RulesNotify returns a hook for the rule manager's Options.Notify that hands
// its alerts to n through FromRules.
func (n *Notifier) RulesNotify() promrules.NotifyFunc {
	return func(_ context.Context, expr string, alerts ...*promrules.Alert) {
		if as := FromRules(n.extURL, expr, alerts...); len(as) > 0 {
			n.Send(as...)
		}
	}
}
