package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"llmscope"
	"llmscope/sim"
)

func TestParseSpecErrorsNameFieldAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"unknown key", "dataset: d.jsonl\ngrid:\n  model: [a]\n  temprature: [0]\n", "s.yaml:4: grid.temprature: unknown field"},
		{"bad type", "dataset: d.jsonl\nrepeats: many\ngrid:\n  model: [a]\n", "s.yaml:2: repeats: cannot unmarshal"},
		{"out of range", "dataset: d.jsonl\ngrid:\n  model: [a]\n  temperature: [0, 3]\n", "s.yaml:4: grid.temperature: 3 is outside 0 to 2"},
		{"bad element on its line", "dataset: d.jsonl\ngrid:\n  model: [a]\n  top_p:\n    - 0.5\n    - 1.5\n", "s.yaml:6: grid.top_p: 1.5 is outside 0 to 1"},
		{"second document", "dataset: d.jsonl\ngrid: {model: [a]}\n---\nname: x\n", "s.yaml:3: a second YAML document"},
		{"no model", "dataset: d.jsonl\ngrid:\n  temperature: [0]\n", "s.yaml:2: grid.model: missing"},
		{"no dataset", "grid:\n  model: [a]\n", "s.yaml: dataset: missing"},
		{"bad scorer", "dataset: d.jsonl\ngrid: {model: [a]}\nscorer:\n  type: fuzzy\n", "s.yaml:4: scorer.type: \"fuzzy\" is not one of"},
		{"bad pattern", "dataset: d.jsonl\ngrid: {model: [a]}\nscorer:\n  type: regex\n  pattern: '(['\n", "s.yaml:5: scorer.pattern: error parsing regexp"},
		{"pattern without regex", "dataset: d.jsonl\ngrid: {model: [a]}\nscorer: {pattern: x}\n", "s.yaml:3: scorer.pattern: only the regex scorer"},
		{"bad sort", "dataset: d.jsonl\ngrid: {model: [a]}\nsort_by: speed\n", "s.yaml:3: sort_by:"},
		{"negative limit", "dataset: d.jsonl\ngrid: {model: [a]}\nrate_limit:\n  requests_per_minute: -1\n", "s.yaml:4: rate_limit.requests_per_minute: -1 is not a rate"},
		{"not a mapping", "- a\n- b\n", "s.yaml:1: want a mapping"},
		{"not yaml", "grid: [\n", "s.yaml: not YAML"},
		{"own header", "dataset: d.jsonl\ngrid: {model: [a]}\nheaders: {X-Llmscope-Run: r}\n", "s.yaml:3: headers: X-Llmscope-Run is set by the sweep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.spec), "s.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseSpecDefaultsAndConfigs(t *testing.T) {
	s, err := ParseSpec([]byte("dataset: d.jsonl\ngrid:\n  model: [a, b]\n  temperature: [0, 0.7, 0.7]\n  system: [\"Be terse.\"]\n"), "dir/capitals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "capitals" || s.Repeats != 1 || s.Concurrency != 4 || s.Scorer.Type != "exact" || s.SortBy != "accuracy" ||
		s.ExperimentName() != "llmscope" || s.OutDir() != "sweep-capitals" || s.attempts() != 5 || s.DatasetPath() != filepath.Join("dir", "d.jsonl") {
		t.Fatalf("defaults: %+v", s)
	}
	cs := s.Configs()
	if len(cs) != 4 { // the repeated 0.7 is one configuration
		t.Fatalf("%d configurations, want 4", len(cs))
	}
	want := "capitals: model=a temperature=0.7 system=" + SystemHash("Be terse.")
	if got := s.RunName(cs[1]); got != want {
		t.Errorf("run name %q, want %q", got, want)
	}
	if got := cs[3].Short(s.Varying()); got != "model=b temperature=0.7" {
		t.Errorf("short label %q", got)
	}
	var body map[string]any
	if err := json.Unmarshal(cs[0].Body(Item{Messages: []Message{{Role: "user", Content: "hi"}}}, false), &body); err != nil {
		t.Fatal(err)
	}
	msgs := body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || body["temperature"] != 0.0 || body["top_p"] != nil {
		t.Errorf("request body %v", body)
	}
}

func TestReadDataset(t *testing.T) {
	items, err := ReadDataset(strings.NewReader(`{"id":"a","prompt":"p1","expected":"x"}

{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]}
{"id":7,"prompt":"p3","extra":"ignored"}
`), "d.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].ID != "a" || *items[0].Expected != "x" || items[1].ID != "line-3" || len(items[1].Messages) != 2 ||
		items[1].Expected != nil || items[2].ID != "7" {
		t.Fatalf("items %+v", items)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"prompt":"a"}` + "\n" + `{"prompt":`, "d.jsonl:2: not a JSON object"},
		{`{"id":"a","prompt":"x"}` + "\n" + `{"id":"a","prompt":"y"}`, `d.jsonl:2: id: "a" is also the id of line 1`},
		{`{"expected":"x"}`, "d.jsonl:1: prompt or messages: missing"},
		{`{"prompt":"x","expected":3}`, "d.jsonl:1: expected: want a string"},
		{`{"prompt":5}`, "d.jsonl:1: prompt: want string"},
		{`{"messages":[{"role":"robot","content":"x"}]}`, `d.jsonl:1: messages[0].role: "robot"`},
		{`{"id":"a,b","prompt":"x"}`, "d.jsonl:1: id:"},
		{"\n\n", "d.jsonl: no items"},
	} {
		if _, err := ReadDataset(strings.NewReader(tc.in), "d.jsonl"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestScorers(t *testing.T) {
	p := func(s string) *string { return &s }
	for _, tc := range []struct {
		sc       Scorer
		answer   string
		expected *string
		want     float64
		scored   bool
	}{
		{Scorer{Type: "exact"}, " Paris\n", p("Paris"), 1, true},
		{Scorer{Type: "exact"}, "paris", p("Paris"), 0, true},
		{Scorer{Type: "exact", IgnoreCase: true}, "paris", p("Paris"), 1, true},
		{Scorer{Type: "exact"}, "Paris", nil, 0, false},
		{Scorer{Type: "contains"}, "It is Paris.", p("Paris"), 1, true},
		{Scorer{Type: "contains"}, "It is paris.", p("Paris"), 0, true},
		{Scorer{Type: "contains", IgnoreCase: true}, "It is PARIS.", p("Paris"), 1, true},
		{Scorer{Type: "regex"}, "answer: 42", p(`\b42\b`), 1, true},
		{Scorer{Type: "regex"}, "answer: 420", p(`\b42\b`), 0, true},
		{Scorer{Type: "regex"}, "x", p(`([`), 0, true},
		{Scorer{Type: "regex", Pattern: `^\d+$`}, "17", nil, 1, true},
		{Scorer{Type: "regex", Pattern: `^yes$`, IgnoreCase: true}, "YES", nil, 1, true},
		{Scorer{Type: "json_valid"}, ` {"a": [1, 2]} `, nil, 1, true},
		{Scorer{Type: "json_valid"}, `{"a": }`, nil, 0, true},
	} {
		got, ok := tc.sc.score(tc.answer, tc.expected)
		if got != tc.want || ok != tc.scored {
			t.Errorf("%+v on %q: %v %v, want %v %v", tc.sc, tc.answer, got, ok, tc.want, tc.scored)
		}
	}
}

// fakeReader serves calls from memory.
type fakeReader struct {
	calls []*llmscope.Call
}

func (f *fakeReader) List(_ context.Context, flt llmscope.Filter) ([]*llmscope.Call, error) {
	var out []*llmscope.Call
	for i := len(f.calls) - 1; i >= 0; i-- { // newest first
		if c := f.calls[i]; c.Run == flt.Run {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeReader) Stats(ctx context.Context, flt llmscope.Filter) (*llmscope.Stats, error) {
	calls, _ := f.List(ctx, flt)
	st := &llmscope.Stats{}
	for _, c := range calls {
		st.Totals.Calls++
		if c.Failed() {
			st.Totals.Errors++
		}
		st.Totals.TotalTokens += c.Usage.TotalTokens
	}
	return st, nil
}

// call returns a call of the sweep's unit (run, item "1", "2", … of
// testItems, repeat 1).
func call(run, item string, status int, output string) *llmscope.Call {
	return &llmscope.Call{ID: llmscope.NewID(), Run: run, Status: status, Output: output,
		Usage: llmscope.Usage{OutputTokens: int64(len(output)), TotalTokens: 10},
		Tags:  map[string]string{TagItem: item, TagRepeat: "1", TagItemHash: testItem(item).Hash}}
}

// testItem is item id of the Collect tests: it expects "yes".
func testItem(id string) Item {
	yes := "yes"
	it := Item{ID: id, Messages: []Message{{Role: "user", Content: "question " + id}}, Expected: &yes}
	it.Hash = it.hash()
	return it
}

func TestCollectScoresTheFinalCallOfEachUnit(t *testing.T) {
	s := &Spec{Name: "t", Dataset: "d", Grid: Grid{Model: []string{"a", "b"}}, Scorer: Scorer{Type: "contains"}}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	items := []Item{testItem("1"), testItem("2"), testItem("3")}
	ra, rb := s.RunName(s.Configs()[0]), s.RunName(s.Configs()[1])
	notCaptured := call(ra, "3", 200, "")
	notCaptured.Usage.OutputTokens = 5
	stale := call(rb, "3", 200, "yes")
	stale.Tags[TagItemHash] = "0123456789ab" // sent before item 3 was edited
	cancelled := call(rb, "2", 499, "")
	cancelled.ErrorType = llmscope.ErrTypeCancelled
	rd := &fakeReader{calls: []*llmscope.Call{
		call(ra, "1", 429, ""), call(ra, "1", 200, "yes indeed"), // retried, then right
		call(ra, "2", 200, "no"),
		notCaptured,            // answered, text only in the items log
		call(rb, "1", 500, ""), // failed for good
		call(rb, "2", 200, "yes"),
		cancelled, // interrupted after its unit was done: changes nothing
		stale,
		{ID: "x", Run: rb, Status: 200, Tags: map[string]string{}}, // not a sweep call
	}}
	log := &Log{Answers: map[string]string{notCaptured.ID: "yes!"}, Failed: map[unitKey]Outcome{
		{rb, "3", 1}: {Error: "request timed out", ItemHash: testItem("3").Hash}, // never reached the store
	}}
	res, err := Collect(context.Background(), rd, s, items, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows", len(res.Rows))
	}
	a, b := res.Rows[1], res.Rows[0] // b (100%) sorts before a (67%)
	if a.Run != ra || a.Done != 3 || a.Failed != 0 || a.Scored != 3 || a.Correct != 2 || a.Calls.Calls != 4 || a.Calls.Errors != 1 {
		t.Errorf("row a: %+v", a)
	}
	if b.Run != rb || b.Done != 1 || b.Failed != 2 || b.Scored != 1 || *b.Accuracy != 1 || b.Units != 3 {
		t.Errorf("row b: %+v", b)
	}
	var md bytes.Buffer
	if err := res.Markdown(&md); err != nil || !strings.Contains(md.String(), "| model=b | 1/3 | 2 | 100.0% |") {
		t.Errorf("markdown %v:\n%s", err, md.String())
	}
	dir := t.TempDir()
	if err := res.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.md", "results.json", "scores.jsonl", ChartFile + ".png", ChartFile + ".svg"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSortByMetric(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	res := &Results{SortBy: "latency_p50", Rows: []Row{
		{Run: "slow", Accuracy: f(0.9), Calls: llmscope.Summary{Calls: 1, LatencyP50MS: 30}},
		{Run: "none"},
		{Run: "fast", Accuracy: f(0.5), Calls: llmscope.Summary{Calls: 1, LatencyP50MS: 10}},
	}}
	res.sort()
	if got := res.Rows[0].Run + "," + res.Rows[1].Run + "," + res.Rows[2].Run; got != "fast,slow,none" {
		t.Errorf("by latency: %s", got)
	}
	res.SortBy = "accuracy"
	res.sort()
	if got := res.Rows[0].Run + "," + res.Rows[1].Run + "," + res.Rows[2].Run; got != "slow,fast,none" {
		t.Errorf("by accuracy: %s", got)
	}
}

// flaky answers with 429 the first time it sees each prompt containing
// "flaky", 400 for prompts containing "invalid", and otherwise passes the
// request to the simulator.
type flaky struct {
	mu   sync.Mutex
	seen map[string]int
	next http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	f.mu.Lock()
	f.seen[string(b)]++
	n := f.seen[string(b)]
	f.mu.Unlock()
	switch {
	case bytes.Contains(b, []byte("flaky")) && n == 1:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit","code":"rate_limit_exceeded"}}`)
	case bytes.Contains(b, []byte("invalid")):
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"message":"bad request","type":"invalid_request_error","code":null}}`)
	default:
		f.next.ServeHTTP(w, r)
	}
}

func TestRunRetries429AndGoesOnAfterAFailure(t *testing.T) {
	up := &flaky{seen: map[string]int{}, next: sim.New(sim.Config{})}
	srv := httptest.NewServer(up)
	defer srv.Close()
	dir := t.TempDir()
	s := &Spec{Name: "r", Dataset: "d", Grid: Grid{Model: []string{"m1", "m2"}}, Out: dir, Concurrency: 2, Scorer: Scorer{Type: "json_valid"}}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	items := []Item{
		{ID: "ok", Messages: []Message{{Role: "user", Content: "hello"}}},
		{ID: "flaky", Messages: []Message{{Role: "user", Content: "flaky one"}}},
		{ID: "bad", Messages: []Message{{Role: "user", Content: "invalid one"}}},
	}
	var progress bytes.Buffer
	r := &Runner{Spec: s, Items: items, BaseURL: srv.URL + "/v1", APIKey: "k", Reader: &fakeReader{},
		Progress: &Bar{W: &progress}, Backoff: time.Millisecond}
	outs, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 6 {
		t.Fatalf("%d outcomes, want 6: %+v", len(outs), outs)
	}
	for _, o := range outs {
		switch o.Item {
		case "ok":
			if o.Error != "" || o.Attempts != 1 || o.Score == nil || *o.Score != 0 {
				t.Errorf("ok: %+v", o)
			}
		case "flaky":
			if o.Error != "" || o.Attempts != 2 || o.Answer == "" {
				t.Errorf("flaky: %+v (want success on the second attempt)", o)
			}
		case "bad":
			if !strings.HasPrefix(o.Error, "400") || o.Attempts != 1 {
				t.Errorf("bad: %+v (want one attempt and a 400)", o)
			}
		}
	}
	if !strings.Contains(progress.String(), "6/6 (100%)") || !strings.Contains(progress.String(), "failed 2") {
		t.Errorf("progress:\n%s", progress.String())
	}
	// The items log has every outcome, and the answers by call id are empty
	// here (no recorder adds call ids).
	b, err := os.ReadFile(filepath.Join(dir, ItemsFile))
	if err != nil || bytes.Count(b, []byte("\n")) != 6 {
		t.Errorf("items log: %v\n%s", err, b)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	s := &Spec{Name: "c", Dataset: "d", Grid: Grid{Model: []string{"m"}}, Out: t.TempDir(), Concurrency: 1}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Spec: s, Items: []Item{{ID: "1", Messages: []Message{{Role: "user", Content: "x"}}}, {ID: "2", Messages: []Message{{Role: "user", Content: "y"}}}},
		BaseURL: srv.URL + "/v1", Reader: &fakeReader{}}
	time.AfterFunc(50*time.Millisecond, cancel)
	outs, err := r.Run(ctx)
	if !errors.Is(err, context.Canceled) || len(outs) != 0 {
		t.Fatalf("outcomes %+v, err %v; want none and context.Canceled (the unit in flight is not done)", outs, err)
	}
}

func TestHeaderDelay(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"Retry-After-Ms": {"250"}}, 250 * time.Millisecond, true},
		{http.Header{"Retry-After": {"2"}}, 2 * time.Second, true},
		{http.Header{"Retry-After": {"3600"}}, time.Minute, true},
		{http.Header{"Retry-After": {"soon"}}, 0, false},
		{http.Header{}, 0, false},
	} {
		if got, ok := headerDelay(tc.h); got != tc.want || ok != tc.ok {
			t.Errorf("%v: %v %v, want %v %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBarOnATerminalRedrawsOneLine(t *testing.T) {
	now := time.Unix(0, 0)
	var out bytes.Buffer
	b := &Bar{W: &out, TTY: true, Now: func() time.Time { return now }}
	b.Start(4, 2)
	one := 1.0
	for range 2 {
		now = now.Add(time.Second)
		b.Done(Outcome{Score: &one})
	}
	b.Finish()
	s := out.String()
	if !strings.Contains(s, "resuming: 2 already done, 4 to send") || !strings.Contains(s, "\r[===============               ] 2/4 (50%) 1.0/s ETA 2s accuracy 100.0%") {
		t.Errorf("bar output %q", s)
	}
}

func FuzzReadDataset(f *testing.F) {
	f.Add([]byte(`{"id":"a","prompt":"p","expected":"x"}` + "\n" + `{"messages":[{"role":"user","content":"u"}]}`))
	f.Add([]byte(`{"id":1.5e3,"prompt":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := ReadDataset(bytes.NewReader(b), "f")
		if err == nil && len(items) == 0 {
			t.Fatal("no error and no items")
		}
		for _, it := range items {
			if it.ID == "" || len(it.Messages) == 0 {
				t.Fatalf("item %+v", it)
			}
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte("dataset: d.jsonl\ngrid:\n  model: [a, b]\n  temperature: [0, 1]\n"))
	f.Add([]byte("dataset: d\ngrid: {model: [a]}\nscorer: {type: regex, pattern: 'x+'}\nrepeats: 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b, "f.yaml")
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a SpecError", err)
			}
			return
		}
		if len(s.Configs()) == 0 || s.Repeats < 1 || s.Concurrency < 1 {
			t.Fatalf("accepted spec %+v", s)
		}
	})
}

func TestRunStreams(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Config{}))
	defer srv.Close()
	s := &Spec{Name: "s", Dataset: "d", Grid: Grid{Model: []string{"m"}, MaxTokens: []int64{5}}, Out: t.TempDir(), Stream: true,
		RateLimit: RateLimit{RequestsPerMinute: 6000, TokensPerMinute: 60}} // a budget smaller than one request must not stall
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Spec: s, Items: []Item{{ID: "1", Messages: []Message{{Role: "user", Content: "tell me a long story"}}}},
		BaseURL: srv.URL + "/v1", Reader: &fakeReader{}}
	outs, err := r.Run(context.Background())
	if err != nil || len(outs) != 1 || outs[0].Error != "" || outs[0].Answer == "" {
		t.Fatalf("outcomes %+v, err %v", outs, err)
	}
	// The simulator honours max_tokens: the streamed answer is short.
	if n := len(strings.Fields(outs[0].Answer)); n > 5 {
		t.Errorf("answer %q has %d words under max_tokens 5", outs[0].Answer, n)
	}
}

