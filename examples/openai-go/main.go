// Command openai-go shows the llmscope SDK with the official openai-go v3
// client: a streamed chat whose call is recorded in llmscope.db.
//
// Run it against the simulator, no key needed:
//
//	llmscope sim &                    # serves http://127.0.0.1:8701/v1
//	go run ./examples/openai-go
//	llmscope calls
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope/sdk"
)

func main() {
	base := env("OPENAI_BASE_URL", "http://127.0.0.1:8701/v1")
	ctx := context.Background()
	rec, err := sdk.New(ctx, sdk.Config{DB: env("LLMSCOPE_DB", "llmscope.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rec.Close(ctx); err != nil {
			log.Print(err)
		}
	}()
	client := openai.NewClient(
		option.WithBaseURL(base),
		option.WithAPIKey(env("OPENAI_API_KEY", "sim")),
		option.WithHTTPClient(rec.HTTPClient()),
	)
	stream := client.Chat.Completions.NewStreaming(sdk.WithRun(ctx, "example-openai-go"), openai.ChatCompletionNewParams{
		Model:       "gpt-4o-mini",
		Temperature: openai.Float(0.7),
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write one sentence about observability.")},
	})
	for stream.Next() {
		if ch := stream.Current().Choices; len(ch) > 0 {
			fmt.Print(ch[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println()
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
