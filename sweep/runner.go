package sweep

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"llmscope"
	oai "llmscope/openai"
)

// Tags every call of a sweep carries (besides the run name).
const (
	TagSweep    = "sweep"
	TagItem     = "sweep.item"
	TagItemHash = "sweep.item_hash" // the item's content: an edited item is sent again
	TagRepeat   = "sweep.repeat"
)

// Reader reads back what the store recorded; llmscope.Store is one.
type Reader interface {
	List(ctx context.Context, f llmscope.Filter) ([]*llmscope.Call, error)
	Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error)
}

// Progress hears about a sweep as it goes. Calls come from many goroutines
// and are serialised by the Runner. A Progress with a Tick method also
// gets it called every second.
type Progress interface {
	// Start announces the units to send now and those already done.
	Start(total, skipped int)
	// Done reports one finished unit.
	Done(o Outcome)
	// Finish ends the report.
	Finish()
}

// Outcome is what became of one unit: one item under one configuration,
// one repeat.
type Outcome struct {
	Run      string   `json:"run"`
	Item     string   `json:"item"`
	ItemHash string   `json:"item_hash"`
	Repeat   int      `json:"repeat"`
	CallID   string   `json:"call_id,omitempty"`
	Answer   string   `json:"answer"`
	Score    *float64 `json:"score,omitempty"`
	Error    string   `json:"error,omitempty"`
	Attempts int      `json:"attempts"`
}

// Runner sends a sweep's units and records what became of them.
type Runner struct {
	Spec  *Spec
	Items []Item
	// BaseURL is an OpenAI-style base URL with its /v1: a gateway's, or the
	// upstream's when HTTPClient records the calls itself (sdk).
	BaseURL    string
	APIKey     string
	HTTPClient *http.Client
	// Reader finds units already done, so a re-run resumes.
	Reader   Reader
	Progress Progress
	Log      *slog.Logger
	// Backoff is the first wait before a retry (default 500ms); it doubles
	// per attempt up to 30 s, unless the answer says how long to wait.
	Backoff time.Duration

	mu    sync.Mutex
	items *os.File // items.jsonl in the results directory
}

type unit struct {
	cfg    Config
	run    string
	item   Item
	repeat int
}

// ItemsFile is the name of the per-unit log in the results directory.
const ItemsFile = "items.jsonl"

