package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer patterns of tiktoken in Go's RE2 syntax: an independent
// definition of the pieces that split.go must produce, for the tests. RE2
// picks the same match as tiktoken's backtracking engine (leftmost-first,
// greedy) for every construct except the one lookahead, `\s+(?!\S)`, which
// regexpPieces applies by hand. `\s` in tiktoken means Unicode White_Space,
// which is ws below (RE2's \s is ASCII only).
const (
	ws    = `\t\n\v\f\r \x{85}\p{Z}`
	cl100 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^` + ws + `\p{L}\p{N}]+[\r\n]*|[` + ws + `]*[\r\n]+|[` + ws + `]+`
	o200k = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|\p{N}{1,3}| ?[^` + ws + `\p{L}\p{N}]+[\r\n/]*|[` + ws + `]*[\r\n]+|[` + ws + `]+`
)

var (
	cl100kRegexp = regexp.MustCompile(cl100)
	o200kRegexp  = regexp.MustCompile(o200k)
)

// regexpPieces calls yield with each pre-token of text, in order.
func regexpPieces(re *regexp.Regexp, text string, yield func(string)) {
	for len(text) > 0 {
		loc := re.FindStringIndex(text)
		if loc == nil || loc[1] == 0 {
			// Every character is matched by some alternative, so this only
			// guards against an endless loop.
			_, n := utf8.DecodeRuneInString(text)
			yield(text[:n])
			text = text[n:]
			continue
		}
		end := loc[1]
		if loc[0] > 0 {
			yield(text[:loc[0]]) // unreachable for these patterns; kept for safety
		}
		m := text[loc[0]:end]
		// `\s+(?!\S)`: a run of whitespace without line breaks that is
		// followed by a non-space gives its last character to the next piece.
		if end < len(text) && regexpSpaceRun(m) {
			if next, _ := utf8.DecodeRuneInString(text[end:]); !unicode.IsSpace(next) {
				if _, last := utf8.DecodeLastRuneInString(m); last < len(m) {
					m = m[:len(m)-last]
					end -= last
				}
			}
		}
		yield(m)
		text = text[end:]
	}
}

// regexpSpaceRun reports whether s is whitespace only, with no \r or \n (a match
// of the `\s+` alternatives rather than of `\s*[\r\n]+`).
func regexpSpaceRun(s string) bool {
	if strings.ContainsAny(s, "\r\n") {
		return false
	}
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
