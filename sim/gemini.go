package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"llmscope/tokenizer"
)

// Gemini (POST /v1beta/models/{model}:generateContent,
// :streamGenerateContent and :countTokens). The model comes from the path;
// an API key (x-goog-api-key or ?key=) is accepted and ignored. Request
// members may be spelled in camelCase or snake_case, as the API accepts
// (Google's Python SDK sends both kinds in one request).
//
// Prompt tokens are counted like a chat conversation (systemInstruction as
// the system message, role "model" as the assistant; a content's parts
// concatenated; functionCall and functionResponse parts count their name
// and JSON) plus the function declarations as tools. A prompt of at least
// minCachedPrompt tokens seen before reports cachedContentTokenCount, as
// Gemini's implicit caching does. Thinking happens when
// generationConfig.thinkingConfig is given with a thinkingBudget other than
// 0 (or a thinkingLevel): its tokens are thoughtsTokenCount, within the
// budget and within maxOutputTokens, which bounds thoughts and answer
// together; includeThoughts adds the thought summary as parts with
// "thought":true.

type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction"`
	Tools             json.RawMessage `json:"tools"`
	ToolConfig        *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig *geminiGenerationConfig `json:"generationConfig"`
}

type geminiContent struct {
	Role  string       `json:"role"`
	Parts []geminiPart `json:"parts"`
}

type geminiPart struct {
	Text         string `json:"text"`
	FunctionCall *struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
	FunctionResponse *struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
}

type geminiGenerationConfig struct {
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"topP"`
	MaxOutputTokens    *int            `json:"maxOutputTokens"`
	CandidateCount     *int            `json:"candidateCount"`
	ResponseMimeType   string          `json:"responseMimeType"`
	ResponseSchema     json.RawMessage `json:"responseSchema"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
	ThinkingConfig     *struct {
		ThinkingBudget  *int   `json:"thinkingBudget"`
		IncludeThoughts bool   `json:"includeThoughts"`
		ThinkingLevel   string `json:"thinkingLevel"`
	} `json:"thinkingConfig"`
}

// geminiRoute routes /v1beta/models/{model}:{method} (generateContent,
// streamGenerateContent, countTokens, embedContent, batchEmbedContents)
// and GET /v1beta/models and /v1beta/models/{model}, the same under
// /v1alpha and (methods only) /v1; every such path answers errors in
// Gemini's shape.
func geminiRoute(x *exchange, p string) (route, bool) {
	rt := route{api: apiGemini, method: http.MethodPost}
	_, p, _ = strings.Cut(p[1:], "/") // the version: v1beta, v1alpha or v1
	p = "/" + p
	if p == "/models" {
		rt.method, rt.handle = http.MethodGet, (*Server).listGeminiModels
		return rt, true
	}
	rest, ok := strings.CutPrefix(p, "/models/")
	i := strings.LastIndexByte(rest, ':')
	if ok && i < 0 && rest != "" && !strings.Contains(rest, "/") {
		x.model = rest
		rt.method, rt.handle = http.MethodGet, (*Server).getGeminiModel
		return rt, true
	}
	if !ok || i <= 0 {
		return rt, false
	}
	x.model = rest[:i]
	switch rest[i+1:] {
	case "embedContent":
		rt.handle = func(s *Server, x *exchange) { s.embedContent(x, false) }
	case "batchEmbedContents":
		rt.handle = func(s *Server, x *exchange) { s.embedContent(x, true) }
	case "generateContent":
		rt.handle = func(s *Server, x *exchange) { s.generateContent(x, false) }
	case "streamGenerateContent":
		rt.handle = func(s *Server, x *exchange) { s.generateContent(x, true) }
	case "countTokens":
		rt.handle = (*Server).countGeminiTokens
	default:
		return rt, false
	}
	return rt, true
}

// geminiParsed is a decoded and counted generateContent request.
type geminiParsed struct {
	req    geminiRequest
	prompt chatPrompt
	shape  *shape
	tokens int // prompt tokens, tools included
	hash   uint64
}

