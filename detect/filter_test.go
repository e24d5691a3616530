package detect

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"outpost/tsdb"
)

func TestSplitSelectors(t *testing.T) {
	for in, want := range map[string]string{
		``:                                      ``,
		`a`:                                     `a`,
		` a , b `:                               `a|b`,
		`a{x="1",y="2"}, b`:                     `a{x="1",y="2"}|b`,
		`{job="a,b", path=~"x\",{"},c{d='}'}`:   `{job="a,b", path=~"x\",{"}|c{d='}'}`,
		`http_requests_total{code!~"2..",,},,z`: `http_requests_total{code!~"2..",,}|z`,
	} {
		if got := strings.Join(SplitSelectors(in), "|"); got != want {
			t.Errorf("SplitSelectors(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilterKeepsMatchingSeries(t *testing.T) {
	if _, err := NewFilter([]string{`up{`}); err == nil {
		t.Fatal("a broken selector was accepted")
	}
	if _, err := NewFilter(nil); err == nil {
		t.Fatal("no selector was accepted")
	}
	f, err := NewFilter(SplitSelectors(`latency_seconds{job="checkout"}, {job="db", mode!="idle"}`))
	if err != nil {
		t.Fatal(err)
	}
	series := []labels.Labels{
		labels.FromStrings("__name__", "latency_seconds", "job", "checkout"),        // kept
		labels.FromStrings("__name__", "latency_seconds", "job", "web"),             // no
		labels.FromStrings("__name__", "cpu", "job", "db", "mode", "user"),          // kept
		labels.FromStrings("__name__", "cpu", "job", "db", "mode", "idle"),          // no
		labels.FromStrings("__name__", "memory", "job", "db"),                       // kept (mode is "")
		labels.FromStrings("__name__", "latency_seconds_bucket", "job", "checkout"), // no
	}
	var got []string
	obs := f.Wrap(func(batch []tsdb.ObservedSample) {
		for _, s := range batch {
			got = append(got, s.Labels.Get("__name__")+"/"+s.Labels.Get("job"))
		}
	})
	for round := range 2 { // the second round answers from memory
		got = nil
		var batch []tsdb.ObservedSample
		for i, ls := range series {
			batch = append(batch, tsdb.ObservedSample{Labels: ls, Ref: uint64(i + 1), T: int64(round), V: 1})
		}
		obs(batch)
		if strings.Join(got, " ") != "latency_seconds/checkout cpu/db memory/db" {
			t.Fatalf("round %d kept %v", round, got)
		}
	}
	called := false
	f.Wrap(func([]tsdb.ObservedSample) { called = true })([]tsdb.ObservedSample{{Labels: series[1], Ref: 2}})
	if called {
		t.Error("a batch with nothing kept reached the detector")
	}
}
