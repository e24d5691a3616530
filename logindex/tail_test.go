package logindex

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

func TestTail(t *testing.T) {
	ix, _ := openTest(t, &Options{TailBuffer: 10})
	errs, err := ix.Tail("severity>=ERROR service:api")
	if err != nil {
		t.Fatal(err)
	}
	defer errs.Close()
	slow, err := ix.Tail("")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := ix.Tail("(broken"); err == nil {
		t.Fatal("bad tail query accepted")
	}
	now := time.Now()
	var recs []genRecord
	for i := 0; i < 30; i++ {
		recs = append(recs, genRecord{t: now, service: genServices[i%3], sev: genLevels[i%len(genLevels)], body: fmt.Sprintf("tail %d", i)})
	}
	// Writes never wait for tails: the slow one, which reads nothing, is dropped.
	write(t, ix, recs)
	var want []string
	for _, g := range recs {
		if g.service == "api" && g.sev >= plog.SeverityNumberError {
			want = append(want, g.body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, w := range want {
		if !errs.Next(ctx) {
			t.Fatalf("tail ended: %v", errs.Err())
		}
		if got := errs.Record().Body; got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
	for slow.Next(ctx) {
	}
	if !errors.Is(slow.Err(), ErrTailDropped) {
		t.Fatalf("slow tail: %v, want ErrTailDropped", slow.Err())
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if errs.Next(short) {
		t.Fatalf("unexpected record %+v", errs.Record())
	}
	if !errors.Is(errs.Err(), context.DeadlineExceeded) {
		t.Fatalf("got %v", errs.Err())
	}
	if err := slow.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTailEndsOnClose(t *testing.T) {
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := ix.Tail("x")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() { done <- tl.Next(context.Background()) }()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if <-done {
		t.Fatal("Next returned a record")
	}
	if !errors.Is(tl.Err(), ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", tl.Err())
	}
	tl.Close()
	tl.Close()
	if _, _, err := ix.WriteLogs(context.Background(), makeLogs([]genRecord{{t: time.Now(), body: "x"}})); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
}
