package logindex

import (
	"math/rand/v2"
	"testing"
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
