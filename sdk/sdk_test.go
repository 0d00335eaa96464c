package sdk_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/prometheus/client_golang/prometheus"
	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sdk"
	"llmscope/sim"
)

// memStore keeps written calls in memory.
type memStore struct {
	mu    sync.Mutex
	calls []*llmscope.Call
}

func (m *memStore) Write(_ context.Context, calls []*llmscope.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, calls...)
	return nil
}
func (m *memStore) all() []*llmscope.Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*llmscope.Call(nil), m.calls...)
}
func (m *memStore) Get(context.Context, string) (*llmscope.Call, error) {
	return nil, llmscope.ErrNotFound
}
func (m *memStore) List(context.Context, llmscope.Filter) ([]*llmscope.Call, error) {
	return nil, nil
}
func (m *memStore) Stats(context.Context, llmscope.Filter) (*llmscope.Stats, error) {
	return &llmscope.Stats{}, nil
}
func (m *memStore) After(context.Context, int64, int) ([]*llmscope.Call, error) { return nil, nil }
func (m *memStore) Cursor(context.Context, string) (int64, error)               { return 0, nil }
func (m *memStore) SetCursor(context.Context, string, int64) error              { return nil }
func (m *memStore) Close() error                                                { return nil }

// sinkStore collects the gateway's calls.
type sinkStore struct{ memStore }

func (s *sinkStore) Record(c *llmscope.Call) { _ = s.Write(context.Background(), []*llmscope.Call{c}) }

// setup starts the simulator, a gateway in front of it and an SDK recorder.
func setup(t *testing.T) (simURL, gwURL string, gw *sinkStore, rec *sdk.Recorder, store *memStore) {
	t.Helper()
	up := httptest.NewServer(sim.New(sim.Config{Seed: 5}))
	t.Cleanup(up.Close)
	gw = &sinkStore{}
	g, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: gw, Provider: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(g)
	t.Cleanup(front.Close)
	store = &memStore{}
	rec, err = sdk.New(context.Background(), sdk.Config{Store: store, Provider: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	return up.URL, front.URL, gw, rec, store
}

// same compares two calls apart from ids, times and overhead.
func same(t *testing.T, name string, a, b *llmscope.Call) {
	t.Helper()
	norm := func(c *llmscope.Call) llmscope.Call {
		n := *c
		n.ID, n.TraceID, n.Start, n.DurationMS, n.OverheadMS = "", "", time.Time{}, 0, 0
		if n.TTFTMS > 0 {
			n.TTFTMS = 1
		}
		return n
	}
	if x, y := norm(a), norm(b); !reflect.DeepEqual(x, y) {
		t.Errorf("%s: gateway and SDK calls differ:\ngateway %+v\n    sdk %+v", name, x, y)
	}
}

// settled returns the gateway's calls in start order once it has recorded
// n: the gateway records a call after its client has the whole answer, so
// the last one may still be on its way.
func settled(t *testing.T, gw *sinkStore, n int) []*llmscope.Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(gw.all()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return byStart(gw.all())
}

// byStart orders calls by their start.
func byStart(calls []*llmscope.Call) []*llmscope.Call {
	slices.SortStableFunc(calls, func(a, b *llmscope.Call) int { return a.Start.Compare(b.Start) })
	return calls
}

func closeRec(t *testing.T, rec *sdk.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSameCallsAsGatewayOpenAIGo(t *testing.T) {
	simURL, gwURL, gw, rec, store := setup(t)
	viaGW := openai.NewClient(option.WithBaseURL(gwURL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	viaSDK := openai.NewClient(option.WithBaseURL(simURL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0), option.WithHTTPClient(rec.HTTPClient()))
	ctx := context.Background()
	chat := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Temperature: openai.Float(0.3),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Name two rivers.")}}
	cases := []struct {
		name string
		run  func(c *openai.Client) error
	}{
		{"chat", func(c *openai.Client) error { _, err := c.Chat.Completions.New(ctx, chat); return err }},
		{"chat stream", func(c *openai.Client) error {
			s := c.Chat.Completions.NewStreaming(ctx, chat)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if acc.Usage.TotalTokens != 0 {
				return errors.New("the client received usage it did not ask for")
			}
			return s.Err()
		}},
		{"embeddings", func(c *openai.Client) error {
			_, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "text-embedding-3-small",
				Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}})
			return err
		}},
		{"responses stream", func(c *openai.Client) error {
			s := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "o4-mini",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Write a haiku.")}})
			for s.Next() {
			}
			return s.Err()
		}},
		{"responses", func(c *openai.Client) error {
			_, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4.1-mini",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hello")}})
			return err
		}},
	}
	for _, c := range cases {
		if err := c.run(&viaGW); err != nil {
			t.Fatalf("%s via gateway: %v", c.name, err)
		}
		if err := c.run(&viaSDK); err != nil {
			t.Fatalf("%s via sdk: %v", c.name, err)
		}
	}
	closeRec(t, rec)
	g, s := settled(t, gw, len(cases)), byStart(store.all())
	if len(g) != len(cases) || len(s) != len(cases) {
		t.Fatalf("gateway recorded %d calls, sdk %d; want %d each", len(g), len(s), len(cases))
	}
	for i, c := range cases {
		if s[i].Usage.Source != llmscope.UsageReported || s[i].Cost == nil && c.name != "" && s[i].RequestModel == "" {
			t.Errorf("%s: sdk usage %+v", c.name, s[i].Usage)
		}
		g[i].Cost, s[i].Cost = nil, nil // the gateway here has no pricer
		same(t, c.name, g[i], s[i])
	}
}

