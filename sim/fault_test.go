package sim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

func TestFaultStatus(t *testing.T) {
	t.Parallel()
	srv, client := newSim(t, Config{})
	for _, c := range []struct {
		status     int
		typ, code  string
		retryAfter string
	}{
		{429, "rate_limit_exceeded", "rate_limit_exceeded", "1"},
		{500, "server_error", "", ""},
		{503, "service_unavailable", "service_unavailable", ""},
		{400, "invalid_request_error", "", ""},
	} {
		fault := option.WithHeader(FaultHeader, "status="+itoa(c.status))
		_, err := client.Chat.Completions.New(context.Background(),
			openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs}, fault)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("status=%d: want *openai.Error, got %v", c.status, err)
		}
		if apiErr.StatusCode != c.status || apiErr.Type != c.typ || apiErr.Code != c.code || apiErr.Message == "" {
			t.Errorf("status=%d: %d %q %q %q", c.status, apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Message)
		}
		if got := apiErr.Response.Header.Get("Retry-After"); got != c.retryAfter {
			t.Errorf("status=%d: Retry-After %q", c.status, got)
		}
	}
	stream := client.Chat.Completions.NewStreaming(context.Background(),
		openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs},
		option.WithHeader(FaultHeader, "status=429"))
	if stream.Next() {
		t.Error("stream with status=429 yielded a chunk")
	}
	var apiErr *openai.Error
	if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != 429 {
		t.Errorf("stream status=429: %v", stream.Err())
	}
	// Faults apply to every route, before the body is looked at.
	res, _ := do(t, srv, "GET", "/v1/models", "", FaultHeader, "status=502")
	if res.StatusCode != 502 {
		t.Errorf("models with status=502: %d", res.StatusCode)
	}
}

func itoa(n int) string {
	b := appendInt(nil, n)
	return string(b)
}

func TestFaultReset(t *testing.T) {
	t.Parallel()
	srv, client := newSim(t, Config{})
	reset := option.WithHeader(FaultHeader, "reset_after=3")
	params := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs}

	stream := client.Chat.Completions.NewStreaming(context.Background(), params, reset)
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil || n != 3 {
		t.Errorf("chat stream: %d chunks, err %v", n, stream.Err())
	}

	rs := client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "gpt-4o", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
	}, reset)
	n = 0
	for rs.Next() {
		n++
	}
	if rs.Err() == nil || n != 3 {
		t.Errorf("responses stream: %d events, err %v", n, rs.Err())
	}

	_, err := client.Chat.Completions.New(context.Background(), params, reset)
	var apiErr *openai.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("non-stream reset: %v", err)
	}

	// reset_after beyond the stream's length changes nothing.
	_, _, err = streamChat(t, newClient(srv, option.WithHeader(FaultHeader, "reset_after=1000")), params)
	if err != nil {
		t.Errorf("reset_after=1000: %v", err)
	}

	// The server keeps serving after resets.
	if res, _ := do(t, srv, "GET", "/v1/models", ""); res.StatusCode != 200 {
		t.Errorf("models after resets: %d", res.StatusCode)
	}
}

func TestFaultNoUsage(t *testing.T) {
	t.Parallel()
	srv, client := newSim(t, Config{})
	noUsage := option.WithHeader(FaultHeader, "no_usage")
	res, err := client.Chat.Completions.New(context.Background(),
		openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs}, noUsage)
	if err != nil || res.JSON.Usage.Valid() || strings.Contains(res.RawJSON(), "usage") {
		t.Errorf("chat no_usage: %v %s", err, res.RawJSON())
	}
	_, chunks, err := streamChat(t, newClient(srv, noUsage), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: chatMsgs,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		if strings.Contains(ch.RawJSON(), "usage") || len(ch.Choices) == 0 {
			t.Errorf("chunk under no_usage: %s", ch.RawJSON())
		}
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/completions", `{"model":"gpt-4o","prompt":"x","stream":true,"stream_options":{"include_usage":true}}`},
		{"/v1/completions", `{"model":"gpt-4o","prompt":"x"}`},
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":"x","dimensions":3}`},
	} {
		_, b := do(t, srv, "POST", c.path, c.body, FaultHeader, "no_usage")
		if strings.Contains(string(b), "usage") {
			t.Errorf("%s %s: %s", c.path, c.body, b)
		}
	}
	_, b := do(t, srv, "POST", "/v1/responses", `{"model":"gpt-4o","input":"x","stream":true}`, FaultHeader, "no_usage")
	if strings.Contains(string(b), `"input_tokens"`) || !strings.Contains(string(b), "response.completed") {
		t.Errorf("responses no_usage: %s", b)
	}
}

