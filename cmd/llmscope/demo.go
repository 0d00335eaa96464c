package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runDemo drives a few minutes of varied traffic at a running gateway so its
// dashboard, stats and reports have something to show: two experiments with
// different model mixes, named runs, streamed and non-streamed chats,
// embeddings, Responses calls, varied sampling parameters, and some requests
// that fail.
func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("demo", stderr)
	url := s.str("url", "LLMSCOPE_DEMO_URL", "http://127.0.0.1:8700", "base URL of a running llmscope serve (without /v1)")
	duration := s.str("duration", "LLMSCOPE_DEMO_DURATION", "2m", "how long to send traffic")
	rate := s.str("rate", "LLMSCOPE_DEMO_RATE", "5", "requests started per second")
	concurrency := s.str("concurrency", "LLMSCOPE_DEMO_CONCURRENCY", "16", "requests in flight at most")
	seed := s.str("seed", "LLMSCOPE_DEMO_SEED", "1", "seed of the traffic mix")
	every := s.str("progress", "LLMSCOPE_DEMO_PROGRESS", "5s", "interval of the progress lines")
	allowReal := s.boolean("allow-real-upstream", "", false, "send the traffic even when the gateway is not answering from the built-in simulator (it costs money)")
	if err := s.parse(args); err != nil {
		return err
	}
	d, err := duration.Duration()
	if err != nil {
		return err
	}
	r, err := rate.Float()
	if err != nil || r <= 0 {
		return fmt.Errorf("--rate: want a positive number of requests per second, got %q", rate.val)
	}
	conc, err := concurrency.Int()
	if err != nil || conc < 1 {
		return fmt.Errorf("--concurrency: want a positive integer, got %q", concurrency.val)
	}
	sd, err := seed.Int()
	if err != nil {
		return err
	}
	progress, err := every.Duration()
	if err != nil || progress <= 0 {
		return fmt.Errorf("--progress: want a positive duration, got %q", every.val)
	}
	realOK, err := allowReal.Bool()
	if err != nil {
		return err
	}
	dm := &demo{
		base:   strings.TrimSuffix(strings.TrimSuffix(url.val, "/"), "/v1"),
		key:    os.Getenv("OPENAI_API_KEY"),
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: int(conc)}},
		rng:    rand.New(rand.NewPCG(uint64(sd), 0x6c6c6d73636f7065)),
		stats:  newDemoStats(),
	}
	if dm.key == "" {
		dm.key = "sk-llmscope-demo" // the simulator takes any key
	}
	sim, err := dm.checkUpstream(ctx)
	if err != nil {
		return err
	}
	if !sim && !realOK {
		return fmt.Errorf("the gateway at %s is not answering from the built-in simulator: the demo's %v of traffic would go to a real API and cost money; pass --allow-real-upstream to send it anyway", dm.base, d)
	}
	fmt.Fprintf(stdout, "llmscope demo: sending about %g requests/s for %v to %s/v1 (experiments demo-a and demo-b)\n", r, d, dm.base)
	dm.run(ctx, d, r, int(conc), progress, stdout)
	dm.summary(stdout)
	return nil
}

type demo struct {
	base, key string
	client    *http.Client
	rng       *rand.Rand // used by the scheduler only
	stats     *demoStats
}

