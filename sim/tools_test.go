package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"llmscope/tokenizer"
)

var weatherParams = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"location": map[string]any{"type": "string"},
		"unit":     map[string]any{"type": "string", "enum": []any{"celsius", "fahrenheit"}},
		"days":     map[string]any{"type": "integer", "minimum": 1, "maximum": 7},
		"hourly":   map[string]any{"type": "boolean"},
	},
	"required":             []any{"location", "unit", "days"},
	"additionalProperties": false,
}

var timeParams = map[string]any{
	"type":       "object",
	"properties": map[string]any{"zone": map[string]any{"type": "string"}},
}

func functionTool(name string, params map[string]any) openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: name, Description: openai.String("Look up " + name), Parameters: params,
	})
}

var toolParams = map[string]map[string]any{"get_weather": weatherParams, "get_time": timeParams}

var callIDPattern = regexp.MustCompile(`^call_[0-9A-Za-z]{24}$`)

// checkArguments checks that args is a JSON object satisfying the
// parameters schema of the tool name.
func checkArguments(t *testing.T, name, args string) {
	t.Helper()
	schema, ok := toolParams[name]
	if !ok {
		t.Fatalf("unknown tool %q", name)
	}
	var root, v any
	b, _ := json.Marshal(schema)
	_ = json.Unmarshal(b, &root)
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		t.Fatalf("arguments %q: %v", args, err)
	}
	if _, ok := v.(map[string]any); !ok {
		t.Fatalf("arguments %q are not an object", args)
	}
	if err := checkSchema(root, root, v); err != nil {
		t.Errorf("arguments %s: %v", args, err)
	}
}

func TestChatToolCall(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 9})
	both := []openai.ChatCompletionToolUnionParam{functionTool("get_weather", weatherParams), functionTool("get_time", timeParams)}
	cases := []struct {
		name, model string
		tools       []openai.ChatCompletionToolUnionParam
		choice      openai.ChatCompletionToolChoiceOptionUnionParam
		want        string // the tool that must be called; "" for either
	}{
		{"auto", "gpt-4o-mini", both[:1], openai.ChatCompletionToolChoiceOptionUnionParam{}, "get_weather"},
		{"required", "gpt-4.1", both, openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}, ""},
		{"named", "gpt-4o", both, openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_time"}), "get_time"},
		{"named first", "gpt-4o", both, openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}), "get_weather"},
		{"reasoning", "o4-mini", both[:1], openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")}, "get_weather"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := openai.ChatCompletionNewParams{Model: c.model, Messages: chatMsgs, Tools: c.tools, ToolChoice: c.choice}
			res, err := client.Chat.Completions.New(context.Background(), params)
			if err != nil {
				t.Fatal(err)
			}
			choice := res.Choices[0]
			if choice.FinishReason != "tool_calls" || choice.Message.Content != "" || len(choice.Message.ToolCalls) != 1 {
				t.Fatalf("answer %s", res.RawJSON())
			}
			if !strings.Contains(res.RawJSON(), `"content":null,"tool_calls":[`) {
				t.Errorf("content is not null: %s", res.RawJSON())
			}
			call := choice.Message.ToolCalls[0]
			if !callIDPattern.MatchString(call.ID) || call.Type != "function" || c.want != "" && call.Function.Name != c.want {
				t.Errorf("call %s", call.RawJSON())
			}
			checkArguments(t, call.Function.Name, call.Function.Arguments)

			visible := int64(tokenizer.Count(c.model, call.Function.Name) + tokenizer.Count(c.model, call.Function.Arguments))
			if u := res.Usage; u.CompletionTokens != visible+u.CompletionTokensDetails.ReasoningTokens ||
				isReasoningModel(c.model) != (u.CompletionTokensDetails.ReasoningTokens == 2*visible) {
				t.Errorf("usage %s, tool call tokens %d", u.RawJSON(), visible)
			}

			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			acc, chunks := accumulate(t, client, params)
			got := acc.Choices[0]
			if got.FinishReason != "tool_calls" || len(got.Message.ToolCalls) != 1 {
				t.Fatalf("accumulated %+v", got)
			}
			sc := got.Message.ToolCalls[0]
			if sc.ID != call.ID || sc.Function.Name != call.Function.Name || sc.Function.Arguments != call.Function.Arguments {
				t.Errorf("streamed call %s %s %s, non-streamed %s", sc.ID, sc.Function.Name, sc.Function.Arguments, call.RawJSON())
			}
			if acc.Usage.CompletionTokens != res.Usage.CompletionTokens || acc.Usage.PromptTokens != res.Usage.PromptTokens {
				t.Errorf("streamed usage %+v, non-streamed %+v", acc.Usage, res.Usage)
			}
			if n := len(chunks); n < 5 || !strings.Contains(chunks[0].RawJSON(), `"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"`+call.ID+`","type":"function","function":{"name":"`+call.Function.Name+`","arguments":""}}],"refusal":null}`) {
				t.Errorf("%d chunks, first %s", n, chunks[0].RawJSON())
			}
		})
	}
}

