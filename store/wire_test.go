package store

import (
	"bytes"
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"outpost/internal/otlpwire"
)

// wireBackend is a fakeBackend that also takes requests on the wire.
type wireBackend struct {
	fakeBackend
	bodies [][]byte
}

func (w *wireBackend) WriteMetricsWire(_ context.Context, m *otlpwire.Metrics) (int64, string, error) {
	w.bodies = append(w.bodies, bytes.Clone(m.Body))
	return 1, "one refused", nil
}

// tapRecorder counts the data points it is shown.
type tapRecorder struct{ points int }

func (r *tapRecorder) TapMetrics(md pmetric.Metrics) { r.points += md.DataPointCount() }
func (r *tapRecorder) TapLogs(plog.Logs)             {}
func (r *tapRecorder) TapTraces(ptrace.Traces)       {}

// blindTap reads no metrics.
type blindTap struct{ tapRecorder }

func (*blindTap) IgnoresMetrics() {}

func wireMetrics(t *testing.T, services ...string) *otlpwire.Metrics {
	md := pmetric.NewMetrics()
	for _, svc := range services {
		metrics(svc, 2, 0).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	for i := range md.ResourceMetrics().Len() { // the empty histogram is not for the wire
		md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics().RemoveIf(func(m pmetric.Metric) bool { return m.Type() != pmetric.MetricTypeGauge })
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := otlpwire.Scan(body, 128)
	if !ok {
		t.Fatal("Scan refused the request")
	}
	return m
}

// TestConsumeMetricsWire: a request read on the wire reaches a backend that
// takes it so, as it came, and one that does not decoded; it is counted by
// service (the unnamed one as UnknownService); taps that read metrics see it
// decoded, blind ones are not shown it.
func TestConsumeMetricsWire(t *testing.T) {
	var order []string
	wb := &wireBackend{fakeBackend: fakeBackend{name: "metrics", order: &order}}
	tap, blind := &tapRecorder{}, &blindTap{}
	s := openT(t, t.TempDir(), &Options{
		OpenMetrics: func(string) (MetricsBackend, error) { return wb, nil },
		Taps:        []Tap{tap, blind},
	})
	ctx := context.Background()
	m := wireMetrics(t, "a", "", "a")
	r := must(t)(s.ConsumeMetricsWire(ctx, m))
	if r.Accepted != 5 || r.Rejected != 1 || r.Reason != "one refused" {
		t.Errorf("result %+v, want 5 accepted, 1 refused", r)
	}
	if len(wb.bodies) != 1 || !bytes.Equal(wb.bodies[0], m.Body) || wb.got != 0 {
		t.Errorf("backend got %d bodies on the wire, %d decoded batches", len(wb.bodies), wb.got)
	}
	if tap.points != 6 || blind.points != 0 {
		t.Errorf("taps saw %d and %d points, want 6 and 0", tap.points, blind.points)
	}
	svcs := map[string]uint64{}
	for _, sv := range s.Services() {
		svcs[sv.Name] = sv.Counts.Points
	}
	if svcs["a"] != 4 || svcs[UnknownService] != 2 {
		t.Errorf("services %v, want a 4, %s 2", svcs, UnknownService)
	}
	s.Close()

	plain := &fakeBackend{name: "metrics", order: &order}
	s = openT(t, t.TempDir(), &Options{OpenMetrics: func(string) (MetricsBackend, error) { return plain, nil }})
	defer s.Close()
	if r := must(t)(s.ConsumeMetricsWire(ctx, wireMetrics(t, "b"))); r.Accepted != 2 || plain.got != 1 {
		t.Errorf("result %+v, backend called %d times; want 2 accepted, once", r, plain.got)
	}
}
