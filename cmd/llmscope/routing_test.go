package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
	"llmscope/sim"
)

// faultyUpstream is the simulator behind a fault of its own, counting its
// requests and keeping the last Authorization it got.
type faultyUpstream struct {
	h     http.Handler
	fault string // "", "429", "slow", "nofirst", "break"
	mu    sync.Mutex
	n     int
	auth  string
}

func (u *faultyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.n++
	u.auth = r.Header.Get("Authorization")
	u.mu.Unlock()
	switch u.fault {
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`, http.StatusTooManyRequests)
		return
	case "slow":
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
			return
		}
	case "nofirst":
		// A stream that ends before its first byte.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case "break":
		r.Header.Set("X-Sim-Fault", "reset_after=2")
	}
	u.h.ServeHTTP(w, r)
}

func (u *faultyUpstream) requests() (int, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n, u.auth
}

// TestRouting drives serve's routes with the openai-go client: a deployment
// answering 429 with Retry-After, one down, one slow past its timeout and
// a stream that ends before its first byte each give way to the healthy
// fallback, which answers; the call records the attempts and the final
// upstream. A stream that breaks after its first byte is not retried.
func TestRouting(t *testing.T) {
	ups := map[string]*faultyUpstream{}
	urls := map[string]string{}
	for _, name := range []string{"healthy", "limited", "slow", "nofirst", "breaker"} {
		fault := map[string]string{"limited": "429", "slow": "slow", "nofirst": "nofirst", "breaker": "break"}[name]
		u := &faultyUpstream{h: sim.New(sim.Config{}), fault: fault}
		s := httptest.NewServer(u)
		t.Cleanup(s.Close)
		ups[name], urls[name] = u, s.URL+"/v1"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	urls["down"] = "http://" + l.Addr().String() + "/v1"
	l.Close() // nothing listens there any more
	for name := range urls {
		t.Setenv("ROUTE_KEY_"+strings.ToUpper(name), "route-key-"+name)
	}
	dep := func(name, extra string) string {
		return `{name: ` + name + `, api: openai, url: "` + urls[name] + `", key_env: ROUTE_KEY_` + strings.ToUpper(name) + extra + `}`
	}
	config := `routes:
  - {name: healthy-route, match: "healthy-only", deployments: [` + dep("healthy", "") + `]}
  - {name: r429, match: "r-429", retries: 1, deployments: [` + dep("limited", "") + `], fallbacks: [healthy]}
  - {name: rdown, match: "r-down", retries: 1, deployments: [` + dep("down", "") + `], fallbacks: [healthy]}
  - {name: rslow, match: "r-slow", retries: 1, deployments: [` + dep("slow", ", timeout: 300ms") + `], fallbacks: [healthy]}
  - {name: rnofirst, match: "r-nofirst", retries: 1, deployments: [` + dep("nofirst", "") + `], fallbacks: [healthy]}
  - {name: rbreak, match: "r-break", retries: 1, deployments: [` + dep("breaker", "") + `], fallbacks: [healthy]}
`
	path := filepath.Join(t.TempDir(), "llmscope.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ml := mlflowtest.Start(t)
	_, base, _, stderr := startServe(t, "--config", path, "--mlflow", ml.URL, "--experiment", "routing")
	client := openai.NewClient(oaoption.WithBaseURL(base+"/v1"), oaoption.WithAPIKey("client-key"), oaoption.WithMaxRetries(0))
	ctx := context.Background()
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")}

	var first429 llmscope.Call
	for _, tc := range []struct {
		model, first, outcome string
		status                int
		stream                bool
	}{
		{"r-429", "limited", "status", 429, false},
		{"r-down", "down", "connection", 0, false},
		{"r-slow", "slow", "timeout", 0, false},
		{"r-nofirst", "nofirst", "stream", 200, true},
	} {
		var resp *http.Response
		var content string
		if tc.stream {
			s := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: tc.model, Messages: msgs}, oaoption.WithResponseInto(&resp))
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Fatalf("%s: %v", tc.model, err)
			}
			content = acc.Choices[0].Message.Content
		} else {
			cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: tc.model, Messages: msgs}, oaoption.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("%s: %v", tc.model, err)
			}
			content = cc.Choices[0].Message.Content
		}
		c := recordedCall(t, base, resp.Header.Get("X-Llmscope-Call-Id"))
		if content == "" || c.Status != 200 || c.Upstream != "healthy" || c.Attempts != 2 || len(c.Tries) != 2 {
			t.Fatalf("%s: answer %q; recorded status %d upstream %q attempts %d tries %+v", tc.model, content, c.Status, c.Upstream, c.Attempts, c.Tries)
		}
		if tc.model == "r-429" {
			first429 = c
		}
		first, last := c.Tries[0], c.Tries[1]
		if first.Upstream != tc.first || first.Outcome != tc.outcome || first.Status != tc.status || !first.Retried ||
			last.Upstream != "healthy" || last.Outcome != "ok" || last.Status != 200 || last.Retried || last.Start.Before(first.Start) {
			t.Errorf("%s: tries %+v", tc.model, c.Tries)
		}
		if tc.stream && (!c.Stream || c.Output != "" && c.Output != content) {
			t.Errorf("%s: stream recorded %+v", tc.model, c)
		}
	}
	if n, auth := ups["healthy"].requests(); n != 4 || auth != "Bearer route-key-healthy" {
		t.Errorf("healthy deployment got %d requests, Authorization %q; want 4 with its own key", n, auth)
	}
	if n, auth := ups["limited"].requests(); n != 1 || auth != "Bearer route-key-limited" {
		t.Errorf("429 deployment got %d requests (%q); want 1 (no wait for its Retry-After: another deployment was free)", n, auth)
	}

	// A stream that breaks after its first bytes reached the client is
	// final: recorded as broken, not retried.
	var resp *http.Response
	s := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "r-break", Messages: msgs}, oaoption.WithResponseInto(&resp))
	for s.Next() {
	}
	if s.Err() == nil {
		t.Error("the client did not see the stream break")
	}
	c := recordedCall(t, base, resp.Header.Get("X-Llmscope-Call-Id"))
	if c.ErrorType != llmscope.ErrTypeStream || c.Upstream != "breaker" || c.Attempts != 1 || len(c.Tries) != 1 || c.Tries[0].Outcome != "broken" {
		t.Errorf("broken stream recorded: error %q upstream %q attempts %d tries %+v", c.ErrorType, c.Upstream, c.Attempts, c.Tries)
	}
	if n, _ := ups["healthy"].requests(); n != 4 {
		t.Errorf("the broken stream was retried on the healthy deployment (%d requests)", n)
	}
	// Requests for a model no route matches go to the upstream as before.
	if _, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Errorf("unrouted model: %v", err)
	}
	if got := metric(t, base, `llmscope_upstream_attempts_total{outcome="timeout",upstream="slow"}`); got != "1" {
		t.Errorf("llmscope_upstream_attempts_total for the slow deployment = %q, want 1", got)
	}
	// In MLflow the routed call's trace has one child span per attempt.
	client2, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	if err != nil {
		t.Fatal(err)
	}
	var trace string
	eventually(t, "the routed call's trace in MLflow", 60*time.Second, func() bool {
		b, err := client2.GetTrace(ctx, "tr-"+first429.TraceID)
		trace = string(b)
		return err == nil && strings.Contains(trace, "attempt healthy")
	})
	if !strings.Contains(trace, `"attempt limited"`) || !strings.Contains(trace, `"attempt healthy"`) {
		t.Errorf("trace lacks a span per attempt: %.600s", trace)
	}
	for _, k := range []string{"route-key-healthy", "route-key-limited"} {
		if strings.Contains(stderr.String(), k) {
			t.Errorf("serve's log holds a deployment key")
		}
	}
}
