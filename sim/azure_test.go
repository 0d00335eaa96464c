package sim

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

const azurePath = "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"

// TestAzureChat checks that Azure answers like the OpenAI route, with the
// deployment's model unless the body names one, through openai-go's Azure
// options.
func TestAzureChat(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{Seed: 4})
	client := azureClient(srv.URL)
	res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "prod-4o", Messages: chatMsgs})
	if err != nil {
		t.Fatal(err)
	}
	// The body's model wins over the deployment's.
	if res.Model != "prod-4o" || res.Choices[0].Message.Content == "" || res.Usage.TotalTokens == 0 {
		t.Errorf("%s", res.RawJSON())
	}
	_, a := do(t, srv, "POST", azurePath, `{"messages":[{"role":"user","content":"Say something."}]}`)
	_, o := do(t, srv, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini-2024-07-18","messages":[{"role":"user","content":"Say something."}]}`)
	if !bytes.Equal(a, o) || !strings.Contains(string(a), `"model":"gpt-4o-mini-2024-07-18"`) {
		t.Errorf("azure without model:\n%s\nopenai:\n%s", a, o)
	}
	_, a = do(t, srv, "POST", azurePath, `{"model":"","messages":[{"role":"user","content":"x"}],"stream":true}`)
	if !strings.Contains(string(a), `"model":"gpt-4o-mini-2024-07-18"`) || !strings.HasSuffix(string(a), "data: [DONE]\n\n") {
		t.Errorf("stream: %s", a)
	}
	_, a = do(t, srv, "POST", "/openai/deployments/inst/completions?api-version=2024-10-21", `{"prompt":"Once"}`)
	if !strings.Contains(string(a), `"model":"gpt-3.5-turbo-instruct"`) {
		t.Errorf("completions: %s", a)
	}
}

func TestAzureErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	body := `{"messages":[{"role":"user","content":"x"}]}`
	res, b := do(t, srv, "POST", "/openai/deployments/prod-4o/chat/completions", body)
	if res.StatusCode != 400 || !strings.Contains(string(b), `"code":"MissingApiVersionParameter"`) {
		t.Errorf("without api-version: %d %s", res.StatusCode, b)
	}
	for _, p := range []string{"/openai/deployments//chat/completions?api-version=1", "/openai/deployments/x/images?api-version=1", "/openai/models"} {
		if res, b := do(t, srv, "POST", p, body); res.StatusCode != 404 || !strings.Contains(string(b), `"error":{"message"`) {
			t.Errorf("%s: %d %s", p, res.StatusCode, b)
		}
	}
	client := azureClient(srv.URL)
	for _, c := range []struct {
		status int
		typ    string
	}{{429, "rate_limit_exceeded"}, {500, "server_error"}, {503, "service_unavailable"}} {
		_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "prod-4o", Messages: chatMsgs},
			option.WithHeader(FaultHeader, "status="+itoa(c.status)))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != c.status || apiErr.Type != c.typ {
			t.Errorf("status=%d: %v", c.status, err)
		}
	}
	_, out, err := doErr(t, srv, "POST", azurePath, `{"stream":true,"messages":[{"role":"user","content":"x"}]}`, FaultHeader, "reset_after=2")
	if err == nil || len(parseSSE(t, out[:strings.LastIndex(string(out), "\n\n")+2])) != 2 {
		t.Errorf("reset_after=2: %v %s", err, out)
	}
	_, b = do(t, srv, "POST", azurePath, body, FaultHeader, "no_usage,delay=10ms")
	if strings.Contains(string(b), "usage") || !strings.Contains(string(b), `"finish_reason":"stop"`) {
		t.Errorf("no_usage, delay: %s", b)
	}
}

// azureClient is an openai-go client for the deployment prod-4o, as Azure
// clients address it: the deployment in the path, api-version in the
// query, the key in api-key.
func azureClient(base string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(base+"/openai/deployments/prod-4o/"),
		option.WithQuery("api-version", "2024-10-21"),
		option.WithHeader("api-key", "azure-key"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)
}
