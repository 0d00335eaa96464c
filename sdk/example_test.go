package sdk_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope/sdk"
)

// Record every call an openai-go client makes: give it the Recorder's
// HTTP client. Calls land in llmscope.db, readable with `llmscope calls`.
func ExampleRecorder_HTTPClient() {
	ctx := context.Background()
	rec, err := sdk.New(ctx, sdk.Config{DB: "llmscope.db"})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rec.Close(ctx) // flushes the store and the exporters
	}()
	client := openai.NewClient(option.WithHTTPClient(rec.HTTPClient()))
	reply, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.Choices[0].Message.Content)
}

// Label calls through their context: they are recorded in the named run of
// the named experiment, for a user and a session, with tags.
func ExampleWithRun() {
	ctx := sdk.WithRun(context.Background(), "prompt-v2")
	ctx = sdk.WithExperiment(ctx, "support-bot")
	ctx = sdk.WithUser(ctx, "user-42")
	ctx = sdk.WithTags(ctx, map[string]string{"team": "search"})
	_ = ctx // pass ctx to the client's calls
}

// Export to MLflow and register metrics in your own Prometheus registry.
func ExampleNew() {
	rec, err := sdk.New(context.Background(), sdk.Config{
		DB:        "llmscope.db",
		MLflowURI: "http://127.0.0.1:5000",
		Capture:   false,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close(context.Background())
}
