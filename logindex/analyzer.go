package logindex

import (
	"unicode"
	"unicode/utf8"
)

// The body analyzer. A log line is cut into chunks at white space and at the
// characters that delimit values in logs (quotes, brackets, commas, semicolons,
// pipes); trailing sentence punctuation is trimmed from each chunk. Every chunk
// yields:
//
//   - its words: maximal runs of letters, digits and '_', lower-cased, at
//     consecutive positions (so phrases match word sequences);
//   - the whole chunk, lower-cased, when it is more than one word (an IP address,
//     a path, a UUID, a hex id with a prefix, key=value, host:port, an error code
//     with dashes...), at the position of its first word;
//   - for key=value and key:value chunks, the key and the value as whole tokens
//     too when they are more than one word (so ip=10.0.0.1 and 10.0.0.1:22 also
//     yield 10.0.0.1).
//
// A term query for a single word looks up the word; a query term that is more
// than one word (10.0.0.1, /var/log) is a phrase over its words, matching where those
// words follow each other; wildcards and regular expressions are matched against
// every token, so 10.0.* and /var/log/* find the whole tokens.

// maxTokenLen is the longest token indexed; longer words and chunks are skipped.
const maxTokenLen = 256

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r]&asciiWord != 0
	}
	return isWordNonASCII(r)
}

func isWordNonASCII(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func isChunkDelim(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r]&asciiDelim != 0
	}
	return isDelimNonASCII(r)
}

func isDelimNonASCII(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// asciiClass says, for each ASCII character, whether it is a word character
// and whether it delimits chunks: most of a log line is ASCII, and looking it up
// is several times faster than asking package unicode.
var asciiClass = func() (t [utf8.RuneSelf]byte) {
	for c := range rune(utf8.RuneSelf) {
		if c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c) {
			t[c] |= asciiWord
		}
		switch c {
		case '"', '\'', '`', '(', ')', '[', ']', '{', '}', '<', '>', ',', ';', '|':
			t[c] |= asciiDelim
		}
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			t[c] |= asciiDelim
		}
	}
	return t
}()

const (
	asciiWord  = 1 << iota // a letter, a digit or '_'
	asciiDelim             // delimits chunks
)

func isTrailingPunct(r rune) bool {
	switch r {
	case '.', ':', '!', '?', '=':
		return true
	}
	return false
}

// token is one analyzed token: the term (lower-case), whether it is a word, and
// its position (1-based; a whole token shares its first word's position).
type token struct {
	term string
	pos  int
	word bool
}

// tokenize calls emit for every token of s, in order.
func tokenize(s string, emit func(t token)) {
	tokenSpans(s, func(start, end, pos int, word bool) {
		emit(token{term: lower(s[start:end]), pos: pos, word: word})
	})
}

// tokenSpans calls emit for every token of s, in order, with where it is in s
// (its term is the lower case of s[start:end]), its position and whether it is
// a word. The record matcher lists the tokens of encoded records through it.
func tokenSpans(s string, emit func(start, end, pos int, word bool)) {
	pos := 0
	i := 0
	for i < len(s) {
		r, n := rune(s[i]), 1 // ASCII without a call
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		if isChunkDelim(r) {
			i += n
			continue
		}
		start := i
		for i < len(s) {
			r, n := rune(s[i]), 1 // ASCII without a call
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeRuneInString(s[i:])
			}
			if isChunkDelim(r) {
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
		pos = chunkSpans(s, start, end, pos, emit)
	}
}

// chunkSpans emits the tokens of the chunk s[start:end] and returns the last
// position used.
func chunkSpans(s string, start, end, pos int, emit func(start, end, pos int, word bool)) int {
	chunk := s[start:end]
	words := 0
	firstPos := pos + 1
	sep := -1 // offset of the first '=' or ':' after a word
	j := 0
	for j < len(chunk) {
		r, n := rune(chunk[j]), 1 // ASCII without a call
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(chunk[j:])
		}
		if !isWordRune(r) {
			if sep < 0 && words > 0 && (r == '=' || r == ':') {
				sep = j
			}
			j += n
			continue
		}
		ws := j
		for j < len(chunk) {
			r, n := rune(chunk[j]), 1 // ASCII without a call
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeRuneInString(chunk[j:])
			}
			if !isWordRune(r) {
				break
			}
			j += n
		}
		words++
		pos++
		if j-ws <= maxTokenLen {
			emit(start+ws, start+j, pos, true)
		}
	}
	if words == 0 {
		return pos
	}
	if (words > 1 || !onlyWord(chunk)) && len(chunk) <= maxTokenLen {
		emit(start, end, firstPos, false)
	}
	if sep > 0 && sep+1 < len(chunk) {
		if k := chunk[:sep]; countWords(k) > 1 {
			emit(start, start+sep, firstPos, false)
		}
		v := chunk[sep+1:]
		if countWords(v) > 1 && len(v) <= maxTokenLen {
			emit(start+sep+1, end, firstPos+countWords(chunk[:sep]), false)
		}
	}
	return pos
}

func onlyWord(s string) bool {
	for _, r := range s {
		if !isWordRune(r) {
			return false
		}
	}
	return true
}

func countWords(s string) int {
	n := 0
	in := false
	for _, r := range s {
		w := isWordRune(r)
		if w && !in {
			n++
		}
		in = w
	}
	return n
}

// lower lower-cases s, without allocating when it is already lower-case ASCII.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return toLowerSlow(s)
		}
	}
	return s
}

func toLowerSlow(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		b := []byte(s)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		return string(b)
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = utf8.AppendRune(b, unicode.ToLower(r))
	}
	return string(b)
}

// words returns the lower-cased words of s, in order: what a phrase query matches.
func words(s string) []string {
	var out []string
	tokenize(s, func(t token) {
		if t.word {
			out = append(out, t.term)
		}
	})
	return out
}
