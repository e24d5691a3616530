package logindex

import (
	"context"
	"fmt"
	"os"
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

// TestOlderShardFormatRebuilt checks that shards of an older format are
// replaced when their partition opens and filled again from the record log, so
// that searches answer as before; also when the process stopped in the middle
// of a rebuild (the old shard renamed, the new one not made yet). The old
// shards here hold only their format key: whatever they held, the answers must
// come from the record log.
func TestOlderShardFormatRebuilt(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var recs []genRecord
	for i := range 3000 {
		recs = append(recs, genRecord{t: now.Add(-time.Duration(i) * time.Millisecond), service: genServices[i%3], sev: genLevels[i%len(genLevels)],
			body: fmt.Sprintf("request %d took %dms", i, i%97)})
	}
	write(t, ix, recs)
	flush(t, ix)
	want := map[string]uint64{}
	queries := []string{"", "request", `"took 5ms"`, "service:" + genServices[1], "severity>=WARN request"}
	for _, q := range queries {
		want[q] = count(t, ix, q, now.Add(-time.Hour), now.Add(time.Hour))
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "*", shardDirPrefix+"*"))
	if len(shards) < 2 {
		t.Fatalf("found shards %v", shards)
	}
	for _, stopped := range []bool{false, true} {
		for _, path := range shards {
			// An empty shard of format 2 in place of each.
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			if err := createShard(path); err != nil {
				t.Fatal(err)
			}
			sh, err := bleve.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := sh.SetInternal([]byte(internalFormat), []byte{2}); err != nil {
				t.Fatal(err)
			}
			if err := sh.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if stopped {
			// The first shard was renamed for its rebuild when the process
			// stopped.
			if err := os.Rename(shards[0], shards[0]+oldShardSuffix); err != nil {
				t.Fatal(err)
			}
		}
		ix, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		flush(t, ix)
		for _, q := range queries {
			if got := count(t, ix, q, now.Add(-time.Hour), now.Add(time.Hour)); got != want[q] {
				t.Errorf("stopped %v: %q: %d records after the rebuild, %d before", stopped, q, got, want[q])
			}
		}
		if err := ix.checkConsistency(); err != nil {
			t.Error(err)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		if old, _ := filepath.Glob(filepath.Join(dir, "*", "*"+oldShardSuffix)); len(old) > 0 {
			t.Errorf("stopped %v: %v left behind", stopped, old)
		}
		for _, path := range shards {
			sh, err := bleve.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := sh.GetInternal([]byte(internalFormat))
			sh.Close()
			if err != nil || len(f) != 1 || f[0] != shardFormat {
				t.Errorf("stopped %v: %s has format %v after the rebuild", stopped, path, f)
			}
		}
	}
}
