package tsdb

import "github.com/RoaringBitmap/roaring/v2"

// postingList holds the ids of the series that have one label value. Many
// values belong to one series only (a pod's or a container's id, a request
// path): such a value keeps its id inline, and takes a bitmap (about 130 bytes
// of heap, in five allocations) only once a second series has it.
type postingList struct {
	bm  *roaring.Bitmap // nil while the list holds one id or none
	id  uint32          // the one id, when bm is nil and one is set
	one bool
}

// postings maps label names to their values' posting lists.
type postings map[string]map[string]postingList

func newPostings() postings { return postings{} }

// add adds id to the list of name=value.
func (p postings) add(name, value string, id uint32) {
	m := p[name]
	if m == nil {
		m = map[string]postingList{}
		p[name] = m
	}
	l := m[value]
	switch {
	case l.bm != nil:
		l.bm.Add(id)
		return // the map holds the same bitmap
	case !l.one:
		l.id, l.one = id, true
	case l.id != id:
		l.bm = roaring.BitmapOf(l.id, id)
		l.id, l.one = 0, false
	}
	m[value] = l
}

// remove removes id from the list of name=value, and the value (and the name)
// once nothing is left.
func (p postings) remove(name, value string, id uint32) {
	m := p[name]
	l, ok := m[value]
	if !ok {
		return
	}
	switch {
	case l.bm != nil:
		l.bm.Remove(id)
		if !l.bm.IsEmpty() {
			return
		}
	case !l.one || l.id != id:
		return
	}
	delete(m, value)
	if len(m) == 0 {
		delete(p, name)
	}
}

// orInto adds the list's ids to b.
func (l postingList) orInto(b *roaring.Bitmap) {
	if l.bm != nil {
		b.Or(l.bm)
	} else if l.one {
		b.Add(l.id)
	}
}

// removeFrom removes the list's ids from b.
func (l postingList) removeFrom(b *roaring.Bitmap) {
	if l.bm != nil {
		b.AndNot(l.bm)
	} else if l.one {
		b.Remove(l.id)
	}
}

// intersects reports whether the list and b share an id.
func (l postingList) intersects(b *roaring.Bitmap) bool {
	if l.bm != nil {
		return l.bm.Intersects(b)
	}
	return l.one && b.Contains(l.id)
}
