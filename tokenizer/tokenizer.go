// Package tokenizer counts tokens the way OpenAI's tiktoken does, with the
// vocabularies embedded in the binary (nothing is downloaded at run time).
package tokenizer

import (
	"strings"
	"sync"

	tiktoken "github.com/tiktoken-go/tokenizer"
)

// Encoding names.
const (
	O200kBase  = "o200k_base"
	Cl100kBase = "cl100k_base"
)

// DefaultEncoding is used for models llmscope does not know: the encoding of
// OpenAI's current model families.
const DefaultEncoding = O200kBase

var codecs = map[string]func() tiktoken.Codec{
	O200kBase:  sync.OnceValue(func() tiktoken.Codec { c, _ := tiktoken.Get(tiktoken.O200kBase); return c }),
	Cl100kBase: sync.OnceValue(func() tiktoken.Codec { c, _ := tiktoken.Get(tiktoken.Cl100kBase); return c }),
}

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

// Count returns the number of tokens of text under model's encoding.
func Count(model, text string) int {
	if text == "" {
		return 0
	}
	n, err := codecs[EncodingFor(model)]().Count(text)
	if err != nil {
		// Counting only fails on invalid UTF-8; fall back to a byte estimate.
		return (len(text) + 3) / 4
	}
	return n
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

// CountChat returns the prompt tokens of a chat request made of msgs.
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
