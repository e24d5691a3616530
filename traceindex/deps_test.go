package traceindex

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestDependencies(t *testing.T) {
	ix := openTest(t, &Options{PartitionDuration: time.Hour})
	ctx := context.Background()
	at := t0.Add(-2 * time.Hour).Truncate(time.Hour).Add(59 * time.Minute) // a minute before a boundary
	ms := time.Millisecond
	// web -> api -> db, api -> cache twice, api -> api (internal, not an edge);
	// the child of the second request's api span arrives in a later request and
	// the next partition, before its parent.
	mustWrite(t, ix, build(
		sp{trace: 1, span: 1, svc: "web", name: "GET /", start: at, dur: 10 * ms},
		sp{trace: 1, span: 2, parent: 1, svc: "api", name: "GET /a", start: at.Add(ms), dur: 8 * ms},
		sp{trace: 1, span: 3, parent: 2, svc: "db", name: "SELECT", start: at.Add(2 * ms), dur: ms},
		sp{trace: 1, span: 4, parent: 2, svc: "cache", name: "GET", start: at.Add(3 * ms), dur: ms},
		sp{trace: 1, span: 5, parent: 2, svc: "api", name: "render", start: at.Add(4 * ms), dur: ms},
	))
	mustWrite(t, ix, build(
		sp{trace: 2, span: 3, parent: 2, svc: "cache", name: "GET", start: at.Add(time.Minute + 2*ms), dur: ms},
	))
	mustWrite(t, ix, build(
		sp{trace: 2, span: 1, svc: "web", name: "GET /", start: at.Add(time.Minute - 5*ms), dur: 10 * ms},
		sp{trace: 2, span: 2, parent: 1, svc: "api", name: "GET /a", start: at.Add(time.Minute - 4*ms), dur: 8 * ms},
	))
	// Spans stored twice count once.
	mustWrite(t, ix, build(
		sp{trace: 1, span: 3, parent: 2, svc: "db", name: "SELECT", start: at.Add(2 * ms), dur: ms},
	))
	deps, err := ix.Dependencies(ctx, at.Add(-time.Hour), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependency{{"api", "cache", 2}, {"api", "db", 1}, {"web", "api", 2}}
	if !slices.Equal(deps.Edges, want) || deps.Truncated {
		t.Fatalf("got %+v, want %+v", deps, want)
	}
	// A window holding only trace 1's first three spans.
	deps, err = ix.Dependencies(ctx, at, at.Add(2*ms))
	if err != nil {
		t.Fatal(err)
	}
	want = []Dependency{{"api", "db", 1}, {"web", "api", 1}}
	if !slices.Equal(deps.Edges, want) {
		t.Fatalf("narrow window: got %+v, want %+v", deps.Edges, want)
	}
	ix2 := openTest(t, &Options{MaxDependencySpans: 3})
	mustWrite(t, ix2, build(
		sp{trace: 1, span: 1, svc: "web", name: "GET /", start: at, dur: 10 * ms},
		sp{trace: 1, span: 2, parent: 1, svc: "api", name: "GET /a", start: at.Add(ms), dur: 8 * ms},
		sp{trace: 1, span: 3, parent: 2, svc: "db", name: "SELECT", start: at.Add(2 * ms), dur: ms},
		sp{trace: 1, span: 4, parent: 2, svc: "cache", name: "GET", start: at.Add(3 * ms), dur: ms},
	))
	deps, err = ix2.Dependencies(ctx, time.Time{}, time.Time{})
	if err != nil || !deps.Truncated {
		t.Fatalf("limit: %+v, %v", deps, err)
	}
}
