package tsdb

import (
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// A small node_exporter-like workload for benchmarks: hosts of about 300 series
// each (CPU and network counters, memory and filesystem gauges in multiples of
// 1024 or 4096, load and temperature gauges with a few decimals, constants, and
// request-duration histograms), scraped every 15 s at a fixed offset per host.
// Values are pure functions of (host, series, step).

const nodeStepMs = 15_000

type nodeKind uint8

const (
	nodeGauge nodeKind = iota
	nodeCounter
	nodeHistogram // one OTLP histogram point: 12 buckets, sum and count
)

type nodeSeries struct {
	name   string
	kind   nodeKind
	attrs  [][2]string
	base   float64
	amp    float64
	noise  float64
	rate   float64
	dec    int     // decimals kept
	q      float64 // if > 0, values are multiples of q
	period float64 // steps
	phase  float64
	id     uint64
}

type nodeHost struct {
	name, instance string
	offsetMs       int64
	series         []nodeSeries
}

func nodeMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func nodeU01(a, b, c uint64) float64 {
	return float64(nodeMix(a^nodeMix(b^nodeMix(c)))>>11) / (1 << 53)
}

func nodeRound(v float64, dec int, q float64) float64 {
	if q > 0 {
		return math.Round(v/q) * q
	}
	p := math.Pow10(dec)
	return math.Round(v*p) / p
}

var nodeBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newNodeHost(h int) *nodeHost {
	host := &nodeHost{name: fmt.Sprintf("host-%03d", h), offsetMs: int64(nodeU01(uint64(h), 0, 99) * nodeStepMs)}
	host.instance = host.name + ":9100"
	r := func(k int) float64 { return nodeU01(uint64(h), uint64(k), 7) }
	busy := 0.2 + 0.6*r(1)
	add := func(s nodeSeries) {
		k := len(host.series)
		s.id = uint64(h)<<20 | uint64(k)
		s.period = 240 * (1 + 4*r(k+10))
		s.phase = 2 * math.Pi * r(k+1000)
		host.series = append(host.series, s)
	}
	a := func(k, v string) [2]string { return [2]string{k, v} }
	for cpu := 0; cpu < 4; cpu++ {
		for i, m := range []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"} {
			add(nodeSeries{name: "node_cpu_seconds", kind: nodeCounter, rate: 15 * busy / float64(i+1), dec: 2, base: 1e5 * r(cpu*8+i), attrs: [][2]string{a("cpu", strconv.Itoa(cpu)), a("mode", m)}})
		}
		add(nodeSeries{name: "node_cpu_scaling_frequency_hertz", base: 2.4e9, amp: 4e8, noise: 8e8, q: 1000, attrs: [][2]string{a("cpu", strconv.Itoa(cpu))}})
	}
	for i := 0; i < 28; i++ {
		add(nodeSeries{name: fmt.Sprintf("node_memory_m%d_bytes", i), base: 32 << 30 * r(i+40), amp: 1 << 28, noise: 1 << 24, q: 1024})
	}
	for _, d := range []string{"nvme0n1", "nvme1n1", "sda"} {
		for i, n := range []string{"reads_completed", "writes_completed", "read_bytes", "written_bytes", "io_time_seconds", "read_time_seconds", "write_time_seconds", "discards_completed"} {
			dec := 0
			if i >= 4 && i < 7 {
				dec = 3
			}
			add(nodeSeries{name: "node_disk_" + n, kind: nodeCounter, rate: math.Pow(10, float64(i%4)) * r(i+60), dec: dec, base: 1e6 * r(i+70), attrs: [][2]string{a("device", d)}})
		}
		add(nodeSeries{name: "node_disk_io_now", base: 1, amp: 1, noise: 2, attrs: [][2]string{a("device", d)}})
	}
	for fi, mp := range []string{"/", "/boot", "/var", "/home", "/run"} {
		size := 1e9 * math.Pow(10, float64(fi%3))
		at := [][2]string{a("device", "/dev/sd"+strconv.Itoa(fi)), a("fstype", "ext4"), a("mountpoint", mp)}
		add(nodeSeries{name: "node_filesystem_size_bytes", base: size, q: 4096, attrs: at})
		add(nodeSeries{name: "node_filesystem_free_bytes", base: size / 2, amp: size / 100, noise: size / 1e4, q: 4096, attrs: at})
		add(nodeSeries{name: "node_filesystem_avail_bytes", base: size / 3, amp: size / 100, noise: size / 1e4, q: 4096, attrs: at})
		add(nodeSeries{name: "node_filesystem_files", base: math.Round(size / 16384), attrs: at})
		add(nodeSeries{name: "node_filesystem_files_free", base: math.Round(size / 32768), amp: size / 1e7, noise: size / 1e9, attrs: at})
		add(nodeSeries{name: "node_filesystem_readonly", attrs: at})
		add(nodeSeries{name: "node_filesystem_device_error", attrs: at})
	}
	for _, d := range []string{"docker0", "eth0", "eth1", "lo"} {
		for i, n := range []string{"receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets", "receive_errs", "transmit_errs", "receive_drop", "transmit_drop"} {
			add(nodeSeries{name: "node_network_" + n, kind: nodeCounter, rate: 1e6 / math.Pow(10, float64(i)), base: 1e9 * r(i+80), attrs: [][2]string{a("device", d)}})
		}
		add(nodeSeries{name: "node_network_up", base: 1, attrs: [][2]string{a("device", d)}})
		add(nodeSeries{name: "node_network_mtu_bytes", base: 1500, attrs: [][2]string{a("device", d)}})
		add(nodeSeries{name: "node_network_speed_bytes", base: 1.25e9, attrs: [][2]string{a("device", d)}})
	}
	for i := 0; i < 29; i++ {
		add(nodeSeries{name: fmt.Sprintf("node_netstat_c%d", i), kind: nodeCounter, rate: math.Pow(10, float64(i%5)) * busy, base: 1e7 * r(i+90)})
	}
	for i := 0; i < 20; i++ {
		add(nodeSeries{name: fmt.Sprintf("node_gauge_g%d", i), base: 100 * r(i+100), amp: 20, noise: 5, dec: i % 3})
	}
	for i := 1; i <= 6; i++ {
		add(nodeSeries{name: "node_hwmon_temp_celsius", base: 40 + 20*busy, amp: 5, noise: 2, dec: 1, attrs: [][2]string{a("chip", "coretemp"), a("sensor", "temp"+strconv.Itoa(i))}})
	}
	for _, c := range []string{"arp", "bcache", "conntrack", "cpu", "cpufreq", "diskstats", "filefd", "filesystem", "hwmon", "loadavg", "meminfo", "netdev", "netstat", "sockstat", "vmstat"} {
		add(nodeSeries{name: "node_scrape_collector_duration_seconds", base: 0.002 + 0.01*r(len(c)), amp: 0.001, noise: 0.002, dec: 6, attrs: [][2]string{a("collector", c)}})
		add(nodeSeries{name: "node_scrape_collector_success", base: 1, attrs: [][2]string{a("collector", c)}})
	}
	for i, hd := range []string{"/api/v1/orders", "/api/v1/users", "/healthz"} {
		add(nodeSeries{name: "http_request_duration_seconds", kind: nodeHistogram, rate: 15 * float64(40/(i+1)), attrs: [][2]string{a("handler", hd), a("method", "GET")}})
	}
	return host
}

