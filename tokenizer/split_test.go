package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// splitPieces returns the pieces of text under the hand-written pre-tokenizer.
func splitPieces(piece func(string) int, text string) []string {
	var out []string
	for len(text) > 0 {
		n := piece(text)
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

// regexpSplit returns the pieces of text under the regular expression.
func regexpSplit(re *regexp.Regexp, text string) []string {
	var out []string
	regexpPieces(re, text, func(p string) { out = append(out, p) })
	return out
}

// checkSplit compares the two pre-tokenizers of both encodings on text.
func checkSplit(t *testing.T, text string) {
	t.Helper()
	for _, c := range []struct {
		name  string
		piece func(string) int
		re    *regexp.Regexp
	}{{O200kBase, o200kPiece, o200kRegexp}, {Cl100kBase, cl100kPiece, cl100kRegexp}} {
		got, want := splitPieces(c.piece, text), regexpSplit(c.re, text)
		if !slices.Equal(got, want) {
			t.Fatalf("%s %q:\n got %q\nwant %q", c.name, text, got, want)
		}
	}
}

func TestSplitMatchesRegexp(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.txt"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		checkSplit(t, ValidUTF8(string(b)))
	}
	for _, s := range []string{"", "'", "'s", "'S", "'ſ", "'ll", "'LL", "'Re", "'x", "a'", "A'VE", "x'ſ", "'sa",
		" ", "  ", " x", "  x", " \n", "\n ", " \n x", "\u00a0\u00a0x", "\u3000!", " !", "  !", " /\n/x",
		"\u0301AB", "\u0301ABc", "\u0301ab", "a\u0301", "AʰB", "ABʰ", "Aǅb", "ǅA", "x\u0301\u0301", "١٢٣٤", "1234567"} {
		checkSplit(t, s)
	}
}

// TestSplitRandom compares the pre-tokenizers on random strings over an
// alphabet with a few characters of every class that the patterns tell apart.
func TestSplitRandom(t *testing.T) {
	alphabet := []string{"a", "s", "t", "e", "l", "r", "v", "m", "d", "A", "S", "L", "E", "ſ", "é", "É",
		"ǅ", "ʰ", "中", "ا", "\u0301", "\u0903", "1", "٣", "Ⅻ", "½", "'", "'", "'", " ", " ", " ", "\t",
		"\r", "\n", "\u00a0", "\u2028", "\u3000", "\u0085", "\v", "/", "!", ".", "-", "😀", "\u200d", "_", "\x00",
		"z", "Z", "@", "[", "`", "{", "\x7f", "\u00aa", "\u00e0", "𝐀", "𝐚", "\U0001D167", "𝟙"}
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for range 200000 {
		b.Reset()
		for range 1 + r.IntN(12) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		checkSplit(t, b.String())
	}
}

// FuzzSplitMatchesRegexp compares the pieces of the hand-written
// pre-tokenizers with those of the regular expressions on any valid text.
func FuzzSplitMatchesRegexp(f *testing.F) {
	for _, s := range []string{" \n \n x", "a  b", "\u00a0\u00a0x", "It's ALLCAPS'S", "\u0301AB'll", "x//\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		checkSplit(t, ValidUTF8(text))
	})
}

// TestClassTable checks the classes of all characters (the table of the
// Basic Multilingual Plane and the others) against the unicode package.
func TestClassTable(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		var want uint8
		switch {
		case unicode.In(r, unicode.Lu, unicode.Lt):
			want = cL | cU
		case unicode.Is(unicode.Ll, r):
			want = cL | cW
		case unicode.In(r, unicode.Lm, unicode.Lo):
			want = cL | cU | cW
		case unicode.IsMark(r):
			want = cU | cW
		case unicode.IsNumber(r):
			want = cN
		case r == '\r' || r == '\n':
			want = cS | cNL
		case unicode.IsSpace(r):
			want = cS
		}
		if got := unicodeClass(r); got != want {
			t.Errorf("class of %U = %b, want %b", r, got, want)
		}
	}
}

func TestLoad8(t *testing.T) {
	s := "\x01\x02\x03\x04\x05\x06\x07\x08\x09"
	for n := 0; n <= len(s); n++ {
		var want uint64
		for i := min(n, 8) - 1; i >= 0; i-- {
			want = want<<8 | uint64(s[i])
		}
		if got := load8(s[:n]); got != want {
			t.Errorf("load8(%q) = %#x, want %#x", s[:n], got, want)
		}
	}
}

// linearSegment is segment written as a scan of every character.
func linearSegment(s string) int {
	run, class := 0, uint8(0xff)
	for i, r := range s {
		c := segmentClass[unicodeClass(r)]
		if c != class {
			class, run = c, 0
		}
		run += utf8.RuneLen(r)
		if run > maxRun {
			return i
		}
	}
	return len(s)
}

// TestSegment compares segment with a scan of every character on texts made
// of runs of random classes and lengths around maxRun.
func TestSegment(t *testing.T) {
	chars := []string{"a", "é", "中", "\u0301", "𝐀", " ", "\u3000", "\n", "1", "٣", "!", "😀", "\u00a0"}
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for range 3000 {
		b.Reset()
		for range 1 + r.IntN(6) {
			c := chars[r.IntN(len(chars))]
			n := r.IntN(3 * maxRun / len(c))
			if r.IntN(2) == 0 {
				n = r.IntN(8)
			}
			b.WriteString(strings.Repeat(c, n))
		}
		text := b.String()
		for len(text) > 0 {
			got, want := segment(text), linearSegment(text)
			if got != want {
				t.Fatalf("segment of %d bytes: %d, want %d", len(text), got, want)
			}
			if got == 0 {
				t.Fatal("empty segment")
			}
			text = text[got:]
		}
	}
}
