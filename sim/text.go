package sim

import (
	"strings"
	"sync"

	"llmscope/tokenizer"
)

// words is the fixed vocabulary simulated answers are drawn from. Changing it
// changes every answer (and the golden files): append-only is not enough,
// treat it as frozen.
var words = [...]string{
	"the", "model", "answer", "data", "token", "stream", "signal", "system",
	"latency", "cost", "prompt", "result", "value", "metric", "trace", "span",
	"request", "response", "budget", "cache", "window", "context", "vector",
	"layer", "weight", "sample", "batch", "queue", "store", "record", "export",
	"gateway", "proxy", "upstream", "client", "server", "simple", "quick",
	"steady", "careful", "useful", "clear", "bright", "quiet", "gentle", "bold",
	"small", "large", "early", "late", "fresh", "stable", "random", "exact",
	"rough", "smooth", "light", "heavy", "open", "close", "near", "far", "high",
	"low", "fast", "slow", "warm", "cool", "solid", "hollow", "narrow", "wide",
	"river", "mountain", "forest", "garden", "harbor", "bridge", "tower",
	"lantern", "compass", "journey", "morning", "evening", "season",
	"winter", "summer", "autumn", "spring", "ocean", "island", "valley",
	"meadow", "desert", "canyon", "cloud", "storm", "thunder", "rain", "snow",
	"wind", "stone", "metal", "glass", "paper", "ink", "thread", "cloth",
	"table", "chair", "door", "road", "path", "map", "book", "letter", "word",
	"story", "voice", "song", "rhythm", "pattern", "shape", "color", "number",
	"measure", "scale", "balance", "engine", "wheel",
	"circuit", "network", "node", "edge", "graph", "tree", "branch", "root",
	"leaf", "seed", "field", "harvest", "market", "price", "trade", "office",
	"team", "plan", "goal", "step", "stage", "phase", "cycle", "loop", "check",
	"test", "proof", "idea", "theory", "method", "approach", "question",
	"reason", "choice", "option", "detail", "summary", "report", "chart",
	"column", "row", "index", "key", "lock", "gate", "wall", "floor",
	"ceiling", "corner", "center", "border", "surface", "depth", "height",
	"length", "moment", "minute", "hour", "day", "week", "year", "history",
	"future", "present", "memory", "attention", "focus", "insight", "clarity",
	"and", "but", "so", "then", "because", "while", "after", "before", "with",
	"without", "under", "over", "through", "across", "between", "around",
	"always", "often", "rarely", "never", "perhaps", "indeed", "still", "again",
	"we", "they", "it", "this", "that", "every", "some", "many", "few", "one",
	"is", "was", "will", "can", "should", "might", "must", "makes", "finds",
	"keeps", "moves", "holds", "turns", "shows", "tells", "builds", "reads",
}

// A piece is one streamed unit of an answer: a word with its capitalisation,
// leading space and trailing punctuation, as an index into pieceText.
type piece uint16

const piecesPerWord = 12 // 2 (capital) × 2 (leading space) × 3 (punctuation)

func mkPiece(word int, capital, space bool, punct int) piece {
	p := word*piecesPerWord + punct*4
	if space {
		p += 2
	}
	if capital {
		p++
	}
	return piece(p)
}

// pieceText holds the text of every piece, built once so streaming a piece
// never allocates.
var pieceText = func() []string {
	out := make([]string, len(words)*piecesPerWord)
	for w, word := range words {
		for punct, suffix := range [3]string{"", ",", "."} {
			for _, space := range [2]bool{false, true} {
				for _, capital := range [2]bool{false, true} {
					s := word
					if capital {
						s = strings.ToUpper(s[:1]) + s[1:]
					}
					if space {
						s = " " + s
					}
					out[mkPiece(w, capital, space, punct)] = s + suffix
				}
			}
		}
	}
	return out
}()

// pieceTokens maps an encoding name to a lazily built table of the token
// count of every piece under that encoding.
var pieceTokens sync.Map // string → func() []uint8

// tokenTable returns the per-piece token counts under model's encoding. The
// pieces split on the tokenizers' pre-tokenisation boundaries (a word with its
// leading space, punctuation after it), so the tokens of an answer are the sum
// of its pieces' tokens.
func tokenTable(model string) []uint8 {
	enc := tokenizer.EncodingFor(model)
	if f, ok := pieceTokens.Load(enc); ok {
		return f.(func() []uint8)()
	}
	f, _ := pieceTokens.LoadOrStore(enc, sync.OnceValue(func() []uint8 {
		t := make([]uint8, len(pieceText))
		for i, s := range pieceText {
			t[i] = uint8(tokenizer.Count(model, s))
		}
		return t
	}))
	return f.(func() []uint8)()
}

// Answer length bounds, in words.
const (
	minWords = 20
	maxWords = 60
)

