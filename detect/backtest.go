package detect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"outpost/internal/atomicfile"
)

// ErrBadInput marks back-test input that cannot be scored; the wrapping error
// names the line. Test with errors.Is.
var ErrBadInput = errors.New("bad back-test input")

// Backtest runs a fresh Detector over a CSV series and writes NAB's result format.
//
// The input has a header whose first two columns are timestamp and value (further
// columns are ignored), then one row per sample in strictly increasing time order.
// Timestamps may be RFC 3339, "2006-01-02 15:04:05[.frac]" (UTC, as in NAB) or Unix
// seconds; values are decimal numbers (NaN is accepted as a missing value). The
// output is the header "timestamp,value,anomaly_score" and one row per input row,
// the timestamp and value echoed exactly as given. The whole input is checked
// before anything is written, so bad input writes nothing.
func Backtest(in io.Reader, out io.Writer, opts Options) error {
	type row struct {
		ts       time.Time
		rawTS    string
		rawValue string
		v        float64
	}
	var rows []row
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
			cols := strings.Split(text, ",")
			if len(cols) < 2 || strings.TrimSpace(cols[0]) != "timestamp" || strings.TrimSpace(cols[1]) != "value" {
				return fmt.Errorf("%w: line 1: want header \"timestamp,value\", got %q", ErrBadInput, text)
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		f := strings.SplitN(text, ",", 3)
		if len(f) < 2 {
			return fmt.Errorf("%w: line %d: want timestamp,value, got %q", ErrBadInput, line, text)
		}
		ts, err := parseTimestamp(strings.TrimSpace(f[0]))
		if err != nil {
			return fmt.Errorf("%w: line %d: cannot parse timestamp %q", ErrBadInput, line, f[0])
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if err != nil {
			return fmt.Errorf("%w: line %d: cannot parse value %q", ErrBadInput, line, f[1])
		}
		if n := len(rows); n > 0 && !ts.After(rows[n-1].ts) {
			return fmt.Errorf("%w: line %d: timestamp %s is not after the previous row's %s (rows must be sorted by time, without duplicates)",
				ErrBadInput, line, f[0], rows[n-1].rawTS)
		}
		rows = append(rows, row{ts, f[0], f[1], v})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read back-test input after line %d: %w", line, err)
	}
	if line == 0 {
		return fmt.Errorf("%w: empty input: want a header \"timestamp,value\" and rows", ErrBadInput)
	}
	if len(rows) == 0 {
		return fmt.Errorf("%w: no rows after the header", ErrBadInput)
	}
	d := NewDetector(opts)
	w := bufio.NewWriter(out)
	buf := make([]byte, 0, 128)
	w.WriteString("timestamp,value,anomaly_score\n")
	for _, r := range rows {
		res := d.Observe(r.ts, r.v)
		buf = append(buf[:0], r.rawTS...)
		buf = append(buf, ',')
		buf = append(buf, r.rawValue...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, res.Score, 'f', -1, 64)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("cannot write back-test output: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write back-test output: %w", err)
	}
	return nil
}

func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e11 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	return time.Time{}, errors.New("unknown timestamp format")
}

// BacktestUsage is the synopsis of "outpost detect backtest".
const BacktestUsage = `outpost detect backtest --csv IN.csv [--out OUT.csv] [--counter]
       outpost detect backtest --query SELECTOR [--start 7d] [--end now] [--url http://127.0.0.1:8080] [--out OUT.csv] [--counter]`

// BacktestMain is "outpost detect backtest": args are the flags after "backtest".
// With --csv it scores one CSV series (NAB's format); with --query it scores the
// stored series a selector matches, read from a running server, writes
// series,timestamp,value,anomaly_score, and lists the anomalous stretches found
// on stderr.
func BacktestMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost detect backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("csv", "", "input CSV file with a header \"timestamp,value\"")
	query := fs.String("query", "", "PromQL series selector of stored series to score, e.g. 'http_server_duration_seconds_count{job=\"checkout\"}'")
	server := fs.String("url", "http://127.0.0.1:8080", "with --query: the Outpost (or Prometheus API) to read the series from")
	startS := fs.String("start", "7d", "with --query: start of the range (RFC 3339, Unix seconds, or a duration before now)")
	endS := fs.String("end", "", "with --query: end of the range (default now)")
	outPath := fs.String("out", "", "output CSV file (default: standard output)")
	counter := fs.Bool("counter", false, "the series is a monotonic counter: judge its rate, treat drops as resets (with --query, names ending in _total, _count, _sum, _bucket are counters anyway)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: "+BacktestUsage)
		fmt.Fprintln(stderr, "Runs Outpost's anomaly detector over a CSV series (writing timestamp,value,anomaly_score) or over stored series.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*in == "") == (*query == "") || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("detect backtest: want either --csv IN.csv or --query SELECTOR, and no other arguments")
	}
	var out bytes.Buffer
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("cannot open back-test input: %w", err)
		}
		defer f.Close()
		if err := Backtest(f, &out, Options{Counter: *counter}); err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
	} else {
		now := time.Now()
		start, err := parseTime(*startS, now)
		if err != nil {
			return fmt.Errorf("invalid --start %q: %w", *startS, err)
		}
		end := now
		if *endS != "" {
			if end, err = parseTime(*endS, now); err != nil {
				return fmt.Errorf("invalid --end %q: %w", *endS, err)
			}
		}
		stretches, err := QueryBacktest{URL: *server, Selector: *query, Start: start, End: end, Counter: *counter}.Run(context.Background(), &out)
		if err != nil {
			return err
		}
		if len(stretches) == 0 {
			fmt.Fprintln(stderr, "no anomalous stretch found")
		}
		for _, s := range stretches {
			fmt.Fprintf(stderr, "%s: anomalous %s – %s, score %.2f: %s\n", s.Series,
				s.From.UTC().Format("2006-01-02 15:04:05"), s.To.UTC().Format("2006-01-02 15:04:05 UTC"), s.MaxScore, s.Explanation)
		}
	}
	if *outPath == "" {
		_, err := stdout.Write(out.Bytes())
		return err
	}
	return atomicfile.WriteFile(*outPath, out.Bytes(), 0o644)
}
