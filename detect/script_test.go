package detect

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the anomaly lines of testdata/*.test with what the detector finds")

// A detector script (testdata/*.test) builds a series, runs a fresh Detector over
// it and checks where it raises alerts. Times are offsets from the series start
// ("7d12h30m"). Commands, one per line ("#" starts a comment):
//
//	series step=5m days=14 level=100 noise=2 daily=20 weekend=0 trend=0 seed=1 [counter]
//	shift at=T by=X          add X to every value from T on (a counter's rate)
//	spike at=T by=X          add X to the one sample at T
//	season at=T daily=A      from T on the daily swing is A
//	reset at=T               a counter restarts from zero at T
//	gap from=T until=T       no samples in [from, until)
//	nan from=T until=T       NaN values in [from, until)
//	learn T                  alerts before T are not judged (the detector is learning)
//	expect from=T until=T    an alert must start in [from, until)
//	anomaly T T              an alert stretch the detector raised (start, end);
//	                         written by -rewrite, compared otherwise
//
// Every expect range must hold the start of an alert, and every alert after the
// learning time must start inside an expect range.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".test"), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptSeries struct {
	step                              time.Duration
	n                                 int
	level, noise, daily, weekend, trd float64
	seed                              uint64
	counter                           bool
}

type span struct{ from, until time.Duration }

type edit struct {
	kind     string
	at, end  time.Duration
	by       float64
	newDaily float64
}

func parseOffset(s string) (time.Duration, error) {
	var total time.Duration
	if i := strings.Index(s, "d"); i >= 0 {
		days, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("bad offset %q", s)
		}
		total = time.Duration(days) * 24 * time.Hour
		s = s[i+1:]
	}
	if s == "" {
		return total, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad offset %q", s)
	}
	return total + d, nil
}

func formatOffset(d time.Duration) string {
	days := d / (24 * time.Hour)
	rest := d - days*24*time.Hour
	s := ""
	if days > 0 {
		s = strconv.Itoa(int(days)) + "d"
	}
	h, m := rest/time.Hour, (rest%time.Hour)/time.Minute
	if h > 0 || m > 0 || s == "" {
		s += fmt.Sprintf("%dh%02dm", h, m)
	}
	return s
}

func runScript(t *testing.T, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var (
		ser     *scriptSeries
		edits   []edit
		expects []span
		learn   time.Duration
		golden  []string
		kept    []string // the script without its anomaly lines, for -rewrite
	)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		text := strings.TrimSpace(line)
		if i := strings.Index(text, "#"); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			kept = append(kept, line)
			continue
		}
		fields := strings.Fields(text)
		args := map[string]string{}
		var flags []string
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				args[k] = v
			} else {
				flags = append(flags, f)
			}
		}
		fail := func(format string, a ...any) {
			t.Fatalf("%s:%d: %s", file, ln, fmt.Sprintf(format, a...))
		}
		num := func(k string, def float64) float64 {
			v, ok := args[k]
			if !ok {
				return def
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				fail("bad %s=%q", k, v)
			}
			return f
		}
		off := func(k string) time.Duration {
			v, ok := args[k]
			if !ok {
				fail("missing %s=", k)
			}
			d, err := parseOffset(v)
			if err != nil {
				fail("%v", err)
			}
			return d
		}
		if fields[0] == "anomaly" {
			golden = append(golden, text)
			continue
		}
		kept = append(kept, line)
		switch fields[0] {
		case "series":
			step, err := time.ParseDuration(args["step"])
			if err != nil {
				fail("bad step: %v", err)
			}
			ser = &scriptSeries{step: step, n: int(num("days", 14) * 24 * float64(time.Hour) / float64(step)),
				level: num("level", 100), noise: num("noise", 1), daily: num("daily", 0), weekend: num("weekend", 0),
				trd: num("trend", 0), seed: uint64(num("seed", 1))}
			for _, f := range flags {
				if f == "counter" {
					ser.counter = true
				}
			}
		case "shift", "spike":
			edits = append(edits, edit{kind: fields[0], at: off("at"), by: num("by", 0)})
		case "season":
			edits = append(edits, edit{kind: "season", at: off("at"), newDaily: num("daily", 0)})
		case "reset":
			edits = append(edits, edit{kind: "reset", at: off("at")})
		case "gap", "nan":
			edits = append(edits, edit{kind: fields[0], at: off("from"), end: off("until")})
		case "learn":
			if len(fields) != 2 {
				fail("want learn T")
			}
			d, err := parseOffset(fields[1])
			if err != nil {
				fail("%v", err)
			}
			learn = d
		case "expect":
			expects = append(expects, span{off("from"), off("until")})
		default:
			fail("unknown command %q", fields[0])
		}
	}
	if ser == nil {
		t.Fatalf("%s: no series", file)
	}

	// Build and run.
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // a Monday
	rng := rand.New(rand.NewPCG(ser.seed, 1))
	d := NewDetector(Options{Counter: ser.counter})
	cum := 0.0
	var got []span
	inAlert := false
	for i := 0; i < ser.n; i++ {
		o := time.Duration(i) * ser.step
		ts := start.Add(o)
		daily := ser.daily
		v := ser.level + ser.trd*float64(i) + ser.noise*rng.NormFloat64()
		skip, isNaN, reset := false, false, false
		for _, e := range edits {
			switch {
			case e.kind == "shift" && o >= e.at:
				v += e.by
			case e.kind == "spike" && o >= e.at && o < e.at+ser.step:
				v += e.by
			case e.kind == "season" && o >= e.at:
				daily = e.newDaily
			case e.kind == "reset" && o >= e.at && o < e.at+ser.step:
				reset = true
			case e.kind == "gap" && o >= e.at && o < e.end:
				skip = true
			case e.kind == "nan" && o >= e.at && o < e.end:
				isNaN = true
			}
		}
		tod := float64(o%(24*time.Hour)) / float64(24*time.Hour)
		v += daily * math.Sin(2*math.Pi*(tod-0.25))
		if wd := ts.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v += ser.weekend
		}
		if ser.counter {
			if reset {
				cum = 0
			}
			cum += math.Max(v, 0) * ser.step.Seconds()
			v = cum
		}
		if skip {
			continue
		}
		if isNaN {
			v = math.NaN()
		}
		r := d.Observe(ts, v)
		if r.Skipped {
			continue
		}
		alert := r.Score >= AlertScore
		switch {
		case alert && !inAlert:
			if n := len(got); n > 0 && o-got[n-1].until <= time.Hour {
				got[n-1].until = o // one stretch: the alert paused for less than an hour
			} else {
				got = append(got, span{o, o})
			}
		case alert:
			got[len(got)-1].until = o
		}
		inAlert = alert
	}

	var lines []string
	for _, g := range got {
		lines = append(lines, "anomaly "+formatOffset(g.from)+" "+formatOffset(g.until))
	}
	if *rewrite {
		out := strings.TrimRight(strings.Join(kept, "\n"), "\n") + "\n"
		if len(lines) > 0 {
			out += strings.Join(lines, "\n") + "\n"
		}
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if strings.Join(lines, "\n") != strings.Join(golden, "\n") {
		t.Errorf("alerts changed (run with -rewrite if intended):\ngot:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(golden, "\n"))
	}
	for _, e := range expects {
		found := false
		for _, g := range got {
			if g.from >= e.from && g.from < e.until {
				found = true
			}
		}
		if !found {
			t.Errorf("no alert starts in [%s, %s); alerts: %v", formatOffset(e.from), formatOffset(e.until), lines)
		}
	}
	for _, g := range got {
		if g.from < learn {
			continue
		}
		ok := false
		for _, e := range expects {
			if g.from >= e.from && g.from < e.until {
				ok = true
			}
		}
		if !ok {
			t.Errorf("unexpected alert %s–%s", formatOffset(g.from), formatOffset(g.until))
		}
	}
}
