package logindex

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBoundsContainCount checks that the bounds eval gives a query over a block
// hold the number of the block's records that match it, for random blocks and
// random query trees, whether each leaf's bounds are its exact count or only
// bounds around it; and that exact leaves under AND and NOT stay exact where
// the arithmetic says they must (a leaf that every record has, or none).
func TestBoundsContainCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for round := range 20000 {
		nLeaves := 1 + rng.IntN(4)
		leaves := make([]*matchNode, nLeaves)
		for i := range leaves {
			leaves[i] = &matchNode{kind: kindTerm, value: string(rune('a' + i))}
		}
		var build func(depth int) node
		build = func(depth int) node {
			if depth == 0 || rng.IntN(3) == 0 {
				if rng.IntN(10) == 0 {
					return &matchNode{kind: kindAll}
				}
				return leaves[rng.IntN(nLeaves)]
			}
			switch rng.IntN(3) {
			case 0:
				return &notNode{kid: build(depth - 1)}
			case 1:
				return &andNode{kids: []node{build(depth - 1), build(depth - 1), build(depth - 1)}[:2+rng.IntN(2)]}
			}
			return &orNode{kids: []node{build(depth - 1), build(depth - 1), build(depth - 1)}[:2+rng.IntN(2)]}
		}
		q := &Query{root: build(4)}
		pl := newBlockPlan(q)
		size := int32(1 + rng.IntN(40))
		has := make([][]bool, size) // per record, per leaf
		for r := range has {
			has[r] = make([]bool, nLeaves)
			for i := range has[r] {
				has[r][i] = rng.IntN(4) == 0 || round%5 == 0 && i == 0
			}
		}
		var matches func(n node, r int) bool
		matches = func(n node, r int) bool {
			switch n := n.(type) {
			case *andNode:
				for _, k := range n.kids {
					if !matches(k, r) {
						return false
					}
				}
				return true
			case *orNode:
				for _, k := range n.kids {
					if matches(k, r) {
						return true
					}
				}
				return false
			case *notNode:
				return !matches(n.kid, r)
			case *matchNode:
				if n.kind == kindAll {
					return true
				}
				return has[r][int(n.value[0]-'a')]
			}
			return false
		}
		var truth int32
		for r := range has {
			if matches(q.root, r) {
				truth++
			}
		}
		leaf := make([]bounds, len(pl.list))
		loose := rng.IntN(2) == 0
		for i, m := range pl.list {
			if m.kind == kindAll {
				continue
			}
			var c int32
			for r := range has {
				if has[r][int(m.value[0]-'a')] {
					c++
				}
			}
			leaf[i] = bounds{c, c}
			if loose {
				leaf[i] = bounds{c - rng.Int32N(c+1), c + rng.Int32N(size-c+1)}
			}
		}
		b := pl.eval(q.root, size, leaf)
		if b.lo > truth || b.hi < truth || b.lo < 0 || b.hi > size {
			t.Fatalf("round %d: bounds [%d, %d] of %d records, %d match", round, b.lo, b.hi, size, truth)
		}
	}
}

// TestBoundsExactCases checks the cases the index counts whole: a leaf's count,
// its negation, and a conjunction with leaves every record has.
func TestBoundsExactCases(t *testing.T) {
	a, b := &matchNode{kind: kindTerm, value: "a"}, &matchNode{kind: kindTerm, value: "b"}
	for _, c := range []struct {
		n    node
		la   bounds
		lb   bounds
		want bounds
	}{
		{a, bounds{3, 3}, bounds{}, bounds{3, 3}},
		{&notNode{kid: a}, bounds{3, 3}, bounds{}, bounds{7, 7}},
		{&andNode{kids: []node{a, b}}, bounds{3, 3}, bounds{10, 10}, bounds{3, 3}},
		{&andNode{kids: []node{a, &notNode{kid: b}}}, bounds{3, 3}, bounds{0, 0}, bounds{3, 3}},
		{&orNode{kids: []node{a, b}}, bounds{3, 3}, bounds{0, 0}, bounds{3, 3}},
		{&andNode{kids: []node{a, b}}, bounds{3, 3}, bounds{5, 5}, bounds{0, 3}},
	} {
		pl := newBlockPlan(&Query{root: c.n})
		leaf := make([]bounds, len(pl.list))
		for i, m := range pl.list {
			leaf[i] = map[*matchNode]bounds{a: c.la, b: c.lb}[m]
		}
		if got := pl.eval(c.n, 10, leaf); got != c.want {
			t.Errorf("%#v with a %v, b %v: %v, want %v", c.n, c.la, c.lb, got, c.want)
		}
	}
}

// TestEachPostingMatchesTermList checks eachPosting, which jumps to the blocks
// asked for when they are few against a term's postings and reads the postings
// in order otherwise, against the term's whole posting list, for lists of
// blocks from one to all of a shard's, with and without blocks lacking the term.
func TestEachPostingMatchesTermList(t *testing.T) {
	ix, _ := openTest(t, &Options{Shards: 1})
	now := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	for b := range 400 { // small writes: 2 to 3 blocks each
		var recs []genRecord
		for i := range 2 + b%2 {
			body := "plain line"
			if (b+i)%3 == 0 {
				body = "rare word"
			}
			recs = append(recs, genRecord{t: now.Add(time.Duration(b) * time.Second), service: genServices[i], sev: genLevels[0], body: body})
		}
		write(t, ix, recs)
	}
	flush(t, ix)
	s, err := ix.acquireRange(now.UnixMilli(), now.Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer s.release()
	p := s.parts[s.days[0]]
	sr, err := s.reader(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	all, err := sr.termList(ctx, "td", levelTerm(int64(p.day)))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 800 {
		t.Fatalf("%d blocks, want at least 800", len(all))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, term := range []fieldTerm{{"td", levelTerm(int64(p.day))}, {fieldBody, "rare"}, {fieldBody, "absent"}} {
		list, err := sr.termList(ctx, term.field, term.term)
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint64]int32{}
		for _, c := range list {
			want[c.doc] = c.n
		}
		for _, n := range []int{1, 2, 5, 20, 90, 300, len(all)} {
			for range 5 {
				var docs []uint64
				for _, i := range rng.Perm(len(all))[:n] {
					docs = append(docs, all[i].doc)
				}
				slices.Sort(docs)
				got := make([]int32, len(docs))
				if err := sr.eachPosting(ctx, term.field, term.term, docs, func(i int, f int32) { got[i] += f }); err != nil {
					t.Fatal(err)
				}
				for i, doc := range docs {
					if got[i] != want[doc] {
						t.Fatalf("%v over %d blocks: block %d count %d, want %d", term, n, doc, got[i], want[doc])
					}
				}
			}
		}
	}
}

// TestGallop checks gallop against a linear search.
func TestGallop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	for range 2000 {
		docs := make([]uint64, rng.IntN(60))
		for i := range docs {
			docs[i] = uint64(rng.IntN(100))
		}
		slices.Sort(docs)
		i := 0
		if len(docs) > 0 {
			i = rng.IntN(len(docs))
		}
		doc := uint64(rng.IntN(110))
		want := i
		for want < len(docs) && docs[want] < doc {
			want++
		}
		if got := gallop(docs, i, doc); got != want {
			t.Fatalf("gallop(%v, %d, %d) = %d, want %d", docs, i, doc, got, want)
		}
	}
}
