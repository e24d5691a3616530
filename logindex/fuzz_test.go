package logindex

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

var fuzzSeeds = []string{
	"", "error", `"connection refused"`, "service:checkout severity>=ERROR \"connection refused\" user_id:42",
	"a OR b", "(a OR b) -c", "NOT a", "fail*", "/err(or)?/", "duration_ms:>250", "time:>=2026-01-02T15:04:05Z",
	"service:(a OR b)", `path:\/var\/log`, "10.0.0.1", "/var/log", "severity<=3", "-", "((((", `"`, "a:", ":b",
	"severity>WARN", "x:*", "*", "*:*", "body:*", "-*", "error *", "* OR a", "?", `\`, "a AND AND b", "OR", "||", "&&", "!a", "+a", "k:/[/",
}

// FuzzParseQuery parses arbitrary queries: a parse either fails with a
// *QueryError or yields a query that builds a Bleve query, matches records and
// runs against a small index without panicking.
func FuzzParseQuery(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	var (
		once sync.Once
		ix   *Index
		dir  string
	)
	f.Cleanup(func() {
		if ix != nil {
			ix.Close()
		}
		if dir != "" {
			os.RemoveAll(dir)
		}
	})
	rec := Record{Service: "checkout", Body: "connection refused to 10.0.0.1:5432 user=bob /var/log/x", Severity: "ERROR", SeverityNumber: 17,
		Attributes: []Attr{{Key: "user_id", Value: "42", Type: "Str"}, {Key: "duration_ms", Value: "250", Type: "Int"}}, Time: time.Now()}
	f.Fuzz(func(t *testing.T, s string) {
		once.Do(func() {
			var err error
			dir, err = os.MkdirTemp("", "logindex-fuzz")
			if err != nil {
				t.Fatal(err)
			}
			ix, err = Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = ix.WriteLogs(context.Background(), makeLogs([]genRecord{{t: time.Now(), service: "checkout", sev: plog.SeverityNumberError, body: rec.Body, attrs: map[string]any{"user_id": "42", "duration_ms": 250}}}))
			if err != nil {
				t.Fatal(err)
			}
			if err := ix.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		q, err := ParseQuery(s)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Msg == "" {
				t.Fatalf("%q: error %v is not a *QueryError with a message", s, err)
			}
			return
		}
		_ = newBlockPlan(q)
		_ = q.Matches(&rec)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := ix.Search(ctx, SearchRequest{Query: s, Limit: 5})
		if err != nil {
			var qe *QueryError
			if errors.As(err, &qe) {
				t.Fatalf("%q parsed but Search says %v", s, err)
			}
			if !strings.HasPrefix(err.Error(), "cannot ") {
				t.Fatalf("%q: unclear error %v", s, err)
			}
			return
		}
		// The index and the matcher agree on the one record.
		if (res.Total == 1) != q.Matches(&rec) {
			t.Fatalf("%q: index total %d, matcher %v", s, res.Total, q.Matches(&rec))
		}
	})
}

// FuzzDecodeRecord decodes arbitrary bytes as a record: an error or a record,
// never a panic; a decoded record encodes back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	r := recordOf(genRecord{t: time.Unix(1700000000, 5), service: "s", sev: plog.SeverityNumberWarn, body: "hello", attrs: map[string]any{"k": "v", "n": 3}})
	f.Add(appendRecord(nil, &r))
	f.Add([]byte{recordVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := decodeRecord(b, &r); err != nil {
			if !errors.Is(err, errShortRecord) {
				t.Fatalf("error %v does not wrap errShortRecord", err)
			}
			return
		}
		if got := appendRecord(nil, &r); string(got) != string(b) {
			// Varints have one canonical encoding only when minimal; accept a
			// different but equivalent encoding if it decodes to the same record.
			var r2 Record
			if err := decodeRecord(got, &r2); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}