// parseGemini validates and counts req; it answers 400 and returns false
// on invalid input.
func (s *Server) parseGemini(x *exchange, g *geminiParsed) bool {
	req := &g.req
	if len(req.Contents) == 0 {
		x.geminiError(http.StatusBadRequest, "* GenerateContentRequest.contents: contents is not specified\n")
		return false
	}
	if sys := req.SystemInstruction; sys != nil {
		g.prompt.add("system", "", geminiText(sys.Parts))
	}
	last := ""
	for _, c := range req.Contents {
		role := c.Role
		switch role {
		case "", "user":
			role = "user"
		case "model":
			role = "assistant"
		default:
			x.geminiError(http.StatusBadRequest, "Please use a valid role: user, model.")
			return false
		}
		last = role
		for _, p := range c.Parts {
			if p.FunctionResponse != nil {
				last = "tool"
			}
		}
		g.prompt.add(role, "", geminiText(c.Parts))
	}
	if gc := req.GenerationConfig; gc != nil {
		if bad := checkTemperature(gc.Temperature, gc.TopP); bad != nil {
			x.geminiError(http.StatusBadRequest, bad.msg)
			return false
		}
		if gc.MaxOutputTokens != nil && *gc.MaxOutputTokens < 1 {
			x.geminiError(http.StatusBadRequest, "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive.\n")
			return false
		}
	}
	tools, choice, format := geminiShape(req)
	sh, bad := newShape(tools, choice, format, last, true, "responseSchema")
	if bad != nil {
		x.geminiError(http.StatusBadRequest, bad.msg)
		return false
	}
	g.shape = sh
	g.hash = sh.hash(g.prompt.hash(s.cfg.Seed, x.model))
	g.tokens = s.promptTokens(g.hash, func() int { return g.prompt.tokens(x.model) + sh.promptTokens(x.model) })
	return true
}

// geminiText returns what a content's parts count and hash: texts,
// function calls and function responses, concatenated.
func geminiText(parts []geminiPart) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
		if fc := p.FunctionCall; fc != nil {
			b.WriteString(fc.Name)
			b.Write(compact(fc.Args))
		}
		if fr := p.FunctionResponse; fr != nil {
			b.WriteString(fr.Name)
			b.Write(compact(fr.Response))
		}
	}
	return b.String()
}

