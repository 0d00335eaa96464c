package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"llmscope/tokenizer"
)

// contentText returns the text of a message content: a string, null, or an
// array of parts whose "text" fields are concatenated (non-text parts such
// as images count nothing).
func contentText(raw json.RawMessage) (string, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return "", nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("decode content string: %w", err)
		}
		return s, nil
	case '[':
		var parts []struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", fmt.Errorf("decode content parts: %w", err)
		}
		if len(parts) == 1 {
			return parts[0].Text, nil
		}
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		return b.String(), nil
	default:
		return "", errors.New("content must be a string, null or an array of parts")
	}
}

// firstByte returns the first non-space byte of raw, or 0.
func firstByte(raw json.RawMessage) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// chatPrompt is a decoded conversation: what the tokenizer counts and what
// the answer hash is computed from.
type chatPrompt struct {
	msgs []tokenizer.Message
}

func (p *chatPrompt) add(role, name, content string) {
	p.msgs = append(p.msgs, tokenizer.Message{Role: role, Name: name, Content: content})
}

// lastRole returns the role of the last message, or "".
func (p *chatPrompt) lastRole() string {
	if len(p.msgs) == 0 {
		return ""
	}
	return p.msgs[len(p.msgs)-1].Role
}

// hash returns the request hash of the conversation under seed and model.
func (p *chatPrompt) hash(seed int64, model string) uint64 {
	h := newHasher(seed, model)
	for _, m := range p.msgs {
		h.str(m.Role)
		h.sep()
		h.str(m.Name)
		h.sep()
		h.str(m.Content)
		h.sep()
	}
	return h.sum()
}

// tokens returns the prompt tokens of the conversation.
func (p *chatPrompt) tokens(model string) int { return tokenizer.CountChat(model, p.msgs) }

// textInput is one prompt of /v1/completions or one input of /v1/embeddings:
// either text or pre-tokenised ids.
type textInput struct {
	text   string
	tokens []int
	isIDs  bool
}

// count returns the tokens of in under model: its token count, or the length
// of a token array.
func (in textInput) count(model string) int {
	if in.isIDs {
		return len(in.tokens)
	}
	return tokenizer.Count(model, in.text)
}

// feed adds in to h.
func (in textInput) feed(h *hasher) {
	if in.isIDs {
		h.str("\x00ids")
		for _, t := range in.tokens {
			h.int(t)
		}
	} else {
		h.str(in.text)
	}
	h.sep()
}

// textInputs decodes a prompt or input field: a string, an array of
// strings, an array of token ids, or an array of token-id arrays.
func textInputs(raw json.RawMessage) ([]textInput, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode string: %w", err)
		}
		return []textInput{{text: s}}, nil
	case '[':
	default:
		return nil, errors.New("want a string, an array of strings or an array of token ids")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("decode array: %w", err)
	}
	if len(items) == 0 {
		return nil, nil
	}
	if c := firstByte(items[0]); c == '-' || (c >= '0' && c <= '9') {
		var ids []int
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, fmt.Errorf("decode token ids: %w", err)
		}
		return []textInput{{tokens: ids, isIDs: true}}, nil
	}
	out := make([]textInput, len(items))
	for i, item := range items {
		switch firstByte(item) {
		case '"':
			if err := json.Unmarshal(item, &out[i].text); err != nil {
				return nil, fmt.Errorf("decode item %d: %w", i, err)
			}
		case '[':
			out[i].isIDs = true
			if err := json.Unmarshal(item, &out[i].tokens); err != nil {
				return nil, fmt.Errorf("decode item %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("item %d: want a string or an array of token ids", i)
		}
	}
	return out, nil
}
