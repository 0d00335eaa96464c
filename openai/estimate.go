package openai

import (
	"strings"

	"github.com/tidwall/gjson"

	"llmscope/tokenizer"
)

// EstimateInputTokens counts the prompt tokens of a request body for model,
// for when the upstream reported no usage: chat messages with OpenAI's
// per-message overhead; prompts and inputs as plain text.
func EstimateInputTokens(op, model string, body []byte) int64 {
	if !validJSON(body) {
		return 0
	}
	root := gjson.Parse(str(body))
	switch {
	case root.Get("messages").IsArray():
		var msgs []tokenizer.Message
		root.Get("messages").ForEach(func(_, m gjson.Result) bool {
			msgs = append(msgs, tokenizer.Message{
				Role: m.Get("role").Str, Name: m.Get("name").Str, Content: contentText(m.Get("content")),
			})
			return true
		})
		return int64(tokenizer.CountChat(model, msgs) + tokenizer.CountTools(model, tools(root.Get("tools"))))
	case root.Get("input").Exists() || root.Get("prompt").Exists():
		v := root.Get("input")
		if !v.Exists() {
			v = root.Get("prompt")
		}
		n := int64(tokenizer.Count(model, root.Get("instructions").Str) + tokenizer.CountTools(model, tools(root.Get("tools"))))
		if v.Type == gjson.String {
			return n + int64(tokenizer.Count(model, v.Str))
		}
		v.ForEach(func(_, item gjson.Result) bool {
			switch {
			case item.Type == gjson.String:
				n += int64(tokenizer.Count(model, item.Str))
			case item.Type == gjson.Number: // a token array
				n++
			case item.IsArray() && item.Get("0").Type == gjson.Number:
				n += int64(len(item.Array()))
			case item.IsObject(): // a Responses API message
				n += 3 + int64(tokenizer.Count(model, contentText(item.Get("content"))))
			}
			return true
		})
		return n
	}
	return 0
}

// contentText joins the text of a message content: a string, or an array of
// parts whose text is in "text".
func contentText(c gjson.Result) string {
	if c.Type == gjson.String {
		return c.Str
	}
	var b strings.Builder
	c.ForEach(func(_, part gjson.Result) bool {
		b.WriteString(part.Get("text").Str)
		return true
	})
	return b.String()
}

// EstimateOutputTokens counts the tokens of generated text for model.
func EstimateOutputTokens(model, text string) int64 {
	return int64(tokenizer.Count(model, text))
}

// tools reads function tool definitions in either shape: Chat Completions
// ({"type":"function","function":{…}}) or Responses ({"type":"function",…}).
func tools(v gjson.Result) []tokenizer.Tool {
	var out []tokenizer.Tool
	v.ForEach(func(_, t gjson.Result) bool {
		fn := t.Get("function")
		if !fn.Exists() {
			fn = t
		}
		out = append(out, tokenizer.Tool{
			Name:        fn.Get("name").Str,
			Description: fn.Get("description").Str,
			Parameters:  []byte(fn.Get("parameters").Raw),
		})
		return true
	})
	return out
}
