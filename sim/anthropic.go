package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"llmscope/tokenizer"
)

// Anthropic Messages (POST /v1/messages, /v1/messages/count_tokens).
//
// Prompt tokens are counted block by block, in the order Anthropic caches
// them (tools, then system, then messages): each text, thinking, tool_use
// (name and input) and tool_result block counts its text's tokens under the
// model's encoding, each message (and the system prompt) anthropicPerMessage
// more, the reply anthropicReply more; image and document blocks count
// nothing. count_tokens answers that total.
//
// Prompt caching: every block with cache_control ends a cached prefix (a
// cache_control on any tool ends one after all the tools). The
// longest such prefix this server has seen before for the same model and
// seed is read (cache_read_input_tokens); the rest up to the last breakpoint
// is written (cache_creation_input_tokens); input_tokens is what follows the
// last breakpoint, so the three add up to the prompt. Unlike the API there
// is no minimum cacheable length and no expiry (the memory is an LRU of
// promptCacheSize prefixes), so short test prompts show both.

// Token overheads of the Anthropic prompt count.
const (
	anthropicPerMessage = 3
	anthropicReply      = 3
)

// anthropicVersionHeader is the header every Messages request must carry.
const anthropicVersionHeader = "Anthropic-Version"

// requireAnthropicVersion answers 400 invalid_request_error, as the API
// does, when the anthropic-version header is missing.
func requireAnthropicVersion(x *exchange) bool {
	if x.r.Header.Get(anthropicVersionHeader) == "" {
		x.anthropicError(http.StatusBadRequest, "anthropic-version: header is required")
		return false
	}
	return true
}

type anthropicRequest struct {
	Model      string          `json:"model"`
	MaxTokens  *int            `json:"max_tokens"`
	System     json.RawMessage `json:"system"`
	Messages   []anthropicMsg  `json:"messages"`
	Tools      json.RawMessage `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
	Stream     bool            `json:"stream"`
	Thinking   *struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	TopK        *int     `json:"top_k"`
}

type anthropicMsg struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// anthropicBlock is one content block of a message or the system prompt.
type anthropicBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Thinking     string          `json:"thinking"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	Content      json.RawMessage `json:"content"`
	CacheControl *struct {
		TTL string `json:"ttl"`
	} `json:"cache_control"`
}

// text returns what the block counts and hashes.
func (b *anthropicBlock) text() string {
	switch b.Type {
	case "text":
		return b.Text
	case "thinking":
		return b.Thinking
	case "tool_use", "server_tool_use":
		return b.Name + string(compact(b.Input))
	case "tool_result":
		s, _ := contentText(b.Content)
		return s
	}
	return ""
}

// anthropicBlocks decodes a content or system field: a string (one text
// block) or an array of blocks.
func anthropicBlocks(raw json.RawMessage) ([]anthropicBlock, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode string: %w", err)
		}
		return []anthropicBlock{{Type: "text", Text: s}}, nil
	case '[':
		var bs []anthropicBlock
		if err := json.Unmarshal(raw, &bs); err != nil {
			return nil, fmt.Errorf("decode blocks: %w", err)
		}
		return bs, nil
	}
	return nil, fmt.Errorf("want a string or an array of content blocks")
}

// cacheBreak is the end of a cached prefix.
type cacheBreak struct {
	key    uint64 // hash of the prefix, model and seed
	tokens int    // prompt tokens up to and including the breakpoint
	ttl1h  bool   // cache_control.ttl is "1h"
}

// anthropicPrompt accumulates the blocks of a prompt: its running hash and
// token count, and its cache breakpoints.
type anthropicPrompt struct {
	model  string
	h      hasher
	tokens int
	breaks []cacheBreak
	last   string // role of the last message; "tool" when it carries a tool_result
}

func newAnthropicPrompt(seed int64, model string) *anthropicPrompt {
	return &anthropicPrompt{model: model, h: newHasher(seed, model)}
}

// add counts and hashes one segment; cache marks a breakpoint after it.
func (p *anthropicPrompt) add(text string, tokens int, cache bool, ttl string) {
	p.h.str(text)
	p.h.sep()
	p.tokens += tokens
	if cache {
		p.breaks = append(p.breaks, cacheBreak{key: p.h.sum() ^ saltCache, tokens: p.tokens, ttl1h: ttl == "1h"})
	}
}