// accumulate streams a chat completion through openai-go's accumulator.
func accumulate(t *testing.T, client openai.Client, params openai.ChatCompletionNewParams) (openai.ChatCompletionAccumulator, []openai.ChatCompletionChunk) {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var chunks []openai.ChatCompletionChunk
	for stream.Next() {
		ch := stream.Current()
		if !acc.AddChunk(ch) {
			t.Fatalf("accumulator refused chunk %s", ch.RawJSON())
		}
		chunks = append(chunks, ch)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return acc, chunks
}

// TestChatToolTurns checks the turns that answer text although tools are
// given: after a tool result, and with tool_choice "none".
func TestChatToolTurns(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 4})
	tools := []openai.ChatCompletionToolUnionParam{functionTool("get_weather", weatherParams)}
	first, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: chatMsgs, Tools: tools,
	})
	if err != nil {
		t.Fatal(err)
	}
	call := first.Choices[0].Message.ToolCalls[0]
	afterTool := append(append([]openai.ChatCompletionMessageParamUnion{}, chatMsgs...),
		first.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temperature":21}`, call.ID))
	cases := []struct {
		name   string
		params openai.ChatCompletionNewParams
	}{
		{"tool result", openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: afterTool, Tools: tools}},
		{"choice none", openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs, Tools: tools,
			ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := client.Chat.Completions.New(context.Background(), c.params)
			if err != nil {
				t.Fatal(err)
			}
			msg := res.Choices[0].Message
			if res.Choices[0].FinishReason != "stop" || len(msg.ToolCalls) != 0 || len(strings.Fields(msg.Content)) < minWords {
				t.Errorf("answer %s", res.RawJSON())
			}
			if got := int64(tokenizer.Count("gpt-4o", msg.Content)); res.Usage.CompletionTokens != got {
				t.Errorf("completion tokens %d, tokenizer %d", res.Usage.CompletionTokens, got)
			}
			text, _, err := streamChat(t, client, c.params)
			if err != nil || text != msg.Content {
				t.Errorf("streamed %q, %v; want %q", text, err, msg.Content)
			}
		})
	}
}

var nestedSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"title": map[string]any{"type": "string"},
		"meta": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"tags":    map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 2},
				"score":   map[string]any{"type": "number", "minimum": 0, "maximum": 1},
				"created": map[string]any{"type": "string", "format": "date-time"},
				"author":  map[string]any{"$ref": "#/$defs/person"},
			},
			"required":             []any{"tags", "score", "created", "author"},
			"additionalProperties": false,
		},
	},
	"required":             []any{"title", "meta"},
	"additionalProperties": false,
	"$defs": map[string]any{"person": map[string]any{
		"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}, "age": map[string]any{"type": "integer"}},
		"required": []any{"name", "age"}, "additionalProperties": false,
	}},
}