// checkUpstream reports whether the gateway answers from the simulator,
// judged by its model list (owned_by "llmscope-sim").
func (dm *demo) checkUpstream(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, dm.base+"/v1/models", nil)
	if err != nil {
		return false, fmt.Errorf("--url %s: %w", dm.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+dm.key)
	res, err := dm.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("no gateway at %s (start one with `llmscope serve` or `make serve`): %w", dm.base, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode == http.StatusUnauthorized {
		return false, fmt.Errorf("the gateway at %s refused the demo (401): set OPENAI_API_KEY to one of its client keys", dm.base)
	}
	return bytes.Contains(b, []byte(`"owned_by":"llmscope-sim"`)), nil
}

// demoCall is one request of the mix.
type demoCall struct {
	kind       string // chat, stream, embeddings, responses, invalid
	path       string
	experiment string
	run        string
	model      string
	body       []byte
	stream     bool
	fault      string // X-Sim-Fault
}

// Model mixes: demo-a leans on small, fast models, demo-b on larger and
// reasoning ones, so their latency differs.
var (
	demoModelsA = []weighted{{"gpt-4o-mini", 5}, {"gpt-4.1-mini", 3}, {"gpt-4.1-nano", 2}}
	demoModelsB = []weighted{{"gpt-4o", 4}, {"gpt-4.1", 3}, {"o4-mini", 2}, {"o3-mini", 1}}
	demoPrompts = []string{
		"Summarize the plot of Hamlet in two sentences.",
		"Write a haiku about observability.",
		"Explain the difference between TCP and UDP to a new engineer.",
		"Suggest three names for a coffee shop run by robots.",
		"What are the trade-offs of caching at the edge?",
		"Translate 'the quick brown fox' into French and German.",
		"Give me a SQL query that finds duplicate e-mail addresses.",
		"Describe a bridge, briefly.",
		"List five uses of a paperclip nobody thinks of.",
		"Why is the sky blue? Answer like a pirate.",
		"Draft a polite reply declining a meeting invitation.",
		"Outline a 20-minute talk about time to first token.",
	}
)

type weighted struct {
	v string
	w int
}

func pick(r *rand.Rand, ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	n := r.IntN(total)
	for _, w := range ws {
		if n < w.w {
			return w.v
		}
		n -= w.w
	}
	return ws[len(ws)-1].v
}

// next draws the i-th request of the mix.
func (dm *demo) next(i int) demoCall {
	r := dm.rng
	c := demoCall{experiment: "demo-a", path: "/v1/chat/completions"}
	models := demoModelsA
	if r.IntN(5) >= 3 {
		c.experiment, models = "demo-b", demoModelsB
	}
	switch c.experiment {
	case "demo-a":
		c.run = []string{"baseline", "baseline", "creative", ""}[r.IntN(4)]
	default:
		c.run = []string{"candidate", "candidate", ""}[r.IntN(3)]
	}
	c.model = pick(r, models)
	prompt := demoPrompts[r.IntN(len(demoPrompts))] + " (demo request " + strconv.Itoa(i) + ")"
	body := map[string]any{"model": c.model}
	sampling := func() {
		if c.run == "creative" {
			body["temperature"] = []float64{1.0, 1.2, 1.5}[r.IntN(3)]
		} else {
			body["temperature"] = []float64{0, 0.2, 0.7}[r.IntN(3)]
		}
		if r.IntN(3) == 0 {
			body["top_p"] = []float64{0.5, 0.9, 1}[r.IntN(3)]
		}
	}
	switch k := r.IntN(100); {
	case k < 45:
		c.kind, c.stream = "stream", true
		body["messages"] = demoMessages(r, prompt)
		body["stream"] = true
		if r.IntN(2) == 0 {
			body["stream_options"] = map[string]any{"include_usage": true}
		}
		sampling()
		if r.IntN(4) == 0 {
			body["max_tokens"] = []int{16, 64, 256}[r.IntN(3)]
		}
		if r.IntN(40) == 0 {
			c.fault = "reset_after=3" // a stream the upstream breaks off
		}
	case k < 70:
		c.kind = "chat"
		body["messages"] = demoMessages(r, prompt)
		sampling()
		if r.IntN(3) == 0 {
			body["max_completion_tokens"] = []int{16, 128, 512}[r.IntN(3)]
		}
		if r.IntN(4) == 0 {
			body["seed"] = r.IntN(1000)
		}
	case k < 82:
		c.kind, c.path = "embeddings", "/v1/embeddings"
		c.model = []string{"text-embedding-3-small", "text-embedding-3-small", "text-embedding-3-large"}[r.IntN(3)]
		body = map[string]any{"model": c.model, "input": []string{prompt, "second input of " + strconv.Itoa(i)}[:1+r.IntN(2)]}
	case k < 94:
		c.kind, c.path = "responses", "/v1/responses"
		body["input"] = prompt
		body["instructions"] = "Be concise."
		if r.IntN(2) == 0 {
			body["stream"], c.stream = true, true
		}
		if t := r.IntN(3); t > 0 {
			body["temperature"] = []float64{0.3, 1.0}[t-1]
		}
	default:
		// What a buggy client sends: the API answers 400.
		c.kind = "invalid"
		body["messages"] = demoMessages(r, prompt)
		switch r.IntN(3) {
		case 0:
			body["temperature"] = "hot"
		case 1:
			body["top_p"] = 1.5
		default:
			body["max_tokens"] = "100"
		}
	}
	c.body, _ = json.Marshal(body)
	return c
}

func demoMessages(r *rand.Rand, prompt string) []map[string]string {
	msgs := []map[string]string{}
	if r.IntN(2) == 0 {
		msgs = append(msgs, map[string]string{"role": "system", "content": []string{"You are a helpful assistant.", "Be brief.", "Answer as a senior engineer."}[r.IntN(3)]})
	}
	return append(msgs, map[string]string{"role": "user", "content": prompt})
}

// run starts requests at rate per second, at most conc at a time, until d
// has passed or ctx ends, printing a progress line every interval; it
// waits for the requests in flight.
func (dm *demo) run(ctx context.Context, d time.Duration, rate float64, conc int, every time.Duration, stdout io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	report := time.NewTicker(every)
	defer report.Stop()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		c := dm.next(i)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-report.C:
			fmt.Fprintln(stdout, dm.stats.line(time.Since(start).Round(time.Second).String()))
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			// Requests in flight finish even when the duration is up.
			dm.stats.add(c, dm.send(context.WithoutCancel(ctx), c))
		})
	}
}

