package detect

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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

// BacktestMain is "outpost detect backtest": args are the flags after "backtest".
//
//	outpost detect backtest --csv IN.csv [--out OUT.csv] [--counter]
func BacktestMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost detect backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("csv", "", "input CSV file with a header \"timestamp,value\" (required)")
	outPath := fs.String("out", "", "output CSV file (default: standard output)")
	counter := fs.Bool("counter", false, "the series is a monotonic counter: judge its rate, treat drops as resets")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: outpost detect backtest --csv IN.csv [--out OUT.csv] [--counter]")
		fmt.Fprintln(stderr, "Runs Outpost's anomaly detector over a CSV series and writes timestamp,value,anomaly_score.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("detect backtest: want --csv IN.csv and no other arguments")
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("cannot open back-test input: %w", err)
	}
	defer f.Close()
	var out bytes.Buffer
	if err := Backtest(f, &out, Options{Counter: *counter}); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if *outPath == "" {
		_, err := stdout.Write(out.Bytes())
		return err
	}
	return writeFileAtomic(*outPath, out.Bytes())
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot create back-test output: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write back-test output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write back-test output: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write back-test output: %w", err)
	}
	return nil
}
