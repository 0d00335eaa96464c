package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"llmscope/tokenizer"
)

func TestResponses(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 5})
	const model = "gpt-4.1-mini"
	params := responses.ResponseNewParams{
		Model:        model,
		Instructions: openai.String("Be brief."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Describe a harbor.")},
	}
	res, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	text := res.OutputText()
	if !strings.HasPrefix(res.ID, "resp_") || res.Status != "completed" || res.Model != model || text == "" {
		t.Fatalf("response %s", res.RawJSON())
	}
	if msg := res.Output[0]; !strings.HasPrefix(msg.ID, "msg_") || msg.Type != "message" || msg.Role != "assistant" {
		t.Errorf("output item %s", msg.RawJSON())
	}
	u := res.Usage
	wantIn := tokenizer.CountChat(model, []tokenizer.Message{
		{Role: "developer", Content: "Be brief."}, {Role: "user", Content: "Describe a harbor."},
	})
	if u.InputTokens != int64(wantIn) || u.OutputTokens != int64(tokenizer.Count(model, text)) ||
		u.TotalTokens != u.InputTokens+u.OutputTokens || !u.InputTokensDetails.JSON.CachedTokens.Valid() ||
		!u.OutputTokensDetails.JSON.ReasoningTokens.Valid() {
		t.Errorf("usage %s (want input %d)", u.RawJSON(), wantIn)
	}

	stream := client.Responses.NewStreaming(context.Background(), params)
	var deltas strings.Builder
	var types []string
	var completed responses.Response
	seq := int64(-1)
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq+1 {
			t.Errorf("sequence %d after %d", ev.SequenceNumber, seq)
		}
		seq = ev.SequenceNumber
		if len(types) == 0 || types[len(types)-1] != ev.Type {
			types = append(types, ev.Type)
		}
		switch ev.Type {
		case "response.output_text.delta":
			deltas.WriteString(ev.Delta)
		case "response.output_text.done":
			if d := ev.AsResponseOutputTextDone(); d.Text != text {
				t.Errorf("done text %q", d.Text)
			}
		case "response.completed":
			completed = ev.AsResponseCompleted().Response
		case "response.created", "response.in_progress":
			if r := ev.Response; r.Status != "in_progress" || len(r.Output) != 0 || r.JSON.Usage.Valid() {
				t.Errorf("%s: %s", ev.Type, r.RawJSON())
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		"response.output_text.delta response.output_text.done response.content_part.done " +
		"response.output_item.done response.completed"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
	if deltas.String() != text || completed.OutputText() != text {
		t.Errorf("deltas %q completed %q want %q", deltas.String(), completed.OutputText(), text)
	}
	if completed.Usage.TotalTokens != u.TotalTokens || completed.ID != res.ID {
		t.Errorf("completed usage %s", completed.Usage.RawJSON())
	}
}

func TestResponsesRawEvents(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	_, b := do(t, srv, "POST", "/v1/responses", `{"model":"gpt-4o","stream":true,"input":"hi"}`)
	events := strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n")
	for _, e := range events {
		ev, data, ok := strings.Cut(e, "\n")
		name, ok1 := strings.CutPrefix(ev, "event: ")
		if !ok || !ok1 || !strings.HasPrefix(data, `data: {"type":"`+name+`","sequence_number":`) {
			t.Fatalf("event %q", e)
		}
	}
	if strings.Contains(string(b), "[DONE]") {
		t.Error("responses stream must not end with [DONE]")
	}
}

func TestResponsesItemsAndLimits(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	input := responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("Hello there", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfMessage(responses.ResponseInputMessageContentListParam{
			responses.ResponseInputContentParamOfInputText("Part one."),
		}, responses.EasyInputMessageRoleUser),
	}
	params := responses.ResponseNewParams{
		Model: "o4-mini", Input: responses.ResponseNewParamsInputUnion{OfInputItemList: input},
	}
	res, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	want := tokenizer.CountChat("o4-mini", []tokenizer.Message{{Role: "user", Content: "Hello there"}, {Role: "user", Content: "Part one."}})
	visible := int64(tokenizer.Count("o4-mini", res.OutputText()))
	if res.Usage.InputTokens != int64(want) || res.Usage.OutputTokensDetails.ReasoningTokens != 2*visible ||
		res.Usage.OutputTokens != 3*visible {
		t.Errorf("usage %s (input want %d, visible %d)", res.Usage.RawJSON(), want, visible)
	}

	params.Model = "gpt-4o"
	params.MaxOutputTokens = openai.Int(6)
	res, err = client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "incomplete" || res.IncompleteDetails.Reason != "max_output_tokens" || res.Usage.OutputTokens > 6 {
		t.Errorf("limited: %s", res.RawJSON())
	}
	stream := client.Responses.NewStreaming(context.Background(), params)
	var last string
	for stream.Next() {
		last = stream.Current().Type
	}
	if stream.Err() != nil || last != "response.incomplete" {
		t.Errorf("limited stream ends with %q: %v", last, stream.Err())
	}
}

func TestResponsesCachedTokens(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	params := responses.ResponseNewParams{
		Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(strings.Repeat("cache me if you can ", 300))},
	}
	var cached []int64
	for range 2 {
		stream := client.Responses.NewStreaming(context.Background(), params)
		for stream.Next() {
			if ev := stream.Current(); ev.Type == "response.completed" {
				u := ev.Response.Usage
				if u.InputTokens < 1024 {
					t.Fatalf("prompt too short: %d", u.InputTokens)
				}
				cached = append(cached, u.InputTokensDetails.CachedTokens)
				if c := u.InputTokensDetails.CachedTokens; c != 0 && c != u.InputTokens/128*128 {
					t.Errorf("cached %d of %d", c, u.InputTokens)
				}
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(cached) != 2 || cached[0] != 0 || cached[1] == 0 {
		t.Errorf("cached tokens %v", cached)
	}
}