// geminiShape converts the request's function declarations, function
// calling mode and JSON response settings to shape's flat forms. Schema
// type names (Gemini's OBJECT, STRING, …) are lower-cased.
func geminiShape(req *geminiRequest) (tools, choice, format json.RawMessage) {
	var groups []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Description          string          `json:"description"`
			Parameters           json.RawMessage `json:"parameters"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
	}
	if !absent(req.Tools) && json.Unmarshal(req.Tools, &groups) == nil {
		b := []byte{'['}
		for _, g := range groups {
			for _, f := range g.FunctionDeclarations {
				if len(b) > 1 {
					b = append(b, ',')
				}
				b = append(b, `{"type":"function","name":`...)
				b = appendString(b, f.Name)
				if f.Description != "" {
					b = append(b, `,"description":`...)
					b = appendString(b, f.Description)
				}
				params := f.Parameters
				if absent(params) {
					params = f.ParametersJSONSchema
				}
				if !absent(params) {
					b = append(b, `,"parameters":`...)
					b = append(b, lowerTypes(params)...)
				}
				b = append(b, '}')
			}
		}
		if len(b) > 1 {
			tools = append(b, ']')
		}
	}
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		fc := tc.FunctionCallingConfig
		switch strings.ToUpper(fc.Mode) {
		case "ANY":
			choice = json.RawMessage(`"required"`)
			if len(fc.AllowedFunctionNames) == 1 {
				choice = append(appendString([]byte(`{"type":"function","name":`), fc.AllowedFunctionNames[0]), '}')
			}
		case "NONE":
			choice = json.RawMessage(`"none"`)
		}
	}
	if gc := req.GenerationConfig; gc != nil && gc.ResponseMimeType == "application/json" {
		schema := gc.ResponseJSONSchema
		if absent(schema) {
			schema = gc.ResponseSchema
		}
		if absent(schema) {
			format = json.RawMessage(`{"type":"json_object"}`)
		} else {
			format = append(append([]byte(`{"type":"json_schema","name":"response","schema":`), lowerTypes(schema)...), '}')
		}
	}
	return tools, choice, format
}

// lowerTypes returns the schema raw with every "type" member's string
// values lower-cased; raw unchanged when it is not valid JSON.
func lowerTypes(raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	out, err := json.Marshal(lowerTypeValues(v))
	if err != nil {
		return raw
	}
	return out
}

func lowerTypeValues(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if k == "type" {
				switch tv := e.(type) {
				case string:
					t[k] = strings.ToLower(tv)
					continue
				case []any:
					for i, s := range tv {
						if str, ok := s.(string); ok {
							tv[i] = strings.ToLower(str)
						}
					}
					continue
				}
			}
			t[k] = lowerTypeValues(e)
		}
	case []any:
		for i, e := range t {
			t[i] = lowerTypeValues(e)
		}
	}
	return v
}

// geminiAnswer is everything needed to write one generateContent answer.
type geminiAnswer struct {
	model        string
	responseID   string
	thoughts     *plan // nil when the model does not think
	showThoughts bool  // includeThoughts: the thoughts are parts of the answer
	plan         plan  // the text, or the function call's args
	call         *toolCall
	prompt       int
	cached       int
	sendUsage    bool
	pace         pacer
}

// generateContent serves :generateContent, and :streamGenerateContent when
// stream is set: SSE with ?alt=sse, else one JSON array of the chunks.
func (s *Server) generateContent(x *exchange, stream bool) {
	var g geminiParsed
	if !x.decodeGemini(&g.req) || !s.parseGemini(x, &g) {
		return
	}
	h, model := g.hash, x.model
	a := geminiAnswer{
		model:      model,
		responseID: base62ID(h^saltMsgID, 22),
		prompt:     g.tokens,
		cached:     s.cachedTokens(h, g.tokens),
		sendUsage:  !x.fault.noUsage,
		pace:       s.modelPacer(h, model),
	}
	limit := 0
	gc := g.req.GenerationConfig
	if gc != nil && gc.MaxOutputTokens != nil {
		limit = *gc.MaxOutputTokens
	}
	if gc != nil && gc.ThinkingConfig != nil {
		tc := gc.ThinkingConfig
		if tc.ThinkingBudget == nil || *tc.ThinkingBudget != 0 || tc.ThinkingLevel != "" {
			budget := limit
			if tc.ThinkingBudget != nil && *tc.ThinkingBudget > 0 && (budget == 0 || *tc.ThinkingBudget < budget) {
				budget = *tc.ThinkingBudget
			}
			th := makePlan(h^saltThinking, model, budget)
			a.thoughts, a.showThoughts = &th, tc.IncludeThoughts
			if limit > 0 {
				limit -= th.tokens
			}
		}
	}
	if limit < 0 || limit == 0 && gc != nil && gc.MaxOutputTokens != nil {
		a.plan = plan{truncated: true} // the thoughts used up maxOutputTokens
	} else {
		a.plan, a.call = g.shape.plan(h, model, limit)
	}
	if !stream {
		if sleep(x.ctx, a.pace.total(a.plan.len()+a.thoughtPieces())) != nil {
			return
		}
		b := s.getBuf()
		defer s.putBuf(b)
		*b = a.appendResponse(*b, a.allParts(), true, a.plan.tokens, a.thoughtTokens())
		x.writeJSON(http.StatusOK, *b)
		return
	}
	if err := a.stream(x); err != nil {
		s.log.Debug("sim: gemini stream ended early", "err", err)
	}
}

// thoughtPieces returns the streamed pieces of the shown thoughts.
func (a *geminiAnswer) thoughtPieces() int {
	if a.thoughts == nil || !a.showThoughts {
		return 0
	}
	return a.thoughts.len()
}

func (a *geminiAnswer) thoughtTokens() int {
	if a.thoughts == nil {
		return 0
	}
	return a.thoughts.tokens
}

// finishReason is MAX_TOKENS when maxOutputTokens cut the answer, else STOP
// (function calls included, as Gemini reports them).
func (a *geminiAnswer) finishReason() string {
	if a.plan.truncated {
		return "MAX_TOKENS"
	}
	return "STOP"
}

// allParts returns the parts of the whole answer as raw JSON: the thought
// summary when shown, then the text or the function call; no text part
// when the answer is empty (cut by maxOutputTokens before its first token).
func (a *geminiAnswer) allParts() []byte {
	var b []byte
	if a.showThoughts {
		b = appendString(append(b, `{"text":`...), a.thoughts.text())
		b = append(b, `,"thought":true},`...)
	}
	if a.call != nil {
		args := a.plan.text()
		if !json.Valid([]byte(args)) {
			args = "{}"
		}
		return a.appendCall(b, args)
	}
	if a.plan.len() == 0 {
		return bytes.TrimSuffix(b, []byte{','})
	}
	b = appendString(append(b, `{"text":`...), a.plan.text())
	return append(b, '}')
}

func (a *geminiAnswer) appendCall(b []byte, args string) []byte {
	b = append(b, `{"functionCall":{"name":`...)
	b = appendString(b, a.call.name)
	b = append(b, `,"args":`...)
	b = append(b, args...)
	return append(b, "}}"...)
}

// appendResponse appends a GenerateContentResponse with the given parts
// (raw JSON), finishReason when final, and usage counting candidates
// answer tokens and thoughts thought tokens so far.
func (a *geminiAnswer) appendResponse(b, parts []byte, final bool, candidates, thoughts int) []byte {
	b = append(b, `{"candidates":[{"content":{`...)
	if len(parts) > 0 { // an answer cut before its first token has none
		b = append(b, `"parts":[`...)
		b = append(b, parts...)
		b = append(b, `],`...)
	}
	b = append(b, `"role":"model"}`...)
	if final {
		b = append(b, `,"finishReason":"`...)
		b = append(b, a.finishReason()...)
		b = append(b, '"')
	}
	b = append(b, `,"index":0}]`...)
	if a.sendUsage {
		b = append(b, `,"usageMetadata":`...)
		b = a.appendUsage(b, candidates, thoughts)
	}
	b = append(b, `,"modelVersion":`...)
	b = appendString(b, a.model)
	b = append(b, `,"responseId":"`...)
	b = append(b, a.responseID...)
	return append(b, "\"}\n"...)
}

// appendUsage appends usageMetadata: totalTokenCount is the prompt, the
// candidates and the thoughts; cachedContentTokenCount (part of the prompt)
// and thoughtsTokenCount appear only when not zero.
func (a *geminiAnswer) appendUsage(b []byte, candidates, thoughts int) []byte {
	b = append(b, `{"promptTokenCount":`...)
	b = appendInt(b, a.prompt)
	b = append(b, `,"candidatesTokenCount":`...)
	b = appendInt(b, candidates)
	b = append(b, `,"totalTokenCount":`...)
	b = appendInt(b, a.prompt+candidates+thoughts)
	if a.cached > 0 {
		b = append(b, `,"cachedContentTokenCount":`...)
		b = appendInt(b, a.cached)
	}
	b = append(b, `,"promptTokensDetails":[{"modality":"TEXT","tokenCount":`...)
	b = appendInt(b, a.prompt)
	b = append(b, `}]`...)
	if a.cached > 0 {
		b = append(b, `,"cacheTokensDetails":[{"modality":"TEXT","tokenCount":`...)
		b = appendInt(b, a.cached)
		b = append(b, `}]`...)
	}
	if thoughts > 0 {
		b = append(b, `,"thoughtsTokenCount":`...)
		b = appendInt(b, thoughts)
	}
	return append(b, '}')
}

// stream writes the answer as chunks, each a whole GenerateContentResponse
// with cumulative usageMetadata: one per shown thought piece ("thought":
// true parts), one per text piece (a function call is one chunk), the last
// carrying finishReason. With ?alt=sse they are data-only SSE events;
// otherwise (Gemini's default) one JSON array of them, written at once.
func (a *geminiAnswer) stream(x *exchange) error {
	useSSE := x.r.URL.Query().Get("alt") == "sse"
	var st *sse
	if useSSE {
		st = x.newSSE(a.pace)
		if err := st.wait(a.pace.first()); err != nil {
			return err
		}
	} else if err := sleep(x.ctx, a.pace.total(a.plan.len()+a.thoughtPieces())); err != nil {
		return err
	}
	var array []byte
	buf := make([]byte, 0, 512)
	var parts []byte
	sent := 0
	emit := func(final bool, candidates, thoughts int) error {
		buf = a.appendResponse(buf[:0], parts, final, candidates, thoughts)
		if !useSSE {
			if len(array) > 0 {
				array = append(array, ",\r\n"...)
			}
			array = append(array, buf[:len(buf)-1]...)
			return nil
		}
		if sent > 0 {
			if err := st.wait(a.pace.next()); err != nil {
				return err
			}
		}
		sent++
		return st.send("", buf[:len(buf)-1])
	}
	thoughts := a.thoughtTokens()
	if a.showThoughts {
		for i := range a.thoughts.len() {
			parts = appendString(append(parts[:0], `{"text":`...), a.thoughts.at(i))
			parts = append(parts, `,"thought":true}`...)
			if err := emit(false, 0, prefixTokens(a.thoughts, a.model, i+1)); err != nil {
				return err
			}
		}
	}
	switch n := a.plan.len(); {
	case a.call != nil:
		args := a.plan.text()
		if !json.Valid([]byte(args)) {
			args = "{}"
		}
		parts = a.appendCall(parts[:0], args)
		if err := emit(true, a.plan.tokens, thoughts); err != nil {
			return err
		}
	case n == 0:
		parts = parts[:0]
		if err := emit(true, 0, thoughts); err != nil {
			return err
		}
	default:
		for i := range n {
			parts = appendString(append(parts[:0], `{"text":`...), a.plan.at(i))
			parts = append(parts, '}')
			if err := emit(i == n-1, prefixTokens(&a.plan, a.model, i+1), thoughts); err != nil {
				return err
			}
		}
	}
	if !useSSE {
		out := append(append([]byte{'['}, array...), "]\n"...)
		x.writeJSON(http.StatusOK, out)
	}
	return nil
}

// prefixTokens returns the tokens of the first n pieces of p.
func prefixTokens(p *plan, model string, n int) int {
	if n >= p.len() {
		return p.tokens
	}
	if !p.isCustom {
		t := tokenTable(model)
		c := 0
		for _, pc := range p.pieces[:n] {
			c += int(t[pc])
		}
		return c
	}
	return tokenizer.Count(model, strings.Join(p.custom[:n], ""))
}

// countGeminiTokens serves :countTokens: {"totalTokens":N} for the
// request's contents (or its generateContentRequest), as generateContent
// would report promptTokenCount.
func (s *Server) countGeminiTokens(x *exchange) {
	var body struct {
		geminiRequest
		GenerateContentRequest *geminiRequest `json:"generateContentRequest"`
	}
	if !x.decodeGemini(&body) {
		return
	}
	g := geminiParsed{req: body.geminiRequest}
	if body.GenerateContentRequest != nil {
		g.req = *body.GenerateContentRequest
	}
	if !s.parseGemini(x, &g) {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(*b, `{"totalTokens":`...)
	*b = appendInt(*b, g.tokens)
	*b = append(*b, `,"promptTokensDetails":[{"modality":"TEXT","tokenCount":`...)
	*b = appendInt(*b, g.tokens)
	*b = append(*b, "}]}\n"...)
	x.writeJSON(http.StatusOK, *b)
}

// decodeGemini decodes the JSON body into v after spelling its members in
// camelCase (see camelKeys); it answers 400 as decode does.
func (x *exchange) decodeGemini(v any) bool {
	body, ok := x.body()
	return ok && x.unmarshal(camelBody(body), v)
}

// camelBody returns body with its members renamed by camelKeys, or body
// unchanged when it is not JSON.
func camelBody(body []byte) []byte {
	if bytes.IndexByte(body, '_') < 0 {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return body
	}
	out, err := json.Marshal(camelKeys(v))
	if err != nil {
		return body
	}
	return out
}

// opaqueMembers hold the client's own data (function arguments and
// responses, JSON schemas): their member names are kept as sent.
var opaqueMembers = map[string]bool{
	"args": true, "response": true, "parameters": true, "parametersJsonSchema": true,
	"responseSchema": true, "responseJsonSchema": true,
}

// camelKeys renames snake_case members (thinking_budget) to camelCase
// (thinkingBudget) everywhere but inside opaqueMembers.
func camelKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			k = camel(k)
			if opaqueMembers[k] {
				out[k] = e
			} else {
				out[k] = camelKeys(e)
			}
		}
		return out
	case []any:
		for i, e := range t {
			t[i] = camelKeys(e)
		}
	}
	return v
}

// camel spells a snake_case name in camelCase.
func camel(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return k
	}
	var b strings.Builder
	up := false
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_' && i > 0:
			up = true
		case up && c >= 'a' && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
			up = false
		default:
			b.WriteByte(c)
			up = false
		}
	}
	return b.String()
}
