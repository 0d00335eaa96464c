package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

// heldUpstream answers chat completions after release is closed, with
// usage when withUsage; arrived gets one value per request whose body the
// upstream has read.
type heldUpstream struct {
	release chan struct{}
	arrived chan struct{}
}

func newHeldUpstream(t *testing.T, withUsage bool) (*heldUpstream, *httptest.Server) {
	u := &heldUpstream{release: make(chan struct{}), arrived: make(chan struct{}, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.arrived <- struct{}{}
		<-u.release
		usage := ""
		if withUsage {
			usage = `,"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}]%s}`, usage)
	}))
	t.Cleanup(srv.Close)
	return u, srv
}

// heldWhileAnswering sends one chat request of about size bytes and returns
// the bytes of request bodies the gateway holds once the upstream has the
// body and is still answering; the call completes before it returns.
func heldWhileAnswering(t *testing.T, gw *gateway.Gateway, front string, u *heldUpstream, size int) int64 {
	t.Helper()
	u.release = make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a ", size/2) + `"}]}`
		resp, err := http.Post(front+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	<-u.arrived
	// The transport closes the body right after sending it; give it that
	// moment before reading what is held.
	held := gw.BufferedBytes()
	for deadline := time.Now().Add(time.Second); held != 0 && time.Now().Before(deadline); held = gw.BufferedBytes() {
		time.Sleep(5 * time.Millisecond)
	}
	close(u.release)
	<-done
	return held
}

// TestBodyReleasedOnceSent: once the upstream has reported usage, a request
// body is released as soon as it is sent, not held while the upstream
// answers; before that (and with KeepRequestBodies) it is held, so the call
// could be estimated.
func TestBodyReleasedOnceSent(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			u, up := newHeldUpstream(t, true)
			s := newSink()
			gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s, KeepRequestBodies: keep})
			if err != nil {
				t.Fatal(err)
			}
			front := httptest.NewServer(gw)
			defer front.Close()
			if held := heldWhileAnswering(t, gw, front.URL, u, 100<<10); held < 100<<10 {
				t.Errorf("first call, usage not yet seen: %d bytes held while answering, want the body", held)
			}
			s.one(t)
			held := heldWhileAnswering(t, gw, front.URL, u, 100<<10)
			switch {
			case keep && held < 100<<10:
				t.Errorf("KeepRequestBodies: %d bytes held while answering, want the body", held)
			case !keep && held != 0:
				t.Errorf("usage reported before: %d bytes held while answering, want 0", held)
			}
			for _, c := range []*llmscope.Call{s.one(t)} {
				if c.Usage.Source != llmscope.UsageReported || c.Usage.InputTokens != 11 {
					t.Errorf("usage %+v, want the reported one", c.Usage)
				}
			}
			eventually(t, "every buffer given back", func() bool { return gw.BufferedBytes() == 0 })
		})
	}
}

// TestBodyHeldWhenUsageMissing: an upstream that answers without usage
// keeps bodies held until the answer ends, and every call is estimated.
func TestBodyHeldWhenUsageMissing(t *testing.T) {
	u, up := newHeldUpstream(t, false)
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	for i := range 3 {
		if held := heldWhileAnswering(t, gw, front.URL, u, 64<<10); held < 64<<10 {
			t.Errorf("call %d: %d bytes held while answering, want the body", i, held)
		}
		c := s.one(t)
		if c.Usage.Source != llmscope.UsageEstimated || c.Usage.InputTokens < 30000 {
			t.Errorf("call %d: usage %+v, want an estimate of a 64 KiB prompt", i, c.Usage)
		}
	}
}

// TestProbeBounded: while no answer has told whether usage comes, bodies
// are held only up to a bound together; the rest are released once sent.
func TestProbeBounded(t *testing.T) {
	u, up := newHeldUpstream(t, true)
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	const n, size = 16, 1000 << 10
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a ", size/2) + `"}]}`
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.Post(front.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	for range n {
		<-u.arrived
	}
	eventually(t, "released bodies given back", func() bool { return gw.BufferedBytes() <= 8<<20 })
	if held := gw.BufferedBytes(); held == 0 {
		t.Error("no body held before usage was known")
	}
	close(u.release)
	wg.Wait()
	eventually(t, "every call recorded", func() bool { return len(s.all()) == n })
	for _, c := range s.all() {
		if c.Usage.Source != llmscope.UsageReported {
			t.Errorf("usage %+v, want reported", c.Usage)
		}
	}
}

// TestHangUpAfterRelease states the price of releasing bodies: a client
// that hangs up mid-stream on an upstream known to report usage leaves a
// call whose usage is unknown, unless KeepRequestBodies holds the body.
func TestHangUpAfterRelease(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			e := newEnv(t, sim.Config{TokensPerSecond: 20}, func(c *gateway.Config) { c.KeepRequestBodies = keep })
			p := chatParams()
			p.MaxTokens = openai.Int(2)
			full := client(e.gw.URL).Chat.Completions.NewStreaming(context.Background(), p)
			for full.Next() {
			}
			if c := e.sink.one(t); c.Usage.Source != llmscope.UsageReported {
				t.Fatalf("first stream: usage %+v, want reported", c.Usage)
			}
			ctx, cancel := context.WithCancel(context.Background())
			stream := client(e.gw.URL, option.WithMaxRetries(0)).Chat.Completions.NewStreaming(ctx, chatParams())
			for i := 0; i < 2 && stream.Next(); i++ {
			}
			cancel()
			_ = stream.Close()
			c := e.sink.one(t)
			want := llmscope.UsageNone
			if keep {
				want = llmscope.UsageEstimated
			}
			if c.ErrorType != llmscope.ErrTypeCancelled || c.Usage.Source != want {
				t.Errorf("error %q usage %+v, want %q with usage %q", c.ErrorType, c.Usage, llmscope.ErrTypeCancelled, want)
			}
		})
	}
}