// demoResult is the outcome of one request.
type demoResult struct {
	status  int // 0: no response
	latency time.Duration
	broken  bool // a stream that ended without its end marker
}

func (dm *demo) send(ctx context.Context, c demoCall) demoResult {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dm.base+c.path, bytes.NewReader(c.body))
	if err != nil {
		return demoResult{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+dm.key)
	req.Header.Set("X-Llmscope-Experiment", c.experiment)
	if c.run != "" {
		req.Header.Set("X-Llmscope-Run", c.run)
	}
	if c.fault != "" {
		req.Header.Set("X-Sim-Fault", c.fault)
	}
	res, err := dm.client.Do(req)
	if err != nil {
		return demoResult{latency: time.Since(start)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	out := demoResult{status: res.StatusCode, latency: time.Since(start)}
	if res.StatusCode == http.StatusOK && c.stream {
		end := []byte("data: [DONE]")
		if c.path == "/v1/responses" {
			end = []byte("response.")
		}
		out.broken = err != nil || !bytes.Contains(b, end)
	}
	return out
}

// demoStats counts what the demo sent and how it went.
type demoStats struct {
	mu       sync.Mutex
	sent     int
	ok       int
	statuses map[int]int // failures by status, 0 for no response or a broken stream
	kinds    map[string]int
	latency  map[string][]time.Duration // successful calls' latency by experiment
}

func newDemoStats() *demoStats {
	return &demoStats{statuses: map[int]int{}, kinds: map[string]int{}, latency: map[string][]time.Duration{}}
}

func (s *demoStats) add(c demoCall, r demoResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	s.kinds[c.kind]++
	switch {
	case r.status == http.StatusOK && !r.broken:
		s.ok++
		if c.kind != "embeddings" {
			s.latency[c.experiment] = append(s.latency[c.experiment], r.latency)
		}
	case r.broken:
		s.statuses[0]++
	default:
		s.statuses[r.status]++
	}
}

func (s *demoStats) failures() (n int, detail string) {
	codes := make([]int, 0, len(s.statuses))
	for code, k := range s.statuses {
		n += k
		codes = append(codes, code)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, code := range codes {
		name := strconv.Itoa(code)
		if code == 0 {
			name = "broken/no response"
		}
		parts = append(parts, fmt.Sprintf("%d× %s", s.statuses[code], name))
	}
	if len(parts) == 0 {
		return n, ""
	}
	return n, " (" + strings.Join(parts, ", ") + ")"
}

func (s *demoStats) line(when string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, detail := s.failures()
	return fmt.Sprintf("llmscope demo: %s: %d sent, %d ok, %d failed%s; %d streams, %d chats, %d embeddings, %d responses",
		when, s.sent, s.ok, n, detail, s.kinds["stream"], s.kinds["chat"], s.kinds["embeddings"], s.kinds["responses"])
}

func (dm *demo) summary(stdout io.Writer) {
	s := dm.stats
	fmt.Fprintln(stdout, s.line("done"))
	s.mu.Lock()
	for _, exp := range []string{"demo-a", "demo-b"} {
		l := slices.Clone(s.latency[exp])
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		fmt.Fprintf(stdout, "  %s: %d answers, latency p50 %v, p95 %v (client side)\n", exp, len(l),
			l[len(l)/2].Round(time.Millisecond), l[len(l)*95/100].Round(time.Millisecond))
	}
	s.mu.Unlock()
	fmt.Fprintf(stdout, `Where to look:
  dashboard   %s/  (filter by experiment demo-a / demo-b, runs baseline, creative, candidate)
  stats       llmscope stats --group-by experiment,model
  report      llmscope report --out demo-report   (charts and summary.md)
  calls       llmscope calls --limit 20
(stats, report and calls read the gateway's store: run them where serve runs, with its --db)
`, dm.base)
}