func TestSameCallsAsGatewayGoOpenAI(t *testing.T) {
	simURL, gwURL, gw, rec, store := setup(t)
	newClient := func(base string, hc *http.Client) *goopenai.Client {
		cfg := goopenai.DefaultConfig("k")
		cfg.BaseURL = base + "/v1"
		if hc != nil {
			cfg.HTTPClient = hc
		}
		return goopenai.NewClientWithConfig(cfg)
	}
	viaGW, viaSDK := newClient(gwURL, nil), newClient(simURL, rec.HTTPClient())
	ctx := context.Background()
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o", Temperature: 0.5, MaxTokens: 50,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Say hi."}}}
	for _, c := range []*goopenai.Client{viaGW, viaSDK} {
		if _, err := c.CreateChatCompletion(ctx, req); err != nil {
			t.Fatal(err)
		}
		sreq := req
		sreq.Stream = true
		st, err := c.CreateChatCompletionStream(ctx, sreq)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := st.Recv(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
		}
		st.Close()
	}
	closeRec(t, rec)
	g, s := settled(t, gw, 2), byStart(store.all())
	if len(g) != 2 || len(s) != 2 {
		t.Fatalf("gateway %d calls, sdk %d; want 2 each", len(g), len(s))
	}
	for i := range g {
		g[i].Cost, s[i].Cost = nil, nil
		same(t, []string{"chat", "chat stream"}[i], g[i], s[i])
	}
}

func TestContextLabels(t *testing.T) {
	simURL, _, _, rec, store := setup(t)
	c := openai.NewClient(option.WithBaseURL(simURL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0), option.WithHTTPClient(rec.HTTPClient()))
	ctx := sdk.WithTags(sdk.WithSession(sdk.WithUser(sdk.WithExperiment(sdk.WithRun(context.Background(), "r1"), "exp"), "ann"), "s9"), map[string]string{"team": "x"})
	if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
	closeRec(t, rec)
	got := store.all()[0]
	if got.Run != "r1" || got.Experiment != "exp" || got.User != "ann" || got.Session != "s9" || got.Tags["team"] != "x" || got.Cost == nil {
		t.Errorf("labels not recorded: %+v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	simURL, _, _, rec, store := setup(t)
	c := openai.NewClient(option.WithBaseURL(simURL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0), option.WithHTTPClient(rec.HTTPClient()))
	var wg sync.WaitGroup
	errs := make(chan error, 64*4)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				p := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
				ctx := sdk.WithRun(context.Background(), "r")
				if (g+i)%2 == 0 {
					s := c.Chat.Completions.NewStreaming(ctx, p)
					for s.Next() {
					}
					errs <- s.Err()
				} else {
					_, err := c.Chat.Completions.New(ctx, p)
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	closeRec(t, rec)
	if n := len(store.all()); n != 256 {
		t.Errorf("recorded %d of 256 calls", n)
	}
}

func TestEarlyClosedStreamLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := httptest.NewServer(sim.New(sim.Config{TokensPerSecond: 50}))
	store := &memStore{}
	rec, err := sdk.New(context.Background(), sdk.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	c := openai.NewClient(option.WithBaseURL(up.URL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0), option.WithHTTPClient(rec.HTTPClient()))
	for range 5 {
		s := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me a long story")}})
		for i := 0; i < 2 && s.Next(); i++ {
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	closeRec(t, rec)
	up.CloseClientConnections()
	up.Close()
	calls := store.all()
	if len(calls) != 5 {
		t.Fatalf("recorded %d of 5 calls", len(calls))
	}
	for _, c := range calls {
		if c.ErrorType != llmscope.ErrTypeCancelled {
			t.Errorf("early-closed stream recorded as %q", c.ErrorType)
		}
	}
}

func TestGoOpenAIEmbeddingsSameAsGateway(t *testing.T) {
	simURL, gwURL, gw, rec, store := setup(t)
	for _, base := range []string{gwURL, simURL} {
		cfg := goopenai.DefaultConfig("k")
		cfg.BaseURL = base + "/v1"
		if base == simURL {
			cfg.HTTPClient = rec.HTTPClient()
		}
		if _, err := goopenai.NewClientWithConfig(cfg).CreateEmbeddings(context.Background(), goopenai.EmbeddingRequest{
			Model: goopenai.SmallEmbedding3, Input: []string{"first", "second"}}); err != nil {
			t.Fatal(err)
		}
	}
	closeRec(t, rec)
	g, s := settled(t, gw, 1), byStart(store.all())
	if len(g) != 1 || len(s) != 1 {
		t.Fatalf("gateway %d, sdk %d calls", len(g), len(s))
	}
	s[0].Cost = nil
	same(t, "embeddings", g[0], s[0])
}

func TestMetricsInCallersRegistry(t *testing.T) {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	reg := prometheus.NewRegistry()
	rec, err := sdk.New(context.Background(), sdk.Config{Store: &memStore{}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c := openai.NewClient(option.WithBaseURL(up.URL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0), option.WithHTTPClient(rec.HTTPClient()))
	if _, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() == "llmscope_requests_total" && f.GetMetric()[0].GetCounter().GetValue() == 1 {
			found = true
		}
	}
	if !found {
		t.Error("llmscope_requests_total not in the caller's registry")
	}
	closeRec(t, rec)
	// Close took the collectors out again: a new Recorder can register.
	again, err := sdk.New(context.Background(), sdk.Config{Store: &memStore{}, Registerer: reg})
	if err != nil {
		t.Fatalf("second Recorder on the same registry: %v", err)
	}
	closeRec(t, again)
}
