package gate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
	"llmscope/budget"
	"llmscope/budget/gate"
	"llmscope/gateway"
	"llmscope/openai"
	"llmscope/pricing"
	"llmscope/sim"
)

// pricey is a price table with one expensive model, so that a few calls
// cross a budget of cents.
func pricey(t testing.TB) *pricing.Table {
	t.Helper()
	tab, err := pricing.Parse([]byte("models:\n  - {model: pricey, input: 100, output: 400, source: test, as_of: 2026-01-01}\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// collect keeps the recorded calls.
type collect struct {
	mu    sync.Mutex
	calls []*llmscope.Call
}

func (c *collect) Record(call *llmscope.Call) {
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
}

func (c *collect) all() []*llmscope.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*llmscope.Call(nil), c.calls...)
}

// rig is a gateway with a Gate in front of the simulator, counting the
// requests that reach the simulator.
type rig struct {
	url      string
	upstream atomic.Int64
	sink     *collect
	gw       *gateway.Gateway
}

func newRig(t *testing.T, gate *gate.Gate, prices *pricing.Table) *rig {
	t.Helper()
	r := &rig{sink: &collect{}}
	s := sim.New(sim.Config{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.upstream.Add(1)
		s.ServeHTTP(w, req)
	}))
	t.Cleanup(up.Close)
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: r.sink, Pricer: prices, Admit: gate})
	if err != nil {
		t.Fatal(err)
	}
	r.gw = gw
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// post sends a chat request as user and returns the answer, its body read.
func (r *rig) post(t *testing.T, user, model string, stream bool) (*http.Response, []byte) {
	t.Helper()
	return r.postMax(t, user, model, stream, 16)
}

