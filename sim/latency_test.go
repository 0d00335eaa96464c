package sim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

func TestLookupProfile(t *testing.T) {
	for _, name := range []string{"", "none", " None "} {
		if p, err := LookupProfile(name); p != nil || err != nil {
			t.Errorf("LookupProfile(%q) = %v, %v; want nil, nil", name, p, err)
		}
	}
	if p, err := LookupProfile("realistic"); err != nil || p == nil || p.Name != ProfileRealistic {
		t.Errorf("LookupProfile(realistic) = %v, %v", p, err)
	}
	if _, err := LookupProfile("slow"); err == nil || !strings.Contains(err.Error(), "realistic") {
		t.Errorf("LookupProfile(slow) error %v", err)
	}
}

func TestRealisticSpeedsPerModel(t *testing.T) {
	p := Realistic()
	for _, c := range []struct {
		model, prefix string
	}{
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"gpt-4o", "gpt-4o"},
		{"gpt-4.1-nano", "gpt-4.1-nano"},
		{"o3-mini-2025-01-31", "o3-mini"},
		{"o3", "o3"},
		{"gpt-5-mini", "gpt-5-mini"},
		{"text-embedding-3-small", "text-embedding-3-small"},
		{"llama-3.1-70b", ""},
	} {
		if got := p.Speed(c.model).Prefix; got != c.prefix {
			t.Errorf("Speed(%q) matched %q, want %q", c.model, got, c.prefix)
		}
	}
	ttft := func(m string) time.Duration { return p.Speed(m).TTFT }
	if !(ttft("text-embedding-3-small") < ttft("gpt-4.1-nano") && ttft("gpt-4.1-nano") < ttft("gpt-4o-mini") &&
		ttft("gpt-4o-mini") < ttft("gpt-4o") && ttft("gpt-4o") < ttft("o4-mini") && ttft("o4-mini") < ttft("o3")) {
		t.Error("TTFT medians are not ordered embeddings < nano < mini < gpt-4o < o4-mini < o3")
	}
	if p.Speed("gpt-4o-mini").TokensPerSecond <= p.Speed("gpt-4o").TokensPerSecond {
		t.Error("gpt-4o-mini does not stream faster than gpt-4o")
	}
}

// drawn returns the sorted TTFTs and per-piece delays of n requests to model.
func drawn(s *Server, model string, n int) (ttft, piece []time.Duration) {
	for i := range n {
		p := s.modelPacer(mix(uint64(i)+1), model)
		ttft = append(ttft, p.first())
		piece = append(piece, p.next())
	}
	slices.Sort(ttft)
	slices.Sort(piece)
	return ttft, piece
}

func TestRealisticDrawsAreLogNormalAndDeterministic(t *testing.T) {
	s := New(Config{Profile: Realistic()})
	const n = 4000
	ttft, piece := drawn(s, "gpt-4o-mini", n)
	med, p99 := ttft[n/2], ttft[n*99/100]
	if want := 350 * time.Millisecond; med < want*85/100 || med > want*115/100 {
		t.Errorf("gpt-4o-mini median TTFT %v, want about %v", med, want)
	}
	if p99 < 2*med {
		t.Errorf("p99 TTFT %v is not a long tail over the median %v", p99, med)
	}
	if ttft[0] == ttft[n-1] {
		t.Error("TTFT never varies")
	}
	if want := time.Second / 85; piece[n/2] < want*80/100 || piece[n/2] > want*120/100 {
		t.Errorf("gpt-4o-mini median piece delay %v, want about %v", piece[n/2], want)
	}
	// Same request, same delays.
	a, b := s.modelPacer(42, "gpt-4o"), s.modelPacer(42, "gpt-4o")
	if a.first() != b.first() || a.next() != b.next() || a.next() != b.next() {
		t.Error("the same request hash drew different delays")
	}
	o3, _ := drawn(s, "o3-mini", 400)
	emb, _ := drawn(s, "text-embedding-3-small", 400)
	if o3[200] < 4*med || emb[200] > med/2 {
		t.Errorf("medians: o3-mini %v, gpt-4o-mini %v, embeddings %v", o3[200], med, emb[200])
	}
	// Explicit TTFT and pace replace the medians.
	fixed := New(Config{Profile: Realistic(), TTFT: 10 * time.Millisecond, TokensPerSecond: 1000})
	ft, fp := drawn(fixed, "o3", 400)
	if ft[200] < 7*time.Millisecond || ft[200] > 14*time.Millisecond || fp[200] > 2*time.Millisecond {
		t.Errorf("with TTFT 10ms and 1000/s: median TTFT %v, piece %v", ft[200], fp[200])
	}
}

