package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"llmscope"
	"llmscope/chat"
	"llmscope/sdk"
	"llmscope/web"
)

func runChat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("chat", stderr)
	model := s.str("model", "LLMSCOPE_CHAT_MODEL", "gpt-4o-mini", "model to talk to")
	temperature := s.str("temperature", "", "", "temperature (empty: not sent)")
	topP := s.str("top-p", "", "", "top_p (empty: not sent)")
	maxTokens := s.str("max-tokens", "", "", "max_tokens (empty: not sent)")
	system := s.str("system", "", "", "system prompt")
	run := s.str("run", "", "", `run name of the session (default "chat-<time>")`)
	gatewayURL := s.str("gateway", "LLMSCOPE_GATEWAY", "", "talk through a running llmscope serve at this URL instead of directly")
	upstream := s.str("upstream", "OPENAI_BASE_URL", "", `direct mode: upstream base URL with its /v1, or "sim" (default: OpenAI with OPENAI_API_KEY, else sim)`)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "direct mode: store")
	mlflowURI := s.str("mlflow", "MLFLOW_TRACKING_URI", "", "direct mode: MLflow tracking server; the session becomes one run")
	experiment := s.str("experiment", "MLFLOW_EXPERIMENT_NAME", "llmscope", "experiment of the session")
	simTPS := s.str("sim-tokens-per-second", "LLMSCOPE_SIM_TOKENS_PER_SECOND", "40", "built-in simulator: streaming pace")
	if err := s.parse(args); err != nil {
		return err
	}
	st := chat.Settings{Model: model.val, System: system.val}
	for _, f := range []struct {
		o *option
		p **float64
	}{{temperature, &st.Temperature}, {topP, &st.TopP}} {
		if f.o.val != "" {
			v, err := f.o.Float()
			if err != nil {
				return err
			}
			*f.p = &v
		}
	}
	if maxTokens.val != "" {
		n, err := strconv.ParseInt(maxTokens.val, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("--max-tokens: %q is not a positive integer", maxTokens.val)
		}
		st.MaxTokens = &n
	}
	runName := run.val
	if runName == "" {
		runName = "chat-" + time.Now().Format("20060102-150405")
	}
	cfg := chat.Config{Settings: st, Run: runName, SessionID: llmscope.NewID()}

	if gw := strings.TrimRight(gatewayURL.val, "/"); gw != "" {
		cfg.BaseURL, cfg.APIKey = gw+"/v1", secret("OPENAI_API_KEY")
		if cfg.APIKey == "" {
			cfg.APIKey = "unused" // the gateway holds the key
		}
		cfg.HTTPClient = &http.Client{}
		cfg.Lookup = gatewayLookup(gw)
		return talk(ctx, chat.New(cfg), stdin, stdout)
	}

	base, apiKey, stopSim, err := directUpstream(upstream.val, simTPS.val, stderr, "chat")
	if err != nil {
		return err
	}
	defer stopSim()
	calls := newCallBox()
	rec, err := sdk.New(ctx, sdk.Config{DB: db.val, Experiment: experiment.val, MLflowURI: mlflowURI.val,
		MLflowToken: secret("MLFLOW_TRACKING_TOKEN"), MLflowUsername: secret("MLFLOW_TRACKING_USERNAME"), MLflowPassword: secret("MLFLOW_TRACKING_PASSWORD"),
		OnCall: calls.put})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = rec.Close(cctx)
	}()
	cfg.BaseURL, cfg.APIKey, cfg.HTTPClient, cfg.Lookup = base, apiKey, rec.HTTPClient(), calls.get
	return talk(ctx, chat.New(cfg), stdin, stdout)
}

// talk runs the session: with line editing and history on a terminal, as a
// plain line reader when stdin is piped. Ctrl-C stops the reply in progress.
func talk(ctx context.Context, s *chat.Session, stdin io.Reader, stdout io.Writer) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	hooks := chat.Hooks{Reply: func() (context.Context, func()) {
		for len(sigs) > 0 {
			<-sigs // a Ctrl-C between replies is not for this one
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-done:
			}
		}()
		return rctx, func() { close(done); cancel() }
	}}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return talkTerminal(s, f, stdout, hooks)
	}
	return s.Run(&lines{bufio.NewScanner(stdin)}, stdout, hooks)
}

// talkTerminal reads lines in raw mode with editing and history, and
// returns to cooked mode while a reply streams so Ctrl-C reaches talk.
func talkTerminal(s *chat.Session, f *os.File, stdout io.Writer, hooks chat.Hooks) error {
	fmt.Fprintf(stdout, "llmscope chat with %s — /help for commands, Ctrl-D to quit\n", s.Settings().Model)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{ctrlCClears{f}, stdout}, "> ")
	fd := int(f.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer term.Restore(fd, state)
	reply := hooks.Reply
	hooks.Reply = func() (context.Context, func()) {
		_ = term.Restore(fd, state)
		ctx, done := reply()
		return ctx, func() {
			done()
			_, _ = term.MakeRaw(fd)
		}
	}
	return s.Run(rawLines{t, fd, state}, crlf{stdout, fd}, hooks)
}

// rawLines reads from the terminal.
type rawLines struct {
	t     *term.Terminal
	fd    int
	state *term.State
}

func (r rawLines) ReadLine() (string, error) { return r.t.ReadLine() }

// crlf writes "\r\n" for "\n" while the terminal is raw.
type crlf struct {
	w  io.Writer
	fd int
}

func (c crlf) Write(p []byte) (int, error) {
	if _, err := c.w.Write([]byte(strings.ReplaceAll(string(p), "\n", "\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ctrlCClears turns Ctrl-C at the prompt into Ctrl-U (clear the line): the
// line editor would otherwise end the session on it.
type ctrlCClears struct{ r io.Reader }

func (c ctrlCClears) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := range p[:n] {
		if p[i] == 3 {
			p[i] = 21
		}
	}
	return n, err
}

// lines reads piped input.
type lines struct{ s *bufio.Scanner }

func (l *lines) ReadLine() (string, error) {
	if l.s.Scan() {
		return l.s.Text(), nil
	}
	if err := l.s.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// callBox hands recorded calls to the chat by id.
type callBox struct {
	mu    sync.Mutex
	calls map[string]*llmscope.Call
	added chan struct{}
}

func newCallBox() *callBox {
	return &callBox{calls: map[string]*llmscope.Call{}, added: make(chan struct{}, 1)}
}

func (b *callBox) put(c *llmscope.Call) {
	b.mu.Lock()
	b.calls[c.ID] = c
	b.mu.Unlock()
	select {
	case b.added <- struct{}{}:
	default:
	}
}

func (b *callBox) get(ctx context.Context, id string) (*llmscope.Call, error) {
	for {
		b.mu.Lock()
		c, ok := b.calls[id]
		b.mu.Unlock()
		if ok {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.added:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// gatewayLookup reads calls from a running gateway's API, with its admin
// token when it has one (LLMSCOPE_ADMIN_TOKEN).
func gatewayLookup(base string) chat.CallLookup {
	c := &web.Client{Base: base, Token: secret("LLMSCOPE_ADMIN_TOKEN")}
	return c.Wait
}
