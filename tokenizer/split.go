package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizers of tiktoken cut text into pieces with a regular
// expression, one per encoding, before byte-pair merging. They are written
// out here by hand as the matcher that the backtracking engine would run,
// one alternative after the other (leftmost-first, greedy):
//
// o200k_base:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// cl100k_base:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//	| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// `\s` is Unicode White_Space (unicode.IsSpace) and (?i) folds case as
// Unicode simple case folding does ('s also matches 'S and 'ſ). The input
// must be valid UTF-8.

// Character class bits. Every letter has cU or cW (or both), so cU|cW is
// "letter or mark".
const (
	cL  uint8 = 1 << iota // \p{L}
	cU                    // \p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}
	cW                    // \p{Ll}\p{Lm}\p{Lo}\p{M}
	cN                    // \p{N}
	cS                    // \s
	cNL                   // \r or \n
)

// bmpClass holds the class bits of the characters of the Basic
// Multilingual Plane (U+0000 to U+FFFF).
var bmpClass [1 << 16]uint8

func init() {
	set := func(table *unicode.RangeTable, bits uint8) {
		for _, r := range table.R16 {
			for c := int(r.Lo); c <= int(r.Hi); c += int(r.Stride) {
				bmpClass[c] |= bits
			}
		}
	}
	set(unicode.L, cL)
	set(unicode.Lu, cU)
	set(unicode.Lt, cU)
	set(unicode.Ll, cW)
	set(unicode.Lm, cU|cW)
	set(unicode.Lo, cU|cW)
	set(unicode.M, cU|cW)
	set(unicode.N, cN)
	set(unicode.White_Space, cS)
	bmpClass['\r'] |= cNL
	bmpClass['\n'] |= cNL
}

// unicodeClass returns the class bits of r.
func unicodeClass(r rune) uint8 {
	if r < 1<<16 {
		return bmpClass[r]
	}
	switch {
	case unicode.IsLetter(r):
		switch {
		case unicode.Is(unicode.Ll, r):
			return cL | cW
		case unicode.Is(unicode.Lu, r) || unicode.Is(unicode.Lt, r):
			return cL | cU
		}
		return cL | cU | cW // Lm, Lo
	case unicode.IsMark(r):
		return cU | cW
	case unicode.IsNumber(r):
		return cN
	case unicode.IsSpace(r):
		return cS
	}
	return 0
}

// classAt returns the class bits and the length of the character at s[i:].
func classAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return bmpClass[c], 1
	}
	return classOf(s, i)
}

// classOf returns the class bits and the length of the character at s[i:].
func classOf(s string, i int) (uint8, int) {
	r, n := utf8.DecodeRuneInString(s[i:])
	return unicodeClass(r), n
}

// isPrefix reports whether class c is in [^\r\n\p{L}\p{N}].
func isPrefix(c uint8) bool { return c&(cL|cN|cNL) == 0 }

// isOther reports whether class c is in [^\s\p{L}\p{N}].
func isOther(c uint8) bool { return c&(cS|cL|cN) == 0 }

// o200kPiece returns the length of the first o200k_base piece of s (len(s) > 0).
func o200kPiece(s string) int {
	// Fast path: an optional space, [A-Z]*[a-z]+, then the end or an ASCII
	// character that is neither a letter nor an apostrophe.
	i := 0
	if s[0] == ' ' {
		i = 1
	}
	for i < len(s) && 'A' <= s[i] && s[i] <= 'Z' {
		i++
	}
	if i < len(s) && 'a' <= s[i] && s[i] <= 'z' {
		for i++; i < len(s) && 'a' <= s[i] && s[i] <= 'z'; i++ {
		}
		if i == len(s) || s[i] < utf8.RuneSelf && s[i] != '\'' && bmpClass[s[i]]&cL == 0 {
			return i
		}
	}
	c, n := classAt(s, 0)
	if isPrefix(c) && n < len(s) {
		if next, _ := classAt(s, n); next&(cU|cW) != 0 {
			end, lower := o200kWord(s[n:])
			if lower || c&(cU|cW) == 0 {
				return n + end
			}
			// A mark before capitals only: the first alternative matches
			// the mark alone, which comes before the second one with prefix.
			return n
		}
	}
	if c&(cU|cW) != 0 {
		end, _ := o200kWord(s)
		return end
	}
	return common(s, c, n, true)
}