// postMax is post with max_tokens maxTokens.
func (r *rig) postMax(t *testing.T, user, model string, stream bool, maxTokens int) (*http.Response, []byte) {
	t.Helper()
	body := `{"model":"` + model + `","max_tokens":` + strconv.Itoa(maxTokens) + `,"stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"count to ten"}]}`
	req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Llmscope-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (r *rig) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.gw.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// A user budget of 2 cents admits calls until the next would cross it,
// then refuses with 429 budget_exceeded (x-should-retry: false,
// Retry-After to the day's end) without forwarding; the settled spend
// is the recorded cost, within the limit.
func TestGateBudget(t *testing.T) {
	prices := pricey(t)
	ledger := new(budget.MemLedger)
	enf, err := budget.New([]budget.Budget{{Name: "daily", Kind: budget.KindUser, Period: budget.Day, LimitUSD: 0.02}},
		budget.Options{Ledger: ledger, LeaseShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	gate := gate.New(gate.Options{Enforcer: enf, Prices: prices, OnRefused: func(string) { refused.Add(1) }})
	r := newRig(t, gate, prices)
	admitted := 0
	var refusal []byte
	for i := range 20 {
		resp, body := r.post(t, "alice", "pricey", i%2 == 0)
		r.wait(t)
		if err := enf.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			admitted++
			continue
		}
		if resp.StatusCode != 429 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if resp.Header.Get("x-should-retry") != "false" {
			t.Errorf("x-should-retry = %q", resp.Header.Get("x-should-retry"))
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 || ra > 86400 {
			t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
		refusal = body
	}
	if admitted == 0 || refusal == nil {
		t.Fatalf("admitted %d of 20, refusal %q", admitted, refusal)
	}
	var e struct {
		Error struct{ Type, Code, Message string }
	}
	if err := json.Unmarshal(refusal, &e); err != nil || e.Error.Type != "budget_exceeded" || !strings.Contains(e.Error.Message, `"daily"`) {
		t.Errorf("refusal body %s (%v)", refusal, err)
	}
	if n := r.upstream.Load(); n != int64(admitted) {
		t.Errorf("upstream saw %d requests, admitted %d", n, admitted)
	}
	if refused.Load() != int64(20-admitted) {
		t.Errorf("OnRefused %d times, %d refused", refused.Load(), 20-admitted)
	}
	var spent float64
	for _, c := range r.sink.all() {
		switch {
		case c.Status == 200 && c.Cost != nil:
			spent += c.Cost.TotalUSD
		case c.Status == 429 && c.ErrorType != "budget_exceeded":
			t.Errorf("refused call recorded with error type %q", c.ErrorType)
		case c.Status == 200:
			t.Errorf("call %s without a cost", c.ID)
		}
	}
	tot, _ := ledger.Totals(context.Background(), budget.KeyFor(&budget.Budget{Name: "daily", Period: budget.Day}, "alice", time.Now()))
	if d := tot.Spent.USD() - spent; d < -1e-8 || d > 1e-8*float64(admitted) {
		t.Errorf("ledger spent %v, recorded %v", tot.Spent.USD(), spent)
	}
	if spent > 0.02 {
		t.Errorf("spent %v over the 0.02 limit", spent)
	}
	if tot.Held != 0 {
		t.Errorf("held %v after the calls", tot.Held)
	}
}

// A 3 RPM limit: three requests pass with x-ratelimit-* headers counting
// down, the fourth gets 429 rate_limit_exceeded with Retry-After and
// never reaches the upstream.
func TestGateRateLimit(t *testing.T) {
	// A fixed clock: no minute boundary falls between the requests.
	clock := fixedClock(time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC))
	lim, err := budget.NewLimiter(budget.RateLimits{User: budget.KindRates{Default: budget.Rate{RPM: 3, TPM: 100000}}}, nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	var limited atomic.Int64
	gate := gate.New(gate.Options{Limiter: lim, OnRateLimited: func(k budget.Kind, u budget.Unit) {
		if k == budget.KindUser && u == budget.Requests {
			limited.Add(1)
		}
	}})
	r := newRig(t, gate, nil)
	for i := range 4 {
		resp, body := r.post(t, "bob", "gpt-4o-mini", i == 1)
		if got := resp.Header.Get("x-ratelimit-limit-requests"); got != "3" {
			t.Errorf("request %d: x-ratelimit-limit-requests %q", i, got)
		}
		if resp.Header.Get("x-ratelimit-limit-tokens") != "100000" || resp.Header.Get("x-ratelimit-reset-requests") == "" {
			t.Errorf("request %d: headers %v", i, resp.Header)
		}
		rem := strconv.Itoa(max(2-i, 0))
		if got := resp.Header.Get("x-ratelimit-remaining-requests"); got != rem {
			t.Errorf("request %d: remaining %q, want %s", i, got, rem)
		}
		if i < 3 {
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != 429 || !strings.Contains(string(body), `"rate_limit_exceeded"`) || !strings.Contains(string(body), `"requests"`) {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "50" {
			t.Errorf("Retry-After %q, want 50 (to the minute's end)", ra)
		}
	}
	if n := r.upstream.Load(); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	if limited.Load() != 1 {
		t.Errorf("OnRateLimited %d", limited.Load())
	}
}

// A model without a price is admitted without a budget reservation, even
// under a budget it would cross if priced, and reported.
func TestGateUnpriced(t *testing.T) {
	enf, err := budget.New([]budget.Budget{{Name: "tiny", Kind: budget.KindUser, Period: budget.Total, LimitUSD: 1e-9}}, budget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var unpriced []string
	gate := gate.New(gate.Options{Enforcer: enf, Prices: pricey(t), OnUnpriced: func(m string) { unpriced = append(unpriced, m) }})
	r := newRig(t, gate, nil)
	if resp, body := r.post(t, "carol", "no-such-model", false); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := r.post(t, "carol", "pricey", false); resp.StatusCode != 429 {
		t.Errorf("priced model under a 1e-9 budget: %d", resp.StatusCode)
	}
	if len(unpriced) != 1 || unpriced[0] != "no-such-model" {
		t.Errorf("OnUnpriced %v", unpriced)
	}
}

// InputTokens counts OpenAI bodies as openai.EstimateInputTokens, and adds
// Anthropic's system prompt and Gemini's contents; other bodies count a
// third of their bytes.
func TestInputTokens(t *testing.T) {
	chat := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello there, how are you"}]}`)
	if got, want := gate.InputTokens(llmscope.OpChat, "gpt-4o", chat), openai.EstimateInputTokens(llmscope.OpChat, "gpt-4o", chat); got != want || got == 0 {
		t.Errorf("chat: %d, want %d", got, want)
	}
	anth := []byte(`{"model":"claude","system":"you are a careful assistant who answers briefly","messages":[{"role":"user","content":"hi"}]}`)
	noSys := []byte(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`)
	if a, b := gate.InputTokens(llmscope.OpChat, "claude", anth), gate.InputTokens(llmscope.OpChat, "claude", noSys); a <= b+5 {
		t.Errorf("anthropic system not counted: %d vs %d", a, b)
	}
	gem := []byte(`{"contents":[{"role":"user","parts":[{"text":"tell me a long story about a dragon and a knight"}]}],"systemInstruction":{"parts":[{"text":"be brief"}]}}`)
	if n := gate.InputTokens(llmscope.OpChat, "gemini-2.5-flash", gem); n < 12 || n > 40 {
		t.Errorf("gemini: %d tokens", n)
	}
	if n := gate.InputTokens(llmscope.OpChat, "x", []byte("not json at all")); n != 6 {
		t.Errorf("raw body: %d", n)
	}
}

// sharedCounter is a MemCounter the Limiter cannot tell from a store's:
// its token corrections go through Gate.Run.
type sharedCounter struct{ budget.MemCounter }

// With a shared Counter, token counts are corrected with the recorded
// usage by Run, in batches off the request path; what waits when Run
// ends is added before it returns.
func TestGateRunCorrectsTokens(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	counter := new(sharedCounter)
	lim, err := budget.NewLimiter(budget.RateLimits{User: budget.KindRates{Default: budget.Rate{TPM: 1 << 40}}}, counter, fixedClock(at))
	if err != nil {
		t.Fatal(err)
	}
	gate := gate.New(gate.Options{Limiter: lim})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gate.Run(ctx); close(done) }()
	r := newRig(t, gate, nil)
	// Let Run start (were it not running yet, Done would correct at once: the same counts).
	time.Sleep(10 * time.Millisecond)
	var want int64
	for i := range 5 {
		if resp, body := r.postMax(t, "dave", "gpt-4o-mini", i%2 == 0, 2000); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	r.wait(t)
	for _, c := range r.sink.all() {
		want += c.Usage.InputTokens + c.Usage.OutputTokens
	}
	cancel()
	<-done
	key := budget.CounterKey{Subject: budget.Subject{Kind: budget.KindUser, Name: "dave"}, Unit: budget.Tokens, Window: at.Unix() - 10}
	vals := make([]int64, 1)
	if _, err := counter.Take(context.Background(), []budget.CounterOp{{Key: key, Limit: 1 << 50}}, vals); err != nil {
		t.Fatal(err)
	}
	if vals[0] != want || want == 0 {
		t.Errorf("token count %d, recorded usage %d", vals[0], want)
	}
	if est := int64(5 * 2000); want >= est {
		t.Errorf("usage %d not below the estimates (%d): nothing was corrected", want, est)
	}
}

// A client key limited to some models gets 403 model_not_allowed for
// another, never forwarded; an allowed model passes.
func TestGateKeyModels(t *testing.T) {
	gate := gate.New(gate.Options{KeyOf: func(ctx context.Context) (*budget.Key, bool) {
		k, ok := llmscope.ClientKeyFrom(ctx)
		if !ok {
			return nil, false
		}
		return &budget.Key{Name: k.Name, Models: k.Models}, true
	}})
	r := newRig(t, gate, nil)
	inner := r.gw
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := llmscope.WithClientKey(req.Context(), &llmscope.ClientKey{Name: "k1", Models: []string{"gpt-4o*"}})
		inner.ServeHTTP(w, req.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	resp, body := r.post(t, "erin", "claude-sonnet-4-5", false)
	if resp.StatusCode != 403 || !strings.Contains(string(body), `"model_not_allowed"`) {
		t.Errorf("disallowed model: %d %s", resp.StatusCode, body)
	}
	if resp, body := r.post(t, "erin", "gpt-4o-mini", true); resp.StatusCode != 200 {
		t.Errorf("allowed model: %d %s", resp.StatusCode, body)
	}
	if n := r.upstream.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	r.wait(t)
	for _, c := range r.sink.all() {
		if c.RequestModel == "claude-sonnet-4-5" && (c.Status != 403 || c.ErrorType != "model_not_allowed") {
			t.Errorf("refused call recorded as %d %q", c.Status, c.ErrorType)
		}
	}
}

// A request whose estimated tokens alone exceed a token limit gets 429
// type "tokens" with x-should-retry: false (waiting cannot help); one that
// fits passes, its estimate counted.
func TestGateTokensTooLarge(t *testing.T) {
	clock := fixedClock(time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC))
	lim, err := budget.NewLimiter(budget.RateLimits{Model: budget.KindRates{Names: map[string]budget.Rate{"gpt-4o-mini": {TPM: 40}}}}, nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	var limited []string
	gate := gate.New(gate.Options{Limiter: lim, DefaultMaxOutput: 100, OnRateLimited: func(k budget.Kind, u budget.Unit) {
		limited = append(limited, string(k)+"/"+string(u))
	}})
	r := newRig(t, gate, nil)
	// max_tokens 16 + the prompt's tokens fit in 40.
	if resp, body := r.post(t, "fay", "gpt-4o-mini", false); resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-limit-tokens") != "40" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	// Without max_tokens the default of 100 output tokens is over 40.
	req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("x-should-retry") != "false" || !strings.Contains(string(body), `"type":"tokens"`) {
		t.Errorf("too large: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if len(limited) != 1 || limited[0] != "model/tokens" || r.upstream.Load() != 1 {
		t.Errorf("limited %v, upstream %d", limited, r.upstream.Load())
	}
}

// flakyCounter fails its first Adds, as a store that is down.
type flakyCounter struct {
	budget.MemCounter
	fails atomic.Int64
}

func (f *flakyCounter) Add(ctx context.Context, keys []budget.CounterKey, n int64) error {
	if f.fails.Add(-1) >= 0 {
		return io.ErrUnexpectedEOF
	}
	return f.MemCounter.Add(ctx, keys, n)
}

// Token corrections that fail are kept and added by a later flush.
func TestGateRunKeepsFailedCorrections(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	counter := new(flakyCounter)
	counter.fails.Store(3)
	lim, err := budget.NewLimiter(budget.RateLimits{User: budget.KindRates{Default: budget.Rate{TPM: 1 << 40}}}, counter, fixedClock(at))
	if err != nil {
		t.Fatal(err)
	}
	var errs atomic.Int64
	gate := gate.New(gate.Options{Limiter: lim, OnError: func(error) { errs.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gate.Run(ctx); close(done) }()
	r := newRig(t, gate, nil)
	time.Sleep(10 * time.Millisecond) // let Run start
	if resp, body := r.postMax(t, "gus", "gpt-4o-mini", false, 2000); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	r.wait(t)
	calls := r.sink.all()
	want := calls[0].Usage.InputTokens + calls[0].Usage.OutputTokens
	key := budget.CounterKey{Subject: budget.Subject{Kind: budget.KindUser, Name: "gus"}, Unit: budget.Tokens, Window: at.Unix() - 10}
	vals := make([]int64, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := counter.Take(context.Background(), []budget.CounterOp{{Key: key, Limit: 1 << 50}}, vals); err != nil {
			t.Fatal(err)
		}
		if vals[0] == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if vals[0] != want {
		t.Errorf("token count %d, recorded usage %d", vals[0], want)
	}
	if errs.Load() == 0 {
		t.Error("the failed corrections were not reported")
	}
}

// fixedClock is a budget.Clock that stays at one time.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// A key's models hold on every operation, and for Azure on the deployment
// the path names, whatever the body says; a request naming no model needs
// only a valid key.
func TestGateKeyModelsEveryOperation(t *testing.T) {
	g := gate.New(gate.Options{KeyOf: func(ctx context.Context) (*budget.Key, bool) {
		return &budget.Key{Name: "k1", Models: []string{"gpt-4o-mini"}}, true
	}})
	for _, tc := range []struct {
		op, model, deployment string
		want                  int // 0: admitted
	}{
		{llmscope.OpOther, "dall-e-3", "", 403},         // /v1/images/generations
		{llmscope.OpOther, "", "", 0},                   // /v1/files
		{llmscope.OpModels, "", "", 0},                  // GET /v1/models
		{llmscope.OpChat, "gpt-4o-mini", "gpt-4o", 403}, // Azure: the deployment decides
		{llmscope.OpChat, "", "gpt-4o-mini", 0},         // Azure without a body model
		{llmscope.OpChat, "gpt-4o-mini", "gpt-4o-mini", 0},
	} {
		c := &llmscope.Call{Operation: tc.op, RequestModel: tc.model, Deployment: tc.deployment}
		_, ref := g.Admit(context.Background(), &gateway.Admission{Call: c}, http.Header{})
		got := 0
		if ref != nil {
			got = ref.Status
		}
		if got != tc.want {
			t.Errorf("%s model %q deployment %q: refusal %d, want %d", tc.op, tc.model, tc.deployment, got, tc.want)
		}
	}
}