func TestNoProfileIsInstant(t *testing.T) {
	s := New(Config{})
	p := s.modelPacer(7, "o3")
	if p.first() != 0 || p.next() != 0 || p.total(50) != 0 {
		t.Error("the default Config has delays")
	}
	if s.profileFault(&exchange{s: s}) {
		t.Error("the default Config failed a request")
	}
}

func TestRealisticFailures(t *testing.T) {
	t.Parallel()
	// TTFT and pace set small so that only the failures take time.
	s := New(Config{Profile: Realistic(), TTFT: time.Millisecond, TokensPerSecond: 100000})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	const n, workers = 2000, 128
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = workers
	var mu sync.Mutex
	statuses := map[int]int{}
	bodies := map[int]string{}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for range next {
				res, b := do(t, srv, "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hello","dimensions":1}`)
				mu.Lock()
				statuses[res.StatusCode]++
				if res.StatusCode != 200 {
					bodies[res.StatusCode] = string(b)
					if res.StatusCode == 429 && res.Header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	rl, five := statuses[429], statuses[500]+statuses[503]
	if rl < n/200 || rl > n*2/100 || five < 3 || five > n/100 || statuses[200]+rl+five != n {
		t.Fatalf("statuses %v of %d requests: want about 1%% 429 and 0.5%% 5xx", statuses, n)
	}
	for status, body := range bodies {
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" || e.Error.Param != nil {
			t.Errorf("%d body %s", status, body)
			continue
		}
		switch status {
		case 429:
			if e.Error.Type != "requests" || e.Error.Code == nil || *e.Error.Code != "rate_limit_exceeded" ||
				!strings.Contains(e.Error.Message, "Rate limit reached") {
				t.Errorf("429 body %s", body)
			}
		case 500, 503:
			if e.Error.Type != "server_error" || e.Error.Code != nil {
				t.Errorf("%d body %s", status, body)
			}
		default:
			t.Errorf("unexpected status %d: %s", status, body)
		}
	}
	// The first requests of a fresh server never fail.
	fresh := httptest.NewServer(New(Config{Profile: Realistic(), TTFT: time.Millisecond, TokensPerSecond: 100000}))
	defer fresh.Close()
	for i := range profileGrace {
		if res, b := do(t, fresh, "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hello","dimensions":1}`); res.StatusCode != 200 {
			t.Fatalf("request %d of a fresh server: %d %s", i+1, res.StatusCode, b)
		}
	}
	// GET /v1/models never fails on its own.
	for range 100 {
		if res, _ := do(t, srv, "GET", "/v1/models", ""); res.StatusCode != http.StatusOK {
			t.Fatalf("models: %d", res.StatusCode)
		}
	}
}

func TestRealisticStreamTakesTime(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Profile: Realistic(), Seed: 3})
	start := time.Now()
	// A retry loop: the profile may answer 429 or 5xx.
	var text string
	var err error
	for range 5 {
		if text, _, err = streamChat(t, client, openai.ChatCompletionNewParams{Model: "gpt-4.1-nano", Messages: chatMsgs}); err == nil {
			break
		}
	}
	if err != nil || text == "" {
		t.Fatalf("stream: %q %v", text, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("a realistic gpt-4.1-nano stream took %v", d)
	}
}
