// Command go-openai shows the llmscope SDK with sashabaranov/go-openai: a
// chat completion whose call is recorded in llmscope.db.
//
// Run it against the simulator, no key needed:
//
//	llmscope sim &                    # serves http://127.0.0.1:8701/v1
//	go run ./examples/go-openai
//	llmscope calls
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"llmscope/sdk"
)

func main() {
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
	cfg := goopenai.DefaultConfig(env("OPENAI_API_KEY", "sim"))
	cfg.BaseURL = env("OPENAI_BASE_URL", "http://127.0.0.1:8701/v1")
	cfg.HTTPClient = rec.HTTPClient()
	client := goopenai.NewClientWithConfig(cfg)
	reply, err := client.CreateChatCompletion(sdk.WithRun(ctx, "example-go-openai"), goopenai.ChatCompletionRequest{
		Model:    "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Write one sentence about tokens."}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.Choices[0].Message.Content)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