func TestChatResponseFormat(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 12})
	cases := []struct {
		name   string
		format openai.ChatCompletionNewParamsResponseFormatUnion
		schema map[string]any // nil: any object with a string "answer"
	}{
		{"json_object", openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}, nil},
		{"json_schema", openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "doc", Schema: nestedSchema, Strict: openai.Bool(true)},
		}}, nestedSchema},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: chatMsgs, ResponseFormat: c.format}
			res, err := client.Chat.Completions.New(context.Background(), params)
			if err != nil {
				t.Fatal(err)
			}
			content := res.Choices[0].Message.Content
			checkJSONContent(t, content, c.schema)
			if res.Choices[0].FinishReason != "stop" || res.Usage.CompletionTokens != int64(tokenizer.Count("gpt-4o-mini", content)) {
				t.Errorf("answer %s", res.RawJSON())
			}
			text, chunks, err := streamChat(t, client, params)
			if err != nil || text != content || len(chunks) < 4 {
				t.Errorf("streamed %q in %d chunks, %v; want %q", text, len(chunks), err, content)
			}

			params.MaxCompletionTokens = openai.Int(5)
			cut, err := client.Chat.Completions.New(context.Background(), params)
			if err != nil {
				t.Fatal(err)
			}
			if cut.Choices[0].FinishReason != "length" || cut.Usage.CompletionTokens > 5 ||
				!strings.HasPrefix(content, cut.Choices[0].Message.Content) {
				t.Errorf("limited answer %s", cut.RawJSON())
			}
		})
	}
}

// checkJSONContent checks that content is a JSON object satisfying schema,
// or with a string "answer" when schema is nil.
func checkJSONContent(t *testing.T, content string, schema map[string]any) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(content), &v); err != nil {
		t.Fatalf("content %q: %v", content, err)
	}
	if schema == nil {
		if s, ok := v["answer"].(string); !ok || len(strings.Fields(s)) < minWords {
			t.Errorf("content %s", content)
		}
		return
	}
	var root any
	b, _ := json.Marshal(schema)
	_ = json.Unmarshal(b, &root)
	if err := checkSchema(root, root, any(v)); err != nil {
		t.Errorf("content %s: %v", content, err)
	}
}