// message adds a message (or the system prompt, role "system").
func (p *anthropicPrompt) message(role string, blocks []anthropicBlock) {
	p.add(role, anthropicPerMessage+tokenizer.Count(p.model, role), false, "")
	p.last = role
	for i := range blocks {
		b := &blocks[i]
		t := b.text()
		cc := b.CacheControl != nil
		ttl := ""
		if cc {
			ttl = b.CacheControl.TTL
		}
		p.add(t, tokenizer.Count(p.model, t), cc, ttl)
		if b.Type == "tool_result" && role == "user" {
			p.last = "tool"
		}
	}
}

// total returns the prompt tokens, the reply's overhead included.
func (p *anthropicPrompt) total() int { return p.tokens + anthropicReply }

const (
	saltCache     = 0xcace
	saltThinking  = 0x7b1ce
	saltSignature = 0x5191
)

// anthropicTools converts Anthropic tools ({name, description,
// input_schema}) to the flat function tools of shape, and reports whether
// any carries cache_control. Server tools (a type other than "custom") are
// kept out: the simulator never calls them.
func anthropicTools(raw json.RawMessage) (flat json.RawMessage, cache bool, bad *badRequest) {
	if absent(raw) {
		return nil, false, nil
	}
	var items []map[string]json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, false, invalidType("tools", "an array", raw)
	}
	b := []byte{'['}
	n := 0
	for i, m := range items {
		if !absent(m["cache_control"]) {
			cache = true
		}
		typ, _, err := stringField(m, "type", "tools."+strconv.Itoa(i)+".type")
		if err != nil {
			return nil, false, err
		}
		if typ != "" && typ != "custom" {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"type":"function","name":`...)
		b = append(b, orNull(m["name"])...)
		if d := m["description"]; !absent(d) {
			b = append(b, `,"description":`...)
			b = append(b, d...)
		}
		if s := m["input_schema"]; !absent(s) {
			b = append(b, `,"parameters":`...)
			b = append(b, s...)
		}
		b = append(b, '}')
	}
	if n == 0 {
		return nil, cache, nil
	}
	return append(b, ']'), cache, nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// anthropicToolChoice converts tool_choice ({"type":"auto"|"any"|"tool"|
// "none","name"}) to shape's form.
func anthropicToolChoice(raw json.RawMessage) (json.RawMessage, *badRequest) {
	if absent(raw) {
		return nil, nil
	}
	m, bad := object(raw, "tool_choice")
	if bad != nil {
		return nil, bad
	}
	typ, bad := requiredString(m, "type", "tool_choice.type")
	if bad != nil {
		return nil, bad
	}
	switch typ {
	case "auto":
		return json.RawMessage(`"auto"`), nil
	case "any":
		return json.RawMessage(`"required"`), nil
	case "none":
		return json.RawMessage(`"none"`), nil
	case "tool":
		name, bad := requiredString(m, "name", "tool_choice.name")
		if bad != nil {
			return nil, bad
		}
		return append(appendString([]byte(`{"type":"function","name":`), name), '}'), nil
	}
	return nil, invalidValue("tool_choice.type", "'"+typ+"'. Supported values are: 'auto', 'any', 'tool' and 'none'.")
}

// anthropicParsed is a decoded and counted Messages request.
type anthropicParsed struct {
	req    anthropicRequest
	prompt *anthropicPrompt
	shape  *shape
}

// parseAnthropic decodes, validates and counts a Messages request;
// countOnly skips what count_tokens does not take (max_tokens). It
// answers 400 and returns false on invalid input.
func (s *Server) parseAnthropic(x *exchange, countOnly bool) (anthropicParsed, bool) {
	var a anthropicParsed
	req := &a.req
	if !x.decode(req) {
		return a, false
	}
	if req.Model == "" {
		x.anthropicError(http.StatusBadRequest, "model: Field required")
		return a, false
	}
	if !countOnly {
		switch {
		case req.MaxTokens == nil:
			x.anthropicError(http.StatusBadRequest, "max_tokens: Field required")
			return a, false
		case *req.MaxTokens < 1:
			x.anthropicError(http.StatusBadRequest, "max_tokens: Input should be greater than or equal to 1")
			return a, false
		}
		if msg := checkAnthropicSampling(req); msg != "" {
			x.anthropicError(http.StatusBadRequest, msg)
			return a, false
		}
	}
	if len(req.Messages) == 0 {
		x.anthropicError(http.StatusBadRequest, "messages: at least one message is required")
		return a, false
	}
	tools, toolCache, bad := anthropicTools(req.Tools)
	if bad == nil {
		var choice json.RawMessage
		choice, bad = anthropicToolChoice(req.ToolChoice)
		if bad == nil {
			a.prompt = newAnthropicPrompt(s.cfg.Seed, req.Model)
			a.shape, bad = anthropicShape(a.prompt, req, tools, choice, toolCache)
		}
	}
	if bad != nil {
		x.anthropicError(http.StatusBadRequest, bad.msg)
		return a, false
	}
	return a, true
}

// anthropicShape counts the tools, system prompt and messages into p and
// returns the shape of the answer: a tool call unless the last message
// carries a tool_result (as for OpenAI's tool messages).
func anthropicShape(p *anthropicPrompt, req *anthropicRequest, tools, choice json.RawMessage, toolCache bool) (*shape, *badRequest) {
	// Tools come first in the cached prefix.
	if len(tools) > 0 {
		probe, bad := newShape(tools, nil, nil, "user", true, "")
		if bad != nil {
			return nil, bad
		}
		p.add(string(probe.toolsRaw), probe.promptTokens(req.Model), toolCache, "")
	}
	system, err := anthropicBlocks(req.System)
	if err != nil {
		return nil, &badRequest{msg: "system: " + err.Error()}
	}
	if len(system) > 0 {
		p.message("system", system)
	}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return nil, &badRequest{msg: "messages." + strconv.Itoa(i) + ".role: Input should be 'user' or 'assistant'"}
		}
		blocks, err := anthropicBlocks(m.Content)
		if err != nil {
			return nil, &badRequest{msg: "messages." + strconv.Itoa(i) + ".content: " + err.Error()}
		}
		p.message(m.Role, blocks)
	}
	return newShape(tools, choice, nil, p.last, true, "")
}

// checkAnthropicSampling validates temperature (0 to 1), top_p (0 to 1),
// top_k and thinking as the API does; "" when valid.
func checkAnthropicSampling(req *anthropicRequest) string {
	for _, c := range []struct {
		name string
		v    *float64
	}{{"temperature", req.Temperature}, {"top_p", req.TopP}} {
		switch {
		case c.v == nil:
		case *c.v < 0:
			return c.name + ": Input should be greater than or equal to 0"
		case *c.v > 1:
			return c.name + ": Input should be less than or equal to 1"
		}
	}
	if req.TopK != nil && *req.TopK < 0 {
		return "top_k: Input should be greater than or equal to 0"
	}
	if t := req.Thinking; t != nil && t.Type == "enabled" {
		if t.BudgetTokens < 1024 {
			return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
		}
		if t.BudgetTokens >= *req.MaxTokens {
			return "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
		}
	}
	return ""
}

// countMessageTokens serves POST /v1/messages/count_tokens:
// {"input_tokens":N}, the prompt tokens a Messages request would report
// in total (input, cache writes and cache reads together).
func (s *Server) countMessageTokens(x *exchange) {
	a, ok := s.parseAnthropic(x, true)
	if !ok {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(*b, `{"input_tokens":`...)
	*b = appendInt(*b, a.prompt.total())
	*b = append(*b, "}\n"...)
	x.writeJSON(http.StatusOK, *b)
}

// anthropicUsage is the token accounting of one Messages answer.
type anthropicUsage struct {
	input, cacheWrite, cacheRead, output int
	ttl1h                                bool // the writes are 1-hour cache writes
}

// cacheUsage reads and records the prompt's cached prefixes (see the
// package comment above) and returns its input accounting.
func (s *Server) cacheUsage(p *anthropicPrompt) anthropicUsage {
	total := p.total()
	u := anthropicUsage{input: total}
	if len(p.breaks) == 0 {
		return u
	}
	for i := len(p.breaks) - 1; i >= 0; i-- {
		if _, ok := s.cache.get(p.breaks[i].key); ok {
			u.cacheRead = p.breaks[i].tokens
			break
		}
	}
	last := p.breaks[len(p.breaks)-1]
	u.cacheWrite = last.tokens - u.cacheRead
	u.ttl1h = last.ttl1h
	u.input = total - last.tokens
	for _, b := range p.breaks {
		s.cache.put(b.key, b.tokens)
	}
	return u
}

// appendAnthropic appends the usage object with output as output_tokens.
func (u anthropicUsage) appendAnthropic(b []byte, output int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.input)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = appendInt(b, u.cacheWrite)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = appendInt(b, u.cacheRead)
	w5, w1 := u.cacheWrite, 0
	if u.ttl1h {
		w5, w1 = 0, u.cacheWrite
	}
	b = append(b, `,"cache_creation":{"ephemeral_5m_input_tokens":`...)
	b = appendInt(b, w5)
	b = append(b, `,"ephemeral_1h_input_tokens":`...)
	b = appendInt(b, w1)
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, output)
	return append(b, `,"service_tier":"standard"}`...)
}

// anthropicAnswer is everything needed to write one Messages answer.
type anthropicAnswer struct {
	model     string
	id        string // msg_01…
	thinking  *plan  // the thinking block's text; nil when thinking is off
	signature string
	plan      plan      // the text, or the tool_use input
	call      *toolCall // the tool_use block, with toolID as its id
	toolID    string
	usage     anthropicUsage
	sendUsage bool
	pace      pacer
}

// stopReason is max_tokens when the limit cut the answer, else tool_use or
// end_turn.
func (a *anthropicAnswer) stopReason() string {
	switch {
	case a.plan.truncated:
		return "max_tokens"
	case a.call != nil:
		return "tool_use"
	}
	return "end_turn"
}

// pieces returns the streamed pieces of the answer, thinking included.
func (a *anthropicAnswer) pieces() int {
	n := a.plan.len()
	if a.thinking != nil {
		n += a.thinking.len()
	}
	return n
}

// messages serves POST /v1/messages.
func (s *Server) messages(x *exchange) {
	p, ok := s.parseAnthropic(x, false)
	if !ok {
		return
	}
	req := &p.req
	h := p.shape.hash(p.prompt.h.sum())
	a := anthropicAnswer{
		model:     req.Model,
		id:        "msg_01" + base62ID(h^saltMsgID, 22),
		usage:     s.cacheUsage(p.prompt),
		sendUsage: !x.fault.noUsage,
		pace:      s.modelPacer(h, req.Model),
	}
	limit := *req.MaxTokens
	if t := req.Thinking; t != nil && (t.Type == "enabled" || t.Type == "adaptive") {
		budget := t.BudgetTokens
		if t.Type == "adaptive" || budget >= limit {
			budget = limit - 1
		}
		th := makePlan(h^saltThinking, req.Model, max(budget, 1))
		a.thinking = &th
		a.signature = signature(h)
		limit -= th.tokens
	}
	if limit < 1 {
		a.plan = plan{truncated: true}
	} else {
		a.plan, a.call = p.shape.plan(h, req.Model, limit)
	}
	if a.call != nil {
		a.toolID = "toolu_01" + callID(h)[len("call_"):len("call_")+22]
	}
	a.usage.output = a.plan.tokens
	if a.thinking != nil {
		a.usage.output += a.thinking.tokens
	}
	x.w.Header().Set("Request-Id", "req_011"+base62ID(h^saltReq, 21))
	if req.Stream {
		if err := a.stream(x); err != nil {
			s.log.Debug("sim: messages stream ended early", "err", err)
		}
		return
	}
	if sleep(x.ctx, a.pace.total(a.pieces())) != nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = a.appendMessage(*b)
	x.writeJSON(http.StatusOK, *b)
}

// signature returns the deterministic signature of a thinking block.
func signature(h uint64) string {
	r := rng{s: h ^ saltSignature}
	raw := make([]byte, 96)
	for i := range raw {
		raw[i] = byte(r.next())
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// toolInput returns the tool_use input of a finished answer: the arguments,
// or {} when the token limit cut them short of valid JSON.
func (a *anthropicAnswer) toolInput() string {
	t := a.plan.text()
	if !json.Valid([]byte(t)) {
		return "{}"
	}
	return t
}

// appendMessage appends the non-streamed Message object.
func (a *anthropicAnswer) appendMessage(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","type":"message","role":"assistant","model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"content":[`...)
	if a.thinking != nil {
		b = append(b, `{"type":"thinking","thinking":`...)
		b = appendString(b, a.thinking.text())
		b = append(b, `,"signature":"`...)
		b = append(b, a.signature...)
		b = append(b, `"},`...)
	}
	if a.call != nil {
		b = a.appendToolUse(b, a.toolInput())
	} else {
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, a.plan.text())
		b = append(b, '}')
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, a.stopReason()...)
	b = append(b, `","stop_sequence":null`...)
	if a.sendUsage {
		b = append(b, `,"usage":`...)
		b = a.usage.appendAnthropic(b, a.usage.output)
	}
	return append(b, "}\n"...)
}

// appendToolUse appends the tool_use block with input as raw JSON.
func (a *anthropicAnswer) appendToolUse(b []byte, input string) []byte {
	b = append(b, `{"type":"tool_use","id":"`...)
	b = append(b, a.toolID...)
	b = append(b, `","name":`...)
	b = appendString(b, a.call.name)
	b = append(b, `,"input":`...)
	b = append(b, input...)
	return append(b, '}')
}
