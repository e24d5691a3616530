package logindex

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrTailDropped ends a Tail whose reader fell more than Options.TailBuffer
// records behind: ingest never waits for a tail.
var ErrTailDropped = errors.New("tail dropped: the reader fell behind")

// ErrTooManyTails is returned by Tail when Options.MaxTails tails are open.
var ErrTooManyTails = errors.New("too many open tails")

// Tail is a live subscription to the records matching a query, in the order they
// are acknowledged. It follows the database/sql Rows contract: call Next until it
// returns false, then Err; Close is idempotent.
type Tail struct {
	hub   *tailHub
	q     *Query
	ch    chan Record
	rec   Record
	errMu sync.Mutex
	err   error
}

type tailHub struct {
	mu     sync.Mutex
	subs   map[*Tail]struct{}
	buf    int
	max    int
	closed bool
}

func (h *tailHub) init(buf, max int) {
	h.subs = make(map[*Tail]struct{})
	h.buf, h.max = buf, max
}

// Tail subscribes to the records that match query from now on. The query is
// parsed like a search's; a bad one returns a *QueryError.
func (ix *Index) Tail(query string) (*Tail, error) {
	q, err := ParseQuery(query)
	if err != nil {
		return nil, err
	}
	h := &ix.tails
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if len(h.subs) >= h.max {
		return nil, fmt.Errorf("cannot open tail: %w (%d)", ErrTooManyTails, h.max)
	}
	t := &Tail{hub: h, q: q, ch: make(chan Record, h.buf)}
	h.subs[t] = struct{}{}
	return t, nil
}

// publish hands recs to every tail they match; a tail whose buffer is full is
// dropped.
func (h *tailHub) publish(recs []Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	for i := range recs {
		v := recordView{r: &recs[i]} // analysed once for every tail
		for t := range h.subs {
			if !matchNodeRec(t.q.root, &v) {
				continue
			}
			select {
			case t.ch <- recs[i]:
			default:
				t.setErr(ErrTailDropped)
				delete(h.subs, t)
				close(t.ch)
			}
		}
	}
}

func (h *tailHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for t := range h.subs {
		t.setErr(ErrClosed)
		delete(h.subs, t)
		close(t.ch)
	}
}

func (t *Tail) setErr(err error) {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	if t.err == nil {
		t.err = err
	}
}

// Next waits for the next matching record. It returns false when ctx is done, the
// tail was dropped or closed, or the Index closed; Err says which.
func (t *Tail) Next(ctx context.Context) bool {
	select {
	case r, ok := <-t.ch:
		if !ok {
			return false
		}
		t.rec = r
		return true
	case <-ctx.Done():
		t.setErr(ctx.Err())
		return false
	}
}

// Record returns the record Next moved to.
func (t *Tail) Record() Record { return t.rec }

// Err returns why Next returned false: ErrTailDropped, ErrClosed (the Index or
// the tail was closed) or the context's error.
func (t *Tail) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	if t.err == errTailClosedByUser {
		return nil
	}
	return t.err
}

var errTailClosedByUser = errors.New("tail closed")

// Close ends the subscription. It is safe to call more than once.
func (t *Tail) Close() error {
	h := t.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[t]; ok {
		t.setErr(errTailClosedByUser)
		delete(h.subs, t)
		close(t.ch)
	}
	return nil
}