// value returns the series' value at a step; for histograms bucket b (len
// nodeBuckets: +Inf, -1: sum, -2: count).
func (s *nodeSeries) value(step int64, b int) float64 {
	x := float64(step)
	switch s.kind {
	case nodeCounter:
		w := 2 * math.Pi / s.period
		v := s.base + s.rate*(x+0.5/w*(math.Sin(w*x+s.phase)-math.Sin(s.phase))) + 0.4*s.rate*nodeU01(s.id, uint64(step), 2)
		return nodeRound(v, s.dec, s.q)
	case nodeHistogram:
		count := math.Floor(s.rate*x + s.rate*nodeU01(s.id, uint64(step), 3))
		switch b {
		case -1:
			return nodeRound(count*0.137, 3, 0)
		case -2:
			return count
		}
		share := math.Min(1, float64(b+1)/float64(len(nodeBuckets)-2))
		return math.Floor(count * share)
	}
	v := s.base + s.amp*math.Sin(2*math.Pi*x/s.period+s.phase) + s.noise*(nodeU01(s.id, uint64(step), 1)-0.5)
	if v < 0 && s.base >= 0 {
		v = 0
	}
	return nodeRound(v, s.dec, s.q)
}

// promSeries lists the host's Prometheus series (histograms expanded) with a
// function giving each one's value at a step.
func (h *nodeHost) promSeries() (lsets []labels.Labels, values []func(step int64) float64) {
	for i := range h.series {
		s := &h.series[i]
		base := func(name string, extra ...string) labels.Labels {
			b := labels.NewScratchBuilder(8)
			b.Add("__name__", name)
			b.Add("job", "node")
			b.Add("instance", h.instance)
			b.Add("host", h.name)
			for _, at := range s.attrs {
				b.Add(at[0], at[1])
			}
			for j := 0; j+1 < len(extra); j += 2 {
				b.Add(extra[j], extra[j+1])
			}
			b.Sort()
			return b.Labels()
		}
		switch s.kind {
		case nodeGauge:
			lsets = append(lsets, base(s.name))
			values = append(values, func(step int64) float64 { return s.value(step, 0) })
		case nodeCounter:
			lsets = append(lsets, base(s.name+"_total"))
			values = append(values, func(step int64) float64 { return s.value(step, 0) })
		case nodeHistogram:
			for b := 0; b <= len(nodeBuckets); b++ {
				le := "+Inf"
				if b < len(nodeBuckets) {
					le = formatFloat(nodeBuckets[b])
				}
				lsets = append(lsets, base(s.name+"_bucket", "le", le))
				values = append(values, func(step int64) float64 { return s.value(step, b) })
			}
			lsets = append(lsets, base(s.name+"_sum"))
			values = append(values, func(step int64) float64 { return s.value(step, -1) })
			lsets = append(lsets, base(s.name+"_count"))
			values = append(values, func(step int64) float64 { return s.value(step, -2) })
		}
	}
	return lsets, values
}