func TestRetriesZeroMeansOneAttempt(t *testing.T) {
	up := &flaky{seen: map[string]int{}, next: sim.New(sim.Config{})}
	srv := httptest.NewServer(up)
	defer srv.Close()
	zero := 0
	s := &Spec{Name: "z", Dataset: "d", Grid: Grid{Model: []string{"m"}}, Out: t.TempDir(), Retries: &zero}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Spec: s, Items: []Item{{ID: "flaky", Messages: []Message{{Role: "user", Content: "flaky"}}}},
		BaseURL: srv.URL + "/v1", Reader: &fakeReader{}, Backoff: time.Millisecond}
	outs, err := r.Run(context.Background())
	if err != nil || len(outs) != 1 || outs[0].Attempts != 1 || !strings.HasPrefix(outs[0].Error, "429") {
		t.Fatalf("outcomes %+v, err %v; want one failed attempt", outs, err)
	}
}

func TestRetryOnlyWhatCanPass(t *testing.T) {
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{errors.New("the answer has no choices"), false},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{io.ErrUnexpectedEOF, true},
	} {
		if _, ok := retryAfter(tc.err, time.Millisecond, 1); ok != tc.retry {
			t.Errorf("%v: retry %v, want %v", tc.err, ok, tc.retry)
		}
	}
}
