package traceindex

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The crash test runs the test binary again as a child that writes requests and
// prints "ack <round> <n>" after request n of round returned; the parent kills it
// with SIGKILL mid-stream, reopens the directory and checks that every span of
// every acknowledged request is there.

const crashChildEnv = "TRACEINDEX_CRASH_CHILD" // "<dir> <round>"

// crashRequest is request n of round: deterministic, so the parent can rebuild it.
func crashRequest(round, n int) ptrace.Traces {
	w := newWorkload(uint64(round*1_000_000 + n))
	td, _ := w.request(200, benchNow.Add(-time.Hour).UnixNano()+int64(n)*int64(time.Second))
	return td
}

func crashOptions() *Options {
	return &Options{Now: func() time.Time { return benchNow }, Logger: slog.New(slog.DiscardHandler)}
}

func crashChild() {
	var (
		dir   string
		round int
	)
	if _, err := fmt.Sscan(os.Getenv(crashChildEnv), &dir, &round); err != nil {
		fmt.Fprintln(os.Stderr, "bad", crashChildEnv, err)
		os.Exit(2)
	}
	ix, err := Open(dir, crashOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for n := 0; ; n++ {
		if _, _, err := ix.WriteTraces(context.Background(), crashRequest(round, n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "ack %d %d\n", round, n)
		out.Flush()
	}
}

func TestCrashKeepsAcknowledgedSpans(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	acked := map[int]int{} // round -> requests acknowledged
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", crashChildEnv, dir, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		acked[round] = 0
		kill := 20 + 15*round // requests to see acknowledged before the kill
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				t.Fatalf("child said %q", sc.Text())
			}
			n, _ := strconv.Atoi(f[2])
			acked[round] = n + 1
			if acked[round] >= kill {
				break
			}
		}
		cmd.Process.Kill() // SIGKILL, mid-write of the next request
		// Acknowledgements already in the pipe count too.
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 {
				n, _ := strconv.Atoi(f[2])
				acked[round] = n + 1
			}
		}
		cmd.Wait()
		if acked[round] < kill {
			t.Fatalf("round %d: child stopped after %d requests: %s", round, acked[round], stderr.String())
		}
	}

	ix, err := Open(dir, crashOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Check(context.Background()); err != nil {
		t.Fatalf("consistency after crashes: %v", err)
	}
	spans := 0
	for round, n := range acked {
		for i := 0; i < n; i++ {
			td := crashRequest(round, i)
			got := map[string]bool{}
			rss := td.ResourceSpans()
			for r := 0; r < rss.Len(); r++ {
				sp := rss.At(r).ScopeSpans().At(0).Spans()
				for k := 0; k < sp.Len(); k++ {
					id := sp.At(k).TraceID()
					if _, done := got[id.String()]; !done {
						got[id.String()] = true
						stored, err := ix.Trace(context.Background(), id)
						if err != nil {
							t.Fatalf("round %d request %d trace %v: %v", round, i, id, err)
						}
						for sid := range spanIDs(stored) {
							got[sid.String()] = true
						}
					}
					if !got[sp.At(k).SpanID().String()] {
						t.Fatalf("round %d request %d: span %v of trace %v lost", round, i, sp.At(k).SpanID(), id)
					}
				}
			}
			spans += td.SpanCount()
		}
	}
	t.Logf("%d acknowledged requests in 3 rounds, %d spans, all present", acked[0]+acked[1]+acked[2], spans)
}