// plan is the deterministic answer to one request: words of the vocabulary,
// or, for JSON content and tool call arguments, custom pieces.
type plan struct {
	pieces    []piece  // visible answer, unless custom is set
	custom    []string // visible answer of a custom plan
	isCustom  bool
	tokens    int  // tokens of the visible answer
	reasoning int  // hidden reasoning tokens (reasoning models only)
	truncated bool // cut by the request's token limit
}

// len returns the number of streamed pieces of the answer.
func (p *plan) len() int {
	if p.isCustom {
		return len(p.custom)
	}
	return len(p.pieces)
}

// at returns the text of piece i.
func (p *plan) at(i int) string {
	if p.isCustom {
		return p.custom[i]
	}
	return pieceText[p.pieces[i]]
}

// text returns the visible answer.
func (p *plan) text() string {
	n := 0
	for i := range p.len() {
		n += len(p.at(i))
	}
	var b strings.Builder
	b.Grow(n)
	for i := range p.len() {
		b.WriteString(p.at(i))
	}
	return b.String()
}

// finishReason is "length" when the answer was cut by the token limit, else
// "stop".
func (p *plan) finishReason() string {
	if p.truncated {
		return "length"
	}
	return "stop"
}

// completionTokens is the visible plus the reasoning tokens, as the API
// reports completion (output) tokens.
func (p *plan) completionTokens() int { return p.tokens + p.reasoning }

// makePlan draws the answer for request hash h under model. Reasoning models
// also spend reasoningFactor× the visible answer's tokens on hidden
// reasoning. limit > 0 caps the completion tokens (visible + reasoning): the
// visible answer is cut at a piece boundary so that it and its reasoning fit.
func makePlan(h uint64, model string, limit int) plan {
	r := rng{s: h}
	n := minWords + r.intn(maxWords-minWords+1)
	all := make([]piece, n)
	left := 0
	for i := range all {
		capital := false
		if left == 0 {
			left = 5 + r.intn(8)
			capital = true
		}
		left--
		punct := 0
		switch {
		case left == 0 || i == n-1:
			punct = 2
		case left > 1 && r.intn(8) == 0:
			punct = 1
		}
		all[i] = mkPiece(r.intn(len(words)), capital, i > 0, punct)
	}
	factor := 1
	if isReasoningModel(model) {
		factor += reasoningFactor
	}
	table := tokenTable(model)
	p := plan{pieces: all}
	for i, pc := range all {
		c := int(table[pc])
		if limit > 0 && (p.tokens+c)*factor > limit {
			p.pieces, p.truncated = all[:i], true
			break
		}
		p.tokens += c
	}
	p.reasoning = (factor - 1) * p.tokens
	return p
}

// reasoningFactor is the reasoning tokens of a reasoning model per visible
// answer token.
const reasoningFactor = 2

// isReasoningModel reports whether model belongs to a family that reports
// reasoning tokens (o1, o3, o4, gpt-5).
func isReasoningModel(model string) bool {
	m := strings.ToLower(strings.TrimPrefix(model, "ft:"))
	for _, p := range [...]string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// makeCustomPlan plans an answer of the given text (JSON content or tool
// call arguments) under model, streamed in word-sized pieces. fixed tokens
// (a tool's name) are counted before the text. limit > 0 caps the
// completion tokens as in makePlan: the text is cut at a piece boundary so
// that it, fixed and its reasoning fit.
func makeCustomPlan(text, model string, limit, fixed int) plan {
	factor := 1
	if isReasoningModel(model) {
		factor += reasoningFactor
	}
	pieces := splitPieces(text)
	p := plan{custom: pieces, isCustom: true, tokens: fixed + tokenizer.Count(model, text)}
	if limit > 0 && p.tokens*factor > limit {
		n := longestFit(pieces, func(s string) bool { return (fixed+tokenizer.Count(model, s))*factor <= limit })
		p.custom, p.truncated = pieces[:n], true
		p.tokens = fixed + tokenizer.Count(model, strings.Join(p.custom, ""))
	}
	p.reasoning = (factor - 1) * p.tokens
	return p
}

// longestFit returns the largest n such that the first n pieces, joined,
// fit; token counts grow with the prefix, so a binary search finds it.
func longestFit(pieces []string, fits func(string) bool) int {
	lo, hi := 0, len(pieces) // the answer lies in [lo, hi]
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(strings.Join(pieces[:mid], "")) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// splitPieces splits text into streamed pieces the way a tokenizer splits
// words: a word with its leading space, or a run of punctuation. Bytes of
// multi-byte characters count as word bytes, so no character is split.
func splitPieces(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		j := i
		if spaceBeforeWord(text, j) {
			j++
		}
		if isWordByte(text[j]) {
			for j < len(text) && isWordByte(text[j]) {
				j++
			}
		} else {
			for j < len(text) && !isWordByte(text[j]) && !spaceBeforeWord(text, j) {
				j++
			}
		}
		out = append(out, text[i:j])
		i = j
	}
	return out
}

func spaceBeforeWord(s string, i int) bool {
	return s[i] == ' ' && i+1 < len(s) && isWordByte(s[i+1])
}

func isWordByte(c byte) bool {
	return c >= 0x80 || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
