package logindex

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestCharClassesMatchUnicode checks the ASCII tables against package unicode
// for every rune.
func TestCharClassesMatchUnicode(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune+1; r++ {
		if got, want := isWordRune(r), refIsWordRune(r); got != want {
			t.Fatalf("isWordRune(%q) = %v, want %v", r, got, want)
		}
		if got, want := isChunkDelim(r), refIsChunkDelim(r); got != want {
			t.Fatalf("isChunkDelim(%q) = %v, want %v", r, got, want)
		}
	}
}

// TestTokenizeMatchesRuneByRune compares tokenize and lower with the tokenizer
// that decoded every rune and asked package unicode about it, over the Loghub
// lines (when present) and random strings of ASCII, delimiters, punctuation,
// non-ASCII letters and spaces, and invalid UTF-8.
func TestTokenizeMatchesRuneByRune(t *testing.T) {
	var lines []string
	if files, _ := filepath.Glob(filepath.Join(loghubDir, "*", "*_2k.log")); len(files) > 0 {
		for _, s := range loadLoghub(t) {
			lines = append(lines, s.lines...)
		}
	}
	rng := rand.New(rand.NewPCG(3, 5))
	pieces := []string{"a", "Z", "9", "_", " ", "\t", ".", ":", "=", "-", "/", "\"", "'", "(", "]", ",", ";", "|",
		"é", "Ä", "İ", "ß", "日本", "\u00a0", "\u2003", "\u0085", "\x00", "\x7f", "\xff", "\xc3", "!", "?", "@", "#"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		lines = append(lines, b.String())
	}
	for _, l := range lines {
		if got, want := lower(l), refLower(l); got != want {
			t.Fatalf("lower(%q) = %q, want %q", l, got, want)
		}
		var got, want []token
		tokenize(l, func(tk token) { got = append(got, tk) })
		refTokenize(l, func(tk token) { want = append(want, tk) })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tokenize(%q):\n got %v\nwant %v", l, got, want)
		}
	}
}

// The tokenizer as it was before the ASCII tables, kept as the reference.

func refLower(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = utf8.AppendRune(b, unicode.ToLower(r))
	}
	return string(b)
}

func refIsWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func refIsChunkDelim(r rune) bool {
	switch r {
	case '"', '\'', '`', '(', ')', '[', ']', '{', '}', '<', '>', ',', ';', '|':
		return true
	}
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

func refTokenize(s string, emit func(t token)) {
	pos := 0
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if refIsChunkDelim(r) {
			i += n
			continue
		}
		start := i
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if refIsChunkDelim(r) {
				break
			}
			i += n
		}
		end := i
		for end > start {
			r, n := utf8.DecodeLastRuneInString(s[start:end])
			if !isTrailingPunct(r) {
				break
			}
			end -= n
		}
		pos = refTokenizeChunk(s[start:end], pos, emit)
	}
}

func refTokenizeChunk(chunk string, pos int, emit func(t token)) int {
	words := 0
	firstPos := pos + 1
	sep := -1
	j := 0
	for j < len(chunk) {
		r, n := utf8.DecodeRuneInString(chunk[j:])
		if !refIsWordRune(r) {
			if sep < 0 && words > 0 && (r == '=' || r == ':') {
				sep = j
			}
			j += n
			continue
		}
		ws := j
		for j < len(chunk) {
			r, n := utf8.DecodeRuneInString(chunk[j:])
			if !refIsWordRune(r) {
				break
			}
			j += n
		}
		words++
		pos++
		if j-ws <= maxTokenLen {
			emit(token{term: refLower(chunk[ws:j]), pos: pos, word: true})
		}
	}
	if words == 0 {
		return pos
	}
	if (words > 1 || !onlyWord(chunk)) && len(chunk) <= maxTokenLen {
		emit(token{term: refLower(chunk), pos: firstPos})
	}
	if sep > 0 && sep+1 < len(chunk) {
		if k := chunk[:sep]; countWords(k) > 1 {
			emit(token{term: refLower(k), pos: firstPos})
		}
		v := chunk[sep+1:]
		if countWords(v) > 1 && len(v) <= maxTokenLen {
			emit(token{term: refLower(v), pos: firstPos + countWords(chunk[:sep])})
		}
	}
	return pos
}