func TestResponsesFunctionCall(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 21})
	params := responses.ResponseNewParams{
		Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is the weather in Oslo?")},
		Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", weatherParams, true)},
	}
	res, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) != 1 || res.Output[0].Type != "function_call" || res.Status != "completed" {
		t.Fatalf("response %s", res.RawJSON())
	}
	fc := res.Output[0].AsFunctionCall()
	if !strings.HasPrefix(fc.ID, "fc_") || !callIDPattern.MatchString(fc.CallID) || fc.Name != "get_weather" || fc.Status != "completed" {
		t.Errorf("function call %s", fc.RawJSON())
	}
	checkArguments(t, fc.Name, fc.Arguments)
	if want := int64(tokenizer.Count("gpt-4.1", fc.Name) + tokenizer.Count("gpt-4.1", fc.Arguments)); res.Usage.OutputTokens != want {
		t.Errorf("output tokens %d, want %d", res.Usage.OutputTokens, want)
	}
	if len(res.Tools) != 1 || res.Tools[0].Name != "get_weather" {
		t.Errorf("tools echoed %s", res.RawJSON())
	}

	stream := client.Responses.NewStreaming(context.Background(), params)
	var types []string
	var deltas strings.Builder
	var done string
	var completed responses.Response
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_item.added":
			if it := ev.Item.AsFunctionCall(); it.ID != fc.ID || it.CallID != fc.CallID || it.Arguments != "" || it.Status != "in_progress" {
				t.Errorf("added %s", ev.RawJSON())
			}
		case "response.function_call_arguments.delta":
			if ev.ItemID != fc.ID {
				t.Errorf("delta %s", ev.RawJSON())
			}
			deltas.WriteString(ev.Delta)
		case "response.function_call_arguments.done":
			done = ev.AsResponseFunctionCallArgumentsDone().Arguments
		case "response.completed":
			completed = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if deltas.String() != fc.Arguments || done != fc.Arguments || completed.Output[0].AsFunctionCall().Arguments != fc.Arguments {
		t.Errorf("deltas %q done %q completed %s, want %q", deltas.String(), done, completed.RawJSON(), fc.Arguments)
	}
	want := "response.created response.in_progress response.output_item.added response.function_call_arguments.delta"
	if got := strings.Join(types, " "); !strings.HasPrefix(got, want) || !strings.HasSuffix(got,
		"response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done response.completed") {
		t.Errorf("events %s", got)
	}
	if completed.Usage.OutputTokens != res.Usage.OutputTokens {
		t.Errorf("streamed usage %s", completed.Usage.RawJSON())
	}

	params.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("What is the weather in Oslo?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfFunctionCall(fc.Arguments, fc.CallID, fc.Name),
		responses.ResponseInputItemParamOfFunctionCallOutput[string](`{"temperature":4}`),
	}}
	params.Input.OfInputItemList[2].OfFunctionCallOutput.CallID = openai.String(fc.CallID)
	after, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if after.Output[0].Type != "message" || len(strings.Fields(after.OutputText())) < minWords {
		t.Errorf("after the tool result %s", after.RawJSON())
	}
}

func TestResponsesTextFormat(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 8})
	params := responses.ResponseNewParams{
		Model: "gpt-4.1-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Describe a document.")},
		Text: responses.ResponseTextConfigParam{
			Format: responses.ResponseFormatTextConfigParamOfJSONSchema("doc", nestedSchema),
		},
	}
	res, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	checkJSONContent(t, res.OutputText(), nestedSchema)
	if res.Text.Format.Type != "json_schema" || res.Text.Format.Name != "doc" {
		t.Errorf("text echoed %s", res.Text.RawJSON())
	}
	stream := client.Responses.NewStreaming(context.Background(), params)
	var deltas strings.Builder
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.output_text.delta" {
			deltas.WriteString(ev.Delta)
		}
	}
	if stream.Err() != nil || deltas.String() != res.OutputText() {
		t.Errorf("streamed %q, %v", deltas.String(), stream.Err())
	}
}

func TestToolRequestErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	cases := []struct {
		path, body  string
		param, code string
	}{
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":{}}`, "tools", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":"get_weather"}`, "tools", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[7]}`, "tools[0]", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"function":{"name":"f"}}]}`, "tools[0].type", "missing_required_parameter"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function"}]}`, "tools[0].function", "missing_required_parameter"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"description":"d"}}]}`, "tools[1].function.name", "missing_required_parameter"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"no spaces"}}]}`, "tools[0].function.name", "invalid_value"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]}`, "tools[0].function.parameters", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":7}}]}`, "tools[0].function.name", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always"}`, "tool_choice", "invalid_value"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice", "invalid_value"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tool_choice":{"type":"function"}}`, "tool_choice.function", "missing_required_parameter"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tool_choice":3}`, "tool_choice", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"response_format":"json"}`, "response_format", "invalid_type"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"response_format":{"type":"xml"}}`, "response_format.type", "invalid_value"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"response_format":{"type":"json_schema"}}`, "response_format.json_schema", "missing_required_parameter"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, "response_format.json_schema.name", "missing_required_parameter"},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":[]}}}`, "response_format.json_schema.schema", "invalid_type"},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","tools":[{"type":"function"}]}`, "tools[0].name", "missing_required_parameter"},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","tools":{"type":"function","name":"f"}}`, "tools", "invalid_type"},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`, "tool_choice", "invalid_value"},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","text":{"format":{"type":"json_schema","schema":{}}}}`, "text.format.name", "missing_required_parameter"},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","text":"json"}`, "text", "invalid_type"},
	}
	for _, c := range cases {
		res, b := do(t, srv, "POST", c.path, c.body)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || res.StatusCode != http.StatusBadRequest ||
			e.Error.Type != "invalid_request_error" || e.Error.Param == nil || *e.Error.Param != c.param ||
			e.Error.Code == nil || *e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.param) {
			t.Errorf("%s\n%d %s\nwant param %s code %s", c.body, res.StatusCode, b, c.param, c.code)
		}
	}
}