func TestFaultDelay(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	start := time.Now()
	_, err := client.Models.List(context.Background(), option.WithHeader(FaultHeader, "delay=200ms, no_usage"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("delay=200ms answered after %v", d)
	}
}

func TestFaultMalformed(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	for _, h := range []string{"status=abc", "status=200", "reset_after=-1", "delay=soon", "boom", "no_usage=1", "delay=-1s"} {
		res, b := do(t, srv, "GET", "/v1/models", "", FaultHeader, "no_usage,"+h)
		if res.StatusCode != 400 || !strings.Contains(string(b), `\"`+h+`\"`) || !strings.Contains(string(b), `"code":"invalid_fault"`) {
			t.Errorf("%q: %d %s", h, res.StatusCode, b)
		}
	}
}

func TestParseFault(t *testing.T) {
	f, err := parseFault(" status=429 , reset_after=3,delay=1.5s,,no_usage", "status=503")
	if err != nil {
		t.Fatal(err)
	}
	want := fault{status: 503, resetAfter: 3, delay: 1500 * time.Millisecond, noUsage: true}
	if f != want {
		t.Errorf("got %+v want %+v", f, want)
	}
	if f, err := parseFault(); err != nil || f != noFault {
		t.Errorf("empty: %+v %v", f, err)
	}
}

func FuzzFaultHeader(f *testing.F) {
	for _, s := range []string{"", "status=429", "reset_after=3", "delay=200ms", "no_usage",
		"status=500,reset_after=0,delay=1ms,no_usage", "status=", "=", ",,", "delay=1h", "reset_after=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFault(s)
		if err != nil {
			if got != noFault {
				t.Fatalf("error %v with fault %+v", err, got)
			}
			if !strings.Contains(err.Error(), FaultHeader) {
				t.Fatalf("error does not name the header: %v", err)
			}
			return
		}
		if got.status != 0 && (got.status < 400 || got.status > 599) || got.resetAfter < -1 ||
			got.delay < 0 || got.delay > maxFaultDelay {
			t.Fatalf("%q parsed out of range: %+v", s, got)
		}
		back, err := parseFault(got.String())
		if err != nil || back != got {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, got, got.String(), back, err)
		}
	})
}

func TestErrorRate(t *testing.T) {
	t.Parallel()
	pattern := func() string {
		srv, _ := newSim(t, Config{Seed: 42, ErrorRate: 0.3, ErrorStatus: http.StatusServiceUnavailable})
		var b strings.Builder
		for range 200 {
			res, _ := do(t, srv, "GET", "/v1/models", "")
			switch res.StatusCode {
			case 200:
				b.WriteByte('.')
			case 503:
				b.WriteByte('x')
			default:
				t.Fatalf("status %d", res.StatusCode)
			}
		}
		return b.String()
	}
	a, b := pattern(), pattern()
	if a != b {
		t.Errorf("error pattern differs between runs:\n%s\n%s", a, b)
	}
	if n := strings.Count(a, "x"); n < 30 || n > 90 {
		t.Errorf("%d of 200 failed at rate 0.3", n)
	}
	srv, _ := newSim(t, Config{ErrorRate: 1})
	res, b2 := do(t, srv, "POST", "/v1/chat/completions", "{}")
	if res.StatusCode != 500 || !strings.Contains(string(b2), `"type":"server_error"`) {
		t.Errorf("ErrorRate 1: %d %s", res.StatusCode, b2)
	}
}
