package logindex

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestWriteSearchGet(t *testing.T) {
	now := time.Now().UTC()
	ix, _ := openTest(t, nil)
	write(t, ix, []genRecord{
		{t: now.Add(-3 * time.Second), service: "checkout", sev: plog.SeverityNumberError, body: "connection refused to 10.0.0.1:5432 user=bob", attrs: map[string]any{"user_id": "42", "duration_ms": 250}},
		{t: now.Add(-2 * time.Second), service: "checkout", sev: plog.SeverityNumberInfo, body: "order placed id=7f3e9c2a-1b4d-4e8f-9a6b-0c1d2e3f4a5b", attrs: map[string]any{"user_id": "43"}},
		{t: now.Add(-1 * time.Second), service: "frontend", sev: plog.SeverityNumberWarn, body: "GET /var/log/app.log returned ERR_TIMEOUT", attrs: map[string]any{"duration_ms": 900}},
	})
	flush(t, ix)
	cases := []struct {
		q    string
		want uint64
	}{
		{"", 3},
		{"connection refused", 1},
		{`"connection refused"`, 1},
		{`"refused connection"`, 0},
		{"10.0.0.1", 1},
		{"10.0.*", 1},
		{"service:checkout", 2},
		{"service:checkout severity>=ERROR", 1},
		{"severity>=WARN", 2},
		{"severity:error", 1},
		{"user_id:42", 1},
		{"duration_ms:>100", 2},
		{"duration_ms:>=900", 1},
		{"-service:checkout", 1},
		{"service:checkout OR service:frontend", 3},
		{"(refused OR placed) -bob", 1},
		{"/var/log/*", 1},
		{"err_timeout", 1},
		{"/err_.*/", 1},
		{"7f3e9c2a-1b4d-4e8f-9a6b-0c1d2e3f4a5b", 1},
		{"user=bob", 1},
		{"host.name:host-frontend", 1},
		{"user_id:*", 2},
		{"service:(checkout OR nothing)", 2},
	}
	for _, c := range cases {
		if got := count(t, ix, c.q, time.Time{}, time.Time{}); got != c.want {
			t.Errorf("%q: got %d, want %d", c.q, got, c.want)
		}
	}
	res, err := ix.Search(context.Background(), SearchRequest{Query: "", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 3 || res.Records[0].Service != "frontend" || res.Records[2].Body != "connection refused to 10.0.0.1:5432 user=bob" {
		t.Fatalf("bad order: %+v", res.Records)
	}
	r, err := ix.Get(res.Records[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Severity != "ERROR" || r.Service != "checkout" || !r.Time.Equal(now.Add(-3*time.Second)) {
		t.Fatalf("got %+v", r)
	}
}

func TestNewerShardFormatRefused(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, ix, []genRecord{{t: time.Now(), service: "api", sev: plog.SeverityNumberInfo, body: "hello"}})
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "*", shardDirPrefix+"0"))
	if len(shards) != 1 {
		t.Fatalf("found shards %v", shards)
	}
	sh, err := bleve.Open(shards[0])
	if err != nil {
		t.Fatal(err)
	}
	if f, err := sh.GetInternal([]byte(internalFormat)); err != nil || len(f) != 1 || f[0] != shardFormat {
		t.Fatalf("format of a new shard: %v, %v", f, err)
	}
	if err := sh.SetInternal([]byte(internalFormat), []byte{shardFormat + 1}); err != nil {
		t.Fatal(err)
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	ix, err = Open(dir, nil)
	if err == nil {
		ix.Close()
		t.Fatal("opened an index with a shard of a newer format")
	}
	if want := fmt.Sprintf("shard format version %d", shardFormat+1); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