// Run sends every unit not done yet, at most Spec.Concurrency at a time
// and within the rate limits, and returns the outcomes of this run (not of
// units done before). It stops early, returning ctx's error, when ctx is
// cancelled; units in flight then count as not done.
func (r *Runner) Run(parent context.Context) ([]Outcome, error) {
	ctx, stop := context.WithCancel(parent)
	defer stop()
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.Backoff <= 0 {
		r.Backoff = 500 * time.Millisecond
	}
	s := r.Spec
	done, err := finished(ctx, r.Reader, s, r.Items)
	if err != nil {
		return nil, err
	}
	var todo []unit
	skipped := 0
	configs := s.Configs()
	for rep := 1; rep <= s.Repeats; rep++ {
		for _, it := range r.Items {
			for _, c := range configs {
				u := unit{cfg: c, run: s.RunName(c), item: it, repeat: rep}
				if done[unitKey{u.run, it.ID, rep}] {
					skipped++
					continue
				}
				todo = append(todo, u)
			}
		}
	}
	if err := os.MkdirAll(s.OutDir(), 0o755); err != nil {
		return nil, fmt.Errorf("results directory: %w", err)
	}
	if r.items, err = os.OpenFile(filepath.Join(s.OutDir(), ItemsFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	defer r.items.Close()
	if r.Progress != nil {
		r.Progress.Start(len(todo), skipped)
		defer r.Progress.Finish()
		if t, ok := r.Progress.(interface{ Tick() }); ok {
			quit, ticking := make(chan struct{}), make(chan struct{})
			defer func() { close(quit); <-ticking }() // before Finish
			go func() {
				defer close(ticking)
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					select {
					case <-quit:
						return
					case <-tick.C:
						r.mu.Lock()
						t.Tick()
						r.mu.Unlock()
					}
				}
			}()
		}
	}
	client := oai.NewClient(r.BaseURL, r.APIKey, r.HTTPClient)
	for k, v := range s.Headers {
		client.Header.Add(k, v)
	}
	reqs := limiter(s.RateLimit.RequestsPerMinute, 1)
	largest := 1
	for _, u := range todo {
		largest = max(largest, u.tokens())
	}
	toks := limiter(s.RateLimit.TokensPerMinute, largest)

	var outcomes []Outcome
	var logErr error
	work := make(chan unit)
	var wg sync.WaitGroup
	for range min(s.Concurrency, max(len(todo), 1)) {
		wg.Go(func() {
			for u := range work {
				o := r.send(ctx, client, u, reqs, toks)
				if ctx.Err() != nil && o.Error != "" {
					return // interrupted, not failed: the unit stays to do
				}
				r.mu.Lock()
				outcomes = append(outcomes, o)
				if err := r.record(o); err != nil && logErr == nil {
					logErr = err
					stop() // without its log the sweep cannot score what it sends
				}
				if r.Progress != nil {
					r.Progress.Done(o)
				}
				r.mu.Unlock()
			}
		})
	}
feed:
	for _, u := range todo {
		select {
		case work <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if logErr != nil {
		return outcomes, logErr
	}
	return outcomes, parent.Err()
}

// record appends o to items.jsonl; r.mu is held.
func (r *Runner) record(o Outcome) error {
	b, err := json.Marshal(o)
	if err == nil {
		_, err = r.items.Write(append(b, '\n'))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", ItemsFile, err)
	}
	return nil
}

// limiter returns a limiter of perMinute events with the given burst, or
// nil for no limit. Over any minute no more than perMinute plus one burst
// passes.
func limiter(perMinute float64, burst int) *rate.Limiter {
	if perMinute <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perMinute/60), max(1, burst))
}

// tokens is what u counts against a tokens-per-minute limit: its input
// tokens plus max_tokens, as providers count it.
func (u unit) tokens() int {
	n := int(oai.EstimateInputTokens(llmscope.OpChat, u.cfg.Model, u.cfg.Body(u.item, false)))
	if u.cfg.MaxTokens != nil {
		n += int(*u.cfg.MaxTokens)
	}
	return n
}

// send sends one unit, retrying 429s, 5xxs and network errors.
func (r *Runner) send(ctx context.Context, client *oai.Client, u unit, reqs, toks *rate.Limiter) Outcome {
	s := r.Spec
	o := Outcome{Run: u.run, Item: u.item.ID, ItemHash: u.item.Hash, Repeat: u.repeat}
	need := u.tokens()
	tags := []string{TagSweep + "=" + s.Name, TagItem + "=" + u.item.ID, TagItemHash + "=" + u.item.Hash, TagRepeat + "=" + strconv.Itoa(u.repeat),
		"param.sweep=" + s.Name, "param.scorer=" + s.Scorer.Type, "param.stream=" + strconv.FormatBool(s.Stream)}
	if u.cfg.System != nil {
		tags = append(tags, "param.system_prompt_hash="+SystemHash(*u.cfg.System))
	}
	headers := http.Header{
		"X-Llmscope-Experiment": {s.ExperimentName()},
		"X-Llmscope-Run":        {u.run},
		"X-Llmscope-Tags":       {strings.Join(tags, ",")},
	}
	body := u.cfg.Body(u.item, s.Stream)
	for attempt := 1; ; attempt++ {
		o.Attempts = attempt
		if err := wait(ctx, reqs, 1); err != nil {
			o.Error = err.Error()
			return o
		}
		if err := wait(ctx, toks, need); err != nil {
			o.Error = err.Error()
			return o
		}
		answer, h, err := complete(ctx, client, body, s.Stream, headers, s.timeout)
		if h != nil {
			o.CallID = h.Get("X-Llmscope-Call-Id")
		}
		if err == nil {
			o.Answer, o.Error = answer, ""
			if sc, ok := s.Scorer.score(answer, u.item.Expected); ok {
				o.Score = &sc
			}
			return o
		}
		o.Error = describe(err)
		delay, retry := retryAfter(err, r.Backoff, attempt)
		if !retry || attempt >= s.attempts() || ctx.Err() != nil {
			return o
		}
		r.Log.Debug("retrying", "run", u.run, "item", u.item.ID, "attempt", attempt, "wait", delay, "err", o.Error)
		select {
		case <-ctx.Done():
			return o
		case <-time.After(delay):
		}
	}
}

// wait takes n events from l (nil: no limit); the burst is never less than
// the largest n.
func wait(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return nil
	}
	return l.WaitN(ctx, min(max(n, 1), l.Burst()))
}

// complete sends one chat completion request (body, as Config.Body makes
// it) and returns the answer's text and the response's headers (nil when
// no answer came). A timeout above zero bounds the attempt, reading the
// answer included.
func complete(ctx context.Context, client *oai.Client, body []byte, stream bool, headers http.Header, timeout time.Duration) (string, http.Header, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := client.Chat(ctx, body, stream, headers, nil)
	if res == nil {
		return "", nil, err
	}
	return res.Text, res.Header, err
}

