package notify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the notifier's self-monitoring series.
type metrics struct {
	total         *prometheus.CounterVec
	failed        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	invalid       prometheus.Counter
	dropped       prometheus.Counter
	groupsDropped prometheus.Counter
	alerts        *prometheus.Desc
	groups        *prometheus.Desc
	n             *Notifier
}

func newMetrics(n *Notifier, reg prometheus.Registerer) *metrics {
	m := &metrics{
		n: n,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_notify_notifications_total",
			Help: "Notification attempts, by integration (webhook, slack, email, action_webhook).",
		}, []string{"integration"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_notify_notifications_failed_total",
			Help: "Failed notification attempts, by integration.",
		}, []string{"integration"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outpost_notify_notification_latency_seconds",
			Help:    "Duration of notification attempts, by integration.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"integration"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outpost_notify_alerts_invalid_total",
			Help: "Alerts dropped because they did not validate.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outpost_notify_alerts_dropped_total",
			Help: "New alerts dropped because the notifier held its maximum of alerts.",
		}),
		groupsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outpost_notify_groups_limit_reached_total",
			Help: "Alerts not grouped on a route because the notifier held its maximum of aggregation groups.",
		}),
		alerts: prometheus.NewDesc("outpost_notify_alerts", "Alerts held by the notifier, by state (active, suppressed, resolved).", []string{"state"}, nil),
		groups: prometheus.NewDesc("outpost_notify_aggregation_groups", "Aggregation groups.", nil, nil),
	}
	for _, k := range []string{kindWebhook, kindSlack, kindEmail, kindAction} {
		m.total.WithLabelValues(k)
		m.failed.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.total, m.failed, m.latency, m.invalid, m.dropped, m.groupsDropped, m)
	}
	return m
}

func (m *metrics) observe(kind string, err error, d time.Duration) {
	m.total.WithLabelValues(kind).Inc()
	if err != nil {
		m.failed.WithLabelValues(kind).Inc()
	}
	m.latency.WithLabelValues(kind).Observe(d.Seconds())
}

// Describe implements prometheus.Collector for the alert and group gauges.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.alerts
	ch <- m.groups
}

// Collect counts the alerts by state.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	n := m.n
	now := n.now()
	counts := map[string]int{StateActive: 0, StateSuppressed: 0, StateResolved: 0}
	n.mu.Lock()
	for _, e := range n.alerts {
		switch {
		case e.resolvedAt(now):
			counts[StateResolved]++
		case n.muted(e.labels, now):
			counts[StateSuppressed]++
		default:
			counts[StateActive]++
		}
	}
	groups := len(n.groups)
	n.mu.Unlock()
	for st, c := range counts {
		ch <- prometheus.MustNewConstMetric(m.alerts, prometheus.GaugeValue, float64(c), st)
	}
	ch <- prometheus.MustNewConstMetric(m.groups, prometheus.GaugeValue, float64(groups))
}
