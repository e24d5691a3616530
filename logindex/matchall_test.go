package logindex

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMatchAllParse checks which queries parse to "match all" (the empty
// query's tree), which stay wildcards, and that negating a match-all is refused.
func TestMatchAllParse(t *testing.T) {
	parse := func(s string) *Query {
		t.Helper()
		q, err := ParseQuery(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return q
	}
	empty := parse("")
	for _, s := range []string{
		"*", " * ", "**", "*:*", "body:*", "_msg:*", "message:*", "(*)", "body:(*)", "+*",
		"* *", "* AND *:*", "* OR error", "error OR (* OR x)", "* || service:api",
	} {
		if q := parse(s); !reflect.DeepEqual(q.root, empty.root) {
			t.Errorf("%q parses to %#v, want match-all like the empty query", s, q.root)
		}
	}
	// A match-all is dropped from an AND.
	for s, same := range map[string]string{
		"error *":                      "error",
		"* error":                      "error",
		"error AND *:*":                "error",
		"* -service:api":               "-service:api",
		"service:api * severity>=WARN": "service:api severity>=WARN",
		"(a OR b) * c":                 "(a OR b) c",
	} {
		if a, b := parse(s).root, parse(same).root; !reflect.DeepEqual(a, b) {
			t.Errorf("%q parses to %#v, want the same as %q: %#v", s, a, same, b)
		}
	}
	// Real wildcards stay wildcards.
	for s, pat := range map[string]string{
		"foo*":       "foo.*",
		"*foo":       ".*foo",
		"FOO*":       "foo.*",
		"f*o":        "f.*o",
		"?":          ".",
		"*?":         ".*.",
		"body:fo*":   "fo.*",
		`\**`:        `\*.*`,
		"service:*":  ".*",
		"service:**": ".*",
		"user_id:*":  ".*",
		"body:*:*":   ".*:.*",
	} {
		m, ok := parse(s).root.(*matchNode)
		if !ok || m.kind != kindWildcard || m.value != pat {
			t.Errorf("%q parses to %#v, want a wildcard %q", s, parse(s).root, pat)
		}
	}
	// Negating a match-all is an error: it could only ever match nothing.
	for _, s := range []string{"-*", "NOT *", "!*", "-*:*", "-body:*", "NOT (*)", "NOT (* OR a)", "a -*", "a OR NOT *", "NOT -*", "-()"} {
		_, err := ParseQuery(s)
		var qe *QueryError
		if !errors.As(err, &qe) || !strings.Contains(qe.Msg, "match-all") {
			t.Errorf("%q: got %v, want a *QueryError about negating a match-all", s, err)
		}
	}
	// Negating a wildcard that is not a match-all is fine.
	for _, s := range []string{"-foo*", "NOT service:*", "-?", "-*foo"} {
		if _, err := ParseQuery(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// TestMatchAllResults checks that * answers exactly what the empty query
// answers in Search, Histogram, Facets and Tail, including records whose body
// has no words, and that foo* still searches as a wildcard.
func TestMatchAllResults(t *testing.T) {
	ix, _ := openTest(t, nil)
	tails := map[string]*Tail{}
	for _, s := range []string{"", "*", "*:*", "body:*", "foo*"} {
		tl, err := ix.Tail(s)
		if err != nil {
			t.Fatal(err)
		}
		defer tl.Close()
		tails[s] = tl
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	bodies := []string{"foo", "foobar baz", "other", "", "---", "error foo", "x:y", "FOOD", "afoo"}
	var recs []genRecord
	for i := 0; i < 45; i++ {
		recs = append(recs, genRecord{t: base.Add(time.Duration(i) * time.Minute), service: genServices[i%3],
			sev: genLevels[i%len(genLevels)], body: bodies[i%len(bodies)], attrs: map[string]any{"k": "v"}})
	}
	write(t, ix, recs)
	flush(t, ix)
	ctx := context.Background()
	start, end := base.Add(-time.Minute), base.Add(time.Hour)

	wantFoo := uint64(0)
	for _, g := range recs {
		switch g.body {
		case "foo", "foobar baz", "error foo", "FOOD":
			wantFoo++
		}
	}
	if n := count(t, ix, "foo*", time.Time{}, time.Time{}); n != wantFoo {
		t.Errorf("foo*: %d, want %d", n, wantFoo)
	}
	if n, want := count(t, ix, "error *", time.Time{}, time.Time{}), count(t, ix, "error", time.Time{}, time.Time{}); n != want || n == 0 {
		t.Errorf("error *: %d, want %d (error)", n, want)
	}

	all := uint64(len(recs))
	eh, err := ix.Histogram(ctx, HistogramRequest{Start: start, End: end, Step: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ef, err := ix.Facets(ctx, FacetsRequest{Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if eh.Total != all || ef.Total != all {
		t.Fatalf("empty query: histogram %d, facets %d, want %d", eh.Total, ef.Total, all)
	}
	for _, s := range []string{"", "*", "*:*", "**", "body:*", "* OR foo"} {
		if n := count(t, ix, s, time.Time{}, time.Time{}); n != all {
			t.Errorf("search %q: %d, want %d", s, n, all)
		}
		if n := count(t, ix, s, start, end); n != all {
			t.Errorf("search %q in range: %d, want %d", s, n, all)
		}
		h, err := ix.Histogram(ctx, HistogramRequest{Query: s, Start: start, End: end, Step: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(h, eh) {
			t.Errorf("histogram %q: %+v, want %+v", s, h, eh)
		}
		f, err := ix.Facets(ctx, FacetsRequest{Query: s, Start: start, End: end})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, ef) {
			t.Errorf("facets %q: %+v, want %+v", s, f, ef)
		}
	}
	for _, s := range []string{"-*", "NOT *"} {
		_, err := ix.Search(ctx, SearchRequest{Query: s})
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("search %q: %v, want a *QueryError", s, err)
		}
		if _, err := ix.Tail(s); !errors.As(err, &qe) {
			t.Errorf("tail %q: %v, want a *QueryError", s, err)
		}
	}

	// Tails: the match-all ones see every record, foo* only its matches.
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for s, tl := range tails {
		want := all
		if s == "foo*" {
			want = wantFoo
		}
		var got uint64
		for got < want && tl.Next(tctx) {
			got++
		}
		if got != want {
			t.Errorf("tail %q: %d records, want %d (%v)", s, got, want, tl.Err())
		}
	}
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if tails["foo*"].Next(short) {
		t.Errorf("tail foo*: unexpected record %q", tails["foo*"].Record().Body)
	}
}