// retryAfter says whether err is worth another attempt (a 429, a 408, a
// 5xx or a network error) and how long to wait first: the answer's
// Retry-After when it gives one, else an exponential backoff with jitter.
func retryAfter(err error, base time.Duration, attempt int) (time.Duration, bool) {
	var apiErr *oai.APIError
	var netErr net.Error
	switch {
	case errors.As(err, &apiErr):
		code := apiErr.StatusCode
		if code != http.StatusTooManyRequests && code != http.StatusRequestTimeout && code < 500 {
			return 0, false
		}
		if apiErr.Header != nil {
			if d, ok := headerDelay(apiErr.Header); ok {
				return d, true
			}
		}
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED):
		// the network: worth another try
	default:
		return 0, false // our own error, or a malformed answer: trying again changes nothing
	}
	d := base << min(attempt-1, 6)
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1), true
}

// headerDelay reads retry-after-ms or Retry-After (seconds or a date),
// capped at a minute.
func headerDelay(h http.Header) (time.Duration, bool) {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms >= 0 {
		return min(time.Duration(ms*float64(time.Millisecond)), time.Minute), true
	}
	v := h.Get("Retry-After")
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return min(time.Duration(secs*float64(time.Second)), time.Minute), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), time.Minute), true
	}
	return 0, false
}

// describe says what went wrong in one line.
func describe(err error) string {
	var apiErr *oai.APIError
	if errors.As(err, &apiErr) {
		msg := apiErr.Message
		if msg == "" {
			msg = http.StatusText(apiErr.StatusCode)
		}
		return fmt.Sprintf("%d: %s", apiErr.StatusCode, msg)
	}
	return err.Error()
}

type unitKey struct {
	run, item string
	repeat    int
}

// listLimit bounds the calls read back per run.
const listLimit = 1 << 20

// finished returns the units of s that already have a successful call in
// the store for the item as it is now.
func finished(ctx context.Context, rd Reader, s *Spec, items []Item) (map[unitKey]bool, error) {
	hashes := itemHashes(items)
	done := map[unitKey]bool{}
	for _, c := range s.Configs() {
		calls, err := runCalls(ctx, rd, s, s.RunName(c))
		if err != nil {
			return nil, err
		}
		for _, call := range calls {
			if k, ok := keyOf(call, hashes); ok && !call.Failed() {
				done[k] = true
			}
		}
	}
	return done, nil
}

func itemHashes(items []Item) map[string]string {
	h := make(map[string]string, len(items))
	for _, it := range items {
		h[it.ID] = it.Hash
	}
	return h
}

// runCalls returns the calls of one run of s, newest first.
func runCalls(ctx context.Context, rd Reader, s *Spec, run string) ([]*llmscope.Call, error) {
	calls, err := rd.List(ctx, llmscope.Filter{Experiment: s.ExperimentName(), Run: run, Limit: listLimit})
	if err != nil {
		return nil, fmt.Errorf("read calls of run %q: %w", run, err)
	}
	return calls, nil
}

// keyOf returns the unit a call belongs to, from its tags; false for a
// call that is not a sweep's or was sent for an item since changed (hashes
// holds each current item's hash).
func keyOf(c *llmscope.Call, hashes map[string]string) (unitKey, bool) {
	item, ok := c.Tags[TagItem]
	rep, err := strconv.Atoi(c.Tags[TagRepeat])
	if !ok || err != nil || hashes[item] == "" || c.Tags[TagItemHash] != hashes[item] {
		return unitKey{}, false
	}
	return unitKey{c.Run, item, rep}, true
}

// Log is what the items log of a results directory says: the answers by
// call id (the text of calls whose store did not capture it) and the last
// error of each unit whose last attempt failed.
type Log struct {
	Answers map[string]string
	Failed  map[unitKey]Outcome
}

// ReadLog reads a results directory's items.jsonl. A torn last line (a
// crash mid-write) is skipped.
func ReadLog(dir string) (*Log, error) {
	l := &Log{Answers: map[string]string{}, Failed: map[unitKey]Outcome{}}
	f, err := os.Open(filepath.Join(dir, ItemsFile))
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	} else if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxRow)
	for sc.Scan() {
		var o Outcome
		if json.Unmarshal(sc.Bytes(), &o) != nil {
			continue
		}
		k := unitKey{o.Run, o.Item, o.Repeat}
		if o.Error != "" {
			l.Failed[k] = o
			continue
		}
		delete(l.Failed, k)
		if o.CallID != "" {
			l.Answers[o.CallID] = o.Answer
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return l, nil
}
