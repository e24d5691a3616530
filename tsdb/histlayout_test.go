package tsdb

import (
	"errors"
	"testing"
)

// A histogram chunk whose layout declares more buckets than it has bits is
// refused before chunkenc allocates for them (found by FuzzSeriesChunk: a few
// flipped bytes made it allocate gigabytes), while real chunks pass.
func TestHistogramLayoutBound(t *testing.T) {
	good := appendSeriesChunk(nil, []sample{{t: 4, fh: testHistogram()}, {t: 5, fh: testHistogram()}})
	if out, err := decodeSeriesChunk(nil, good); err != nil || len(out) != 2 {
		t.Fatalf("good chunk: %d samples, %v", len(out), err)
	}
	// Run kind, length, then the chunk: header (3 bytes), zero threshold byte 0,
	// schema 0 (one 0 bit), one positive span (varbit 1: bits 10 001) of
	// length 2^56-1 (bits 11111110 then 56 ones).
	bits := "0" + "10001" + "11111110" + repeat('1', 56) + "0" + "0"
	chunk := []byte{0, 1, 0, 0}
	chunk = append(chunk, packBits(bits)...)
	rec := append([]byte{runHistogram, byte(len(chunk))}, chunk...)
	_, err := decodeSeriesChunk(nil, rec)
	if !errors.Is(err, errFormat) {
		t.Fatalf("oversized layout: err %v, want a format error", err)
	}
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func packBits(s string) []byte {
	out := make([]byte, (len(s)+7)/8)
	for i := range s {
		if s[i] == '1' {
			out[i/8] |= 1 << (7 - i%8)
		}
	}
	return out
}
