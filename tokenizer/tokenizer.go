// Package tokenizer counts tokens the way OpenAI's tiktoken does, with the
// vocabularies embedded in the binary (nothing is downloaded at run time).
package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Encoding names.
const (
	O200kBase  = "o200k_base"
	Cl100kBase = "cl100k_base"
)

// DefaultEncoding is used for models llmscope does not know: the encoding of
// OpenAI's current model families.
const DefaultEncoding = O200kBase

// cl100kPrefixes are the model families that use cl100k_base; every other
// model (gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 and unknown ones) uses o200k_base.
var cl100kPrefixes = []string{"gpt-4-", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002"}

// EncodingFor returns the encoding name of model. Dated snapshots and
// fine-tune names ("ft:gpt-4o-mini:org::id") resolve to their family.
func EncodingFor(model string) string {
	m := strings.ToLower(strings.TrimPrefix(model, "ft:"))
	if m == "gpt-4" || strings.HasPrefix(m, "gpt-4:") {
		return Cl100kBase
	}
	for _, p := range cl100kPrefixes {
		if strings.HasPrefix(m, p) && !strings.HasPrefix(m, "gpt-4o") {
			return Cl100kBase
		}
	}
	return DefaultEncoding
}

// Count returns the number of tokens of text under model's encoding, exactly
// as tiktoken's encode_ordinary counts them: special-token markers such as
// <|endoftext|> are plain text, and invalid UTF-8 bytes count as U+FFFD.
// Once the vocabulary is loaded, Count does not allocate for valid UTF-8
// text and a model name without upper-case letters.
func Count(model, text string) int {
	return CountEncoding(EncodingFor(model), text)
}

// CountEncoding is Count for an encoding name (O200kBase or Cl100kBase);
// unknown names use DefaultEncoding. Once the vocabulary is loaded it does
// not allocate for valid UTF-8 text.
func CountEncoding(encoding, text string) int {
	if text == "" {
		return 0
	}
	enc, err := load(encoding)
	if err != nil {
		return (len(text) + 3) / 4 // the vocabulary failed to load: a rough estimate beats none
	}
	text = ValidUTF8(text)
	n := 0
	for len(text) > 0 {
		seg := segment(text)
		n += enc.count(text[:seg])
		text = text[seg:]
	}
	return n
}

// load returns the vocabulary of encoding, loading it on first use; unknown
// names get DefaultEncoding.
func load(encoding string) (*bpe, error) {
	get, ok := encodings[encoding]
	if !ok {
		get = encodings[DefaultEncoding]
	}
	enc, err := get()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return enc, nil
}

// Encode returns the token ids of text under encoding, as tiktoken's
// encode_ordinary does after decoding the bytes as UTF-8 with errors
// replaced (each maximal invalid subsequence becomes one U+FFFD).
func Encode(encoding, text string) ([]int, error) {
	enc, err := load(encoding)
	if err != nil {
		return nil, err
	}
	text = ValidUTF8(text)
	ids := make([]int, 0, len(text)/4+1)
	for len(text) > 0 {
		seg := segment(text)
		ids = enc.encode(ids, text[:seg])
		text = text[seg:]
	}
	return ids, nil
}

// maxRun bounds a run of characters of one class (letters, digits, spaces,
// others) that is encoded in one piece. Byte-pair merging is quadratic in
// the length of a piece, so a megabyte of spaces or of one letter would take
// minutes; such a run is cut every maxRun bytes and its halves encoded apart.
// Counts stay exact for any text without such runs and within a token per
// cut for text with them.
const maxRun = 1024

// segment returns the length of the first segment of s to encode on its own:
// all of s, or up to the point where a run of one class reaches maxRun bytes.
// The classes are whitespace, letters and marks, numbers, and the rest.
//
// Only runs longer than maxRun matter, and each one spans two consecutive
// samples taken every maxRun/2 bytes, so segment looks at the runs through
// the samples only, not at every character.
func segment(s string) int {
	const step = maxRun / 2
	for q := 0; q+step < len(s); q += step {
		for q > 0 && !utf8.RuneStart(s[q]) {
			q--
		}
		c, n := segmentClassAt(s, q)
		e := q + n
		for e < len(s) && e <= q+step {
			ce, ne := segmentClassAt(s, e)
			if ce != c {
				break
			}
			e += ne
		}
		if e <= q+step {
			continue // the class changes between this sample and the next
		}
		start := q
		for start > 0 {
			r, n := utf8.DecodeLastRuneInString(s[:start])
			if segmentClass[unicodeClass(r)] != c {
				break
			}
			start -= n
		}
		for i := start; i < len(s); {
			ci, ni := segmentClassAt(s, i)
			if ci != c {
				break
			}
			if i+ni-start > maxRun {
				return i
			}
			i += ni
		}
	}
	return len(s)
}

// segmentClassAt returns the class of segment of the character at s[i:] and
// its length.
func segmentClassAt(s string, i int) (uint8, int) {
	c, n := classAt(s, i)
	return segmentClass[c&(1<<6-1)], n
}

// segmentClass maps class bits to the classes of segment: the largest bit of
// cS, cU|cW and cN that is set, or 0.
var segmentClass = func() (t [1 << 6]uint8) {
	for c := range t {
		switch {
		case c&int(cS) != 0:
			t[c] = cS
		case c&int(cU|cW) != 0:
			t[c] = cU | cW
		case c&int(cN) != 0:
			t[c] = cN
		}
	}
	return t
}()

// ValidUTF8 returns s with each maximal ill-formed subsequence replaced by
// U+FFFD, as Python's bytes.decode("utf-8", "replace") does.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
			n = maximalSubpart(s)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// maximalSubpart returns the length of the longest prefix of s that starts
// a well-formed UTF-8 sequence without completing it (at least 1).
func maximalSubpart(s string) int {
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch c := s[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(s); i++ {
		c := s[i]
		if i == 1 && (c < lo || c > hi) || i > 1 && (c < 0x80 || c > 0xBF) {
			break
		}
	}
	return i
}

// Message is one chat message as the counter needs it.
type Message struct {
	Role    string
	Name    string
	Content string
}

// Per-message formatting overhead of OpenAI's chat format: every message is
// wrapped in <|start|>{role}\n…<|end|> (3 tokens), a name costs 1 more, and the
// reply is primed with <|start|>assistant<|message|> (3 tokens).
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensReply      = 3
)

// CountChat returns the prompt tokens of a chat request made of msgs. It
// allocates no more than Count does.
func CountChat(model string, msgs []Message) int {
	if len(msgs) == 0 {
		return 0
	}
	n := tokensReply
	for _, m := range msgs {
		n += tokensPerMessage + Count(model, m.Role) + Count(model, m.Content)
		if m.Name != "" {
			n += tokensPerName + Count(model, m.Name)
		}
	}
	return n
}

// Tool definitions are rendered by OpenAI into a hidden system message in a
// TypeScript-like form that is not published. CountTools approximates it:
// the tokens of each function's name, description and JSON parameters
// schema, plus toolOverhead per tool and toolsOverhead once. It is an
// estimate (typically within a few tokens per tool), used only when the
// upstream reports no usage.
const (
	toolOverhead  = 8
	toolsOverhead = 12
)

// Tool is one function tool as the counter needs it.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
}

// CountTools returns the approximate prompt tokens that tools add.
func CountTools(model string, tools []Tool) int {
	if len(tools) == 0 {
		return 0
	}
	n := toolsOverhead
	for _, t := range tools {
		n += toolOverhead + Count(model, t.Name) + Count(model, t.Description) + Count(model, string(t.Parameters))
	}
	return n
}