// appendOTLP adds the host's points at one step to md as one resource, the way an
// OpenTelemetry collector forwards a node_exporter scrape.
func (h *nodeHost) appendOTLP(md pmetric.Metrics, step, t0 int64) {
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("job", "node")
	ra.PutStr("instance", h.instance)
	ra.PutStr("host", h.name)
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.Timestamp((t0 + step*nodeStepMs + h.offsetMs) * 1e6)
	start := pcommon.Timestamp(t0 * 1e6)
	for i := range h.series {
		s := &h.series[i]
		m := ms.AppendEmpty()
		m.SetName(s.name)
		putAttrs := func(attrs pcommon.Map) {
			for _, at := range s.attrs {
				attrs.PutStr(at[0], at[1])
			}
		}
		switch s.kind {
		case nodeGauge:
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			putAttrs(dp.Attributes())
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(s.value(step, 0))
		case nodeCounter:
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := sum.DataPoints().AppendEmpty()
			putAttrs(dp.Attributes())
			dp.SetTimestamp(ts)
			dp.SetStartTimestamp(start)
			dp.SetDoubleValue(s.value(step, 0))
		case nodeHistogram:
			hist := m.SetEmptyHistogram()
			hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := hist.DataPoints().AppendEmpty()
			putAttrs(dp.Attributes())
			dp.SetTimestamp(ts)
			dp.SetStartTimestamp(start)
			dp.ExplicitBounds().FromRaw(nodeBuckets)
			var prev float64
			for b := 0; b <= len(nodeBuckets); b++ {
				c := s.value(step, b)
				dp.BucketCounts().Append(uint64(c - prev))
				prev = c
			}
			dp.SetCount(uint64(s.value(step, -2)))
			dp.SetSum(s.value(step, -1))
		}
	}
}
