package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// benchMetrics is one request of 1,000 gauge points: 10 hosts × 100 series, each
// point with 3 attributes, like a scrape of node-exporter-ish targets.
func benchMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for h := 0; h < 10; h++ {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "node")
		rm.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", h))
		sm := rm.ScopeMetrics().AppendEmpty()
		for m := 0; m < 10; m++ {
			met := sm.Metrics().AppendEmpty()
			met.SetName(fmt.Sprintf("node_metric_%d", m))
			g := met.SetEmptyGauge()
			for p := 0; p < 10; p++ {
				dp := g.DataPoints().AppendEmpty()
				dp.SetTimestamp(1_700_000_000_000_000_000)
				dp.SetDoubleValue(float64(p) * 1.5)
				dp.Attributes().PutStr("cpu", fmt.Sprint(p))
				dp.Attributes().PutStr("mode", "user")
				dp.Attributes().PutStr("device", "sda")
			}
		}
	}
	return md
}

// The store under these benchmarks is real (counters committed to bbolt with
// fsync, grouped); its backends are not configured yet, so the figures are the
// cost of the protocol edge plus the durable counters.

func BenchmarkHTTPMetrics1000Points(b *testing.B) {
	st := newStore(b)
	_, srv := newHTTP(b, st, nil)
	body, _ := pmetricotlp.NewExportRequestFromMetrics(benchMetrics()).MarshalProto()
	client := srv.Client()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(8) // clients in flight per core, so durable commits overlap
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/metrics", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentProto)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkGRPCMetrics1000Points(b *testing.B) {
	st := newStore(b)
	r := NewReceiver(st, nil)
	conn := dialGRPC(b, r, nil)
	client := pmetricotlp.NewGRPCClient(conn)
	req := pmetricotlp.NewExportRequestFromMetrics(benchMetrics())
	b.ReportAllocs()
	b.SetParallelism(8) // clients in flight per core, so durable commits overlap
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Export(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkDecodeMetrics1000Points is the decoding alone, for comparison.
func BenchmarkDecodeMetrics1000Points(b *testing.B) {
	body, _ := pmetricotlp.NewExportRequestFromMetrics(benchMetrics()).MarshalProto()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			b.Fatal(err)
		}
	}
}