// o200kWord matches the two letter alternatives of o200k_base without their
// prefix at the start of s, which is a letter or a mark. lower reports
// whether the first one matched.
func o200kWord(s string) (end int, lower bool) {
	i := span(s, 0, cU, true)
	if i < len(s) {
		if c, _ := classAt(s, i); c&cW != 0 { // [U]* is followed by [W]+
			i = span(s, i, cW, true)
			return i + contraction(s[i:]), true
		}
	}
	// [U]* gives back up to its last [W] character, if any.
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		if unicodeClass(r)&cW != 0 {
			return j + contraction(s[j:]), true
		}
		j -= n
	}
	return i + contraction(s[i:]), false
}

// span returns the end of the run of characters from s[i:] whose class has
// a bit of mask set (want true) or none (want false).
func span(s string, i int, mask uint8, want bool) int {
	for i < len(s) {
		c, n := bmpClass[s[i]], 1
		if s[i] >= utf8.RuneSelf {
			c, n = classOf(s, i)
		}
		if (c&mask != 0) != want {
			break
		}
		i += n
	}
	return i
}

// cl100kPiece returns the length of the first cl100k_base piece of s (len(s) > 0).
func cl100kPiece(s string) int {
	// Fast path: an optional space, ASCII letters, then the end or another
	// ASCII character.
	i := 0
	if s[0] == ' ' {
		i = 1
	}
	if i < len(s) && s[i] < utf8.RuneSelf && bmpClass[s[i]]&cL != 0 {
		for i++; i < len(s) && s[i] < utf8.RuneSelf && bmpClass[s[i]]&cL != 0; i++ {
		}
		if i == len(s) || s[i] < utf8.RuneSelf {
			return i
		}
	}
	if s[0] == '\'' {
		if n := contraction(s); n > 0 {
			return n
		}
	}
	c, n := classAt(s, 0)
	if isPrefix(c) && n < len(s) {
		if next, _ := classAt(s, n); next&cL != 0 {
			return span(s, n, cL, true)
		}
	}
	if c&cL != 0 {
		return span(s, 0, cL, true)
	}
	return common(s, c, n, false)
}

// common matches the alternatives after the letters, shared by both
// encodings, at the start of s, whose first character has class c and
// length n: numbers, other characters (with a trailing '/' too when slash)
// and whitespace.
func common(s string, c uint8, n int, slash bool) int {
	if c&cN != 0 { // \p{N}{1,3}
		i := n
		for k := 1; k < 3 && i < len(s); k++ {
			c, m := classAt(s, i)
			if c&cN == 0 {
				break
			}
			i += m
		}
		return i
	}
	if c&cS == 0 || s[0] == ' ' && len(s) > 1 {
		// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
		i := 0
		if c&cS != 0 {
			if next, _ := classAt(s, 1); !isOther(next) {
				return spaces(s)
			}
			i = 1
		}
		i = span(s, i, cS|cL|cN, false)
		for i < len(s) && (s[i] == '\r' || s[i] == '\n' || slash && s[i] == '/') {
			i++
		}
		return i
	}
	return spaces(s)
}

// spaces matches `\s*[\r\n]+|\s+(?!\S)|\s+` at the start of s, which is
// whitespace.
func spaces(s string) int {
	i := span(s, 0, cS, true)
	if nl := strings.LastIndexAny(s[:i], "\r\n"); nl >= 0 {
		return nl + 1
	}
	if i < len(s) {
		if _, last := utf8.DecodeLastRuneInString(s[:i]); last < i {
			return i - last // the last space goes with the next piece
		}
	}
	return i
}

// contraction returns the length of the (?i:'s|'t|'re|'ve|'m|'ll|'d) at the
// start of s, or 0.
func contraction(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	switch s[1] | 0x20 {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v', 'l':
		if len(s) >= 3 {
			want := byte('e')
			if s[1]|0x20 == 'l' {
				want = 'l'
			}
			if s[2]|0x20 == want {
				return 3
			}
		}
		return 0
	}
	if len(s) >= 3 && s[1] == 0xC5 && s[2] == 0xBF { // ſ folds to s
		return 3
	}
	return 0
}
