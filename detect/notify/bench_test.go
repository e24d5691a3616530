package notify

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSend hands 10,000 alerts in 100 groups (alertname) to a notifier
// with a routing tree, in batches of 100 as the rule manager sends them:
// "new" stores them for the first time, "update" resends them.
func BenchmarkSend(b *testing.B) {
	alerts := make([]Alert, 0, 10_000)
	for g := range 100 {
		for i := range 100 {
			alerts = append(alerts, Alert{
				Labels: map[string]string{"alertname": fmt.Sprintf("Alert%03d", g), "instance": fmt.Sprintf("host-%03d:9100", i),
					"job": "node", "severity": []string{"critical", "warning"}[i%2]},
				Annotations: map[string]string{"summary": "something is wrong"},
				StartsAt:    t0,
				EndsAt:      t0.Add(time.Hour),
			})
		}
	}
	const config = `
route:
  receiver: default
  group_by: [alertname]
  routes:
  - matchers: [severity="critical", job=~"node|api"]
    receiver: pager
    continue: true
  - matchers: [team="db"]
    receiver: db
receivers:
- name: default
- name: pager
- name: db
`
	send := func(n *Notifier) {
		for i := 0; i < len(alerts); i += 100 {
			n.Send(alerts[i : i+100]...)
		}
	}
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			h := newHarness(b, config)
			b.StartTimer()
			send(h.n)
			b.StopTimer()
			if len(h.n.groups) != 200 {
				b.Fatalf("%d groups", len(h.n.groups))
			}
			h.n.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(alerts)), "ns/alert")
	})
	b.Run("update", func(b *testing.B) {
		h := newHarness(b, config)
		defer h.n.Close()
		send(h.n)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			send(h.n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(alerts)), "ns/alert")
	})
}