// TestToolsAccepted checks inputs that are valid although unusual: tools of
// other types are never called, an empty tools array and a tool_choice
// without tools change nothing.
func TestToolsAccepted(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	cases := []struct{ path, body, contains string }{
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[]}`, `"finish_reason":"stop"`},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tool_choice":"required"}`, `"finish_reason":"stop"`},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"custom","custom":{"name":"c"}}]}`, `"finish_reason":"stop"`},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}]}`, `"arguments":"{}"`},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}}}`, `"arguments":"{}"`},
		{"/v1/chat/completions", `{"model":"gpt-4o",` + msgs + `,"response_format":{"type":"text"}}`, `"finish_reason":"stop"`},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","tools":[{"type":"web_search"}]}`, `"type":"message"`},
		{"/v1/responses", `{"model":"gpt-4o","input":"x","tools":[{"type":"web_search"},{"type":"function","name":"f"}]}`, `"type":"function_call"`},
	}
	for _, c := range cases {
		res, b := do(t, srv, "POST", c.path, c.body)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), c.contains) {
			t.Errorf("%s\n%d %s\nwant %s", c.body, res.StatusCode, b, c.contains)
		}
	}
}

// TestToolsChangeHash checks that tools and formats change the answer's
// ids, while a request without them keeps the conversation's own hash.
func TestToolsChangeHash(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const base = `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]`
	id := func(body string) string {
		res, b := do(t, srv, "POST", "/v1/chat/completions", body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", res.StatusCode, b)
		}
		return res.Header.Get("X-Request-Id")
	}
	plain := id(base + `}`)
	if id(base+`,"tools":null,"response_format":null}`) != plain {
		t.Error("null tools changed the answer")
	}
	if id(base+`,"response_format":{"type":"json_object"}}`) == plain ||
		id(base+`,"tools":[{"type":"function","function":{"name":"f"}}]}`) == plain {
		t.Error("tools or format did not change the answer")
	}
	if id(base+`,"tools":[{"type":"function","function":{"name":"f"}}]}`) != id(base+`,"tools":[ {"type":"function", "function":{"name":"f"}} ]}`) {
		t.Error("insignificant space changed the answer")
	}
}

// FuzzShapedRequest checks that no chat or Responses body with tools,
// tool_choice and formats makes the simulator panic or answer anything but
// 200 with JSON or SSE, or 400 with an OpenAI error.
func FuzzShapedRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}},"stream":true}`,
		`{"model":"m","messages":[{"role":"tool","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"$ref":"#"}}}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"max_tokens":3}`,
		`{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"n":{"type":"integer","minimum":5}}}}],"stream":true}`,
		`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n","schema":{"type":"array","minItems":3}}}}`,
		`{"model":"m","input":"x","tools":[1],"tool_choice":[]}`,
	} {
		f.Add(s, strings.Contains(s, `"input"`))
	}
	s := New(Config{})
	f.Fuzz(func(t *testing.T, body string, responsesAPI bool) {
		path := "/v1/chat/completions"
		if responsesAPI {
			path = "/v1/responses"
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch {
		case w.Code == http.StatusOK && strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream"):
		case w.Code == http.StatusOK || w.Code == http.StatusBadRequest:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%d: invalid JSON %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
