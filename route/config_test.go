package route

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
backoff_base: 100ms
max_wait: 10s
routes:
  - name: gpt
    match: "gpt-4o*"
    retries: 3
    cooldown: 1m
    fallbacks: [everything]
    deployments:
      - {name: azure-east, api: azure, url: "https://east.example.com", key_env: EAST_KEY, weight: 3, timeout: 20s, model: gpt-4o-2024}
      - {name: openai, api: openai, url: "https://api.openai.com/v1", key_env: OPENAI_KEY}
  - name: everything
    match: "*"
    deployments:
      - {name: local, api: openai, url: "http://localhost:8080/v1"}
`
	var cfg Config
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if cfg.BackoffBase != 100*time.Millisecond || cfg.MaxWait != 10*time.Second || r.Cooldown != time.Minute ||
		r.Retries != 3 || r.Deployments[0].Timeout != 20*time.Second || r.Deployments[0].Weight != 3 {
		t.Fatalf("decoded %+v", cfg)
	}
	h := newHarness(t, cfg, nil)
	d := h.rt.Deployment("azure-east")
	if d.Key() != secretKey || d.UpstreamModel("gpt-4o") != "gpt-4o-2024" || d.tries != 3 || d.health.cooldown != time.Minute {
		t.Fatalf("deployment %v: tries %d", d, d.tries)
	}
	if l := h.rt.Deployment("local"); l.Key() != "" || l.UpstreamModel("gpt-4o") != "gpt-4o" || l.Weight != 1 || l.tries != DefaultTries {
		t.Fatalf("local %v", l)
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{Routes: []RouteConfig{
			{Name: "main", Match: "gpt-*", Deployments: []DeploymentConfig{dep("a", "openai", 1)}, Fallbacks: []string{"other"}},
			{Name: "other", Match: "*", Deployments: []DeploymentConfig{dep("b", "openai", 1)}},
		}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no routes", func(c *Config) { c.Routes = nil }, "no routes"},
		{"empty match", func(c *Config) { c.Routes[0].Match = "" }, `route "main": match is empty`},
		{"duplicate name", func(c *Config) { c.Routes[1].Name = "main" }, `route "main": name already used by route #1`},
		{"unnamed duplicate match", func(c *Config) {
			c.Routes[0].Name, c.Routes[1].Name, c.Routes[0].Match, c.Routes[0].Fallbacks = "", "", "*", nil
		}, `route "*": name already used`},
		{"nothing to route to", func(c *Config) { c.Routes[1].Deployments = nil }, `route "other": no deployments and no fallbacks`},
		{"bad api", func(c *Config) { c.Routes[0].Deployments[0].API = "cohere" }, `route "main": deployment "a": api "cohere" is not one of`},
		{"no name", func(c *Config) { c.Routes[0].Deployments[0].Name = "" }, `route "main": deployment #1: name is empty`},
		{"bad url", func(c *Config) { c.Routes[0].Deployments[0].URL = "ftp://x" }, `deployment "a": url is not an absolute http(s) URL`},
		{"relative url", func(c *Config) { c.Routes[0].Deployments[0].URL = "/v1" }, `deployment "a": url is not`},
		{"url credentials", func(c *Config) { c.Routes[0].Deployments[0].URL = "https://u:p@x.com" }, "must not hold credentials"},
		{"bad key_env", func(c *Config) { c.Routes[0].Deployments[0].KeyEnv = "sk-abc" }, `key_env "sk-abc" is not an environment variable name`},
		{"negative weight", func(c *Config) { c.Routes[0].Deployments[0].Weight = -1 }, `deployment "a": weight -1 is negative`},
		{"negative timeout", func(c *Config) { c.Routes[0].Deployments[0].Timeout = -1 }, `deployment "a": timeout must not be negative`},
		{"negative retries", func(c *Config) { c.Routes[0].Retries = -1 }, `route "main": retries must not be negative`},
		{"negative cooldown", func(c *Config) { c.Routes[0].Cooldown = -time.Second }, `route "main": cooldown must not be negative`},
		{"conflicting deployment", func(c *Config) {
			d := dep("a", "anthropic", 1)
			c.Routes[1].Deployments = append(c.Routes[1].Deployments, d)
		}, `route "other": deployment "a": already defined differently`},
		{"twice in a route", func(c *Config) {
			c.Routes[0].Deployments = append(c.Routes[0].Deployments, dep("a", "openai", 1))
		}, `route "main": deployment "a": listed twice`},
		{"unknown fallback", func(c *Config) { c.Routes[0].Fallbacks = []string{"nope"} }, `route "main": fallback "nope" is neither a route nor a deployment`},
		{"self fallback", func(c *Config) { c.Routes[0].Fallbacks = []string{"main"} }, `fallback "main" is the route itself`},
		{"ambiguous fallback", func(c *Config) { c.Routes[1].Deployments[0].Name = "other" }, `fallback "other" is both a route and a deployment name`},
		{"backoff order", func(c *Config) { c.BackoffBase, c.BackoffMax = time.Second, time.Millisecond }, "backoff_base 1s is above backoff_max 1ms"},
		{"negative threshold", func(c *Config) { c.FailureThreshold = -1 }, "failure_threshold must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			}
			if _, nerr := New(c, Options{Getenv: env}); nerr == nil || !strings.Contains(nerr.Error(), tt.want) {
				t.Fatalf("New() = %v, want it to contain %q", nerr, tt.want)
			}
		})
	}
	// Identical redefinitions are allowed and share one deployment.
	c := good()
	c.Routes[1].Deployments = append(c.Routes[1].Deployments, dep("a", "openai", 1))
	h := newHarness(t, c, nil)
	if h.rt.routes[0].own[0] != h.rt.routes[1].own[1] {
		t.Fatal("the same deployment in two routes is two deployments")
	}
}

func TestKeyNeverShown(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Name: "main", Match: "*", Deployments: []DeploymentConfig{dep("a", "gemini", 1)}}}}
	h := newHarness(t, cfg, nil)
	p, err := h.rt.Plan("gemini-pro", "gemini")
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Key() != secretKey {
		t.Fatal("key not resolved")
	}
	p.Report(Outcome{Status: 400})
	_, doneErr := p.Next(context.Background())
	_, noRoute := h.rt.Plan("x", "anthropic")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p2, _ := h.rt.Plan("gemini-pro", "gemini")
	_, ctxErr := p2.Next(ctx)
	var shown []string
	for _, v := range []any{d, *d, p, h.rt, p.Attempts(), h.rt.Health(), h.Events()} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			shown = append(shown, fmt.Sprintf(verb, v))
		}
	}
	shown = append(shown, d.String(), doneErr.Error(), noRoute.Error(), ctxErr.Error())
	for _, s := range shown {
		if strings.Contains(s, secretKey) || strings.Contains(s, "inurl") ||
			strings.Contains(s, fmt.Sprintf("%x", secretKey)) {
			t.Errorf("key shown: %s", s)
		}
	}
	// A missing key names its variable, not a value.
	_, err = New(cfg, Options{Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), `route "main": deployment "a": environment variable A_KEY is empty or unset`) {
		t.Fatalf("missing key: %v", err)
	}
	// A config error from New never carries the keys it resolved.
	bad := cfg
	bad.Routes = append(bad.Routes, RouteConfig{Name: "x", Match: "*"})
	if _, err := New(bad, Options{Getenv: env}); err == nil || strings.Contains(err.Error(), secretKey) {
		t.Fatalf("bad config: %v", err)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, model string
		want           bool
	}{
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"gpt-4o*", "gpt-4o", true},
		{"gpt-4o*", "gpt-4", false},
		{"claude-*", "claude-3-5-sonnet", true},
		{"claude-*", "claude", false},
		{"*", "", true},
		{"*", "meta-llama/Llama-3", true},
		{"*llama*", "meta-llama/Llama-3", true},
		{"gpt-?o", "gpt-4o", true},
		{"gpt-?o", "gpt-40o", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"[x]", "[x]", true},
		{"modèle-?", "modèle-é", true},
		{"", "", true},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.model); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.model, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		ok     bool
	}{
		{"none", http.Header{}, 0, false},
		{"nil", nil, 0, false},
		{"seconds", http.Header{"Retry-After": {"2"}}, 2 * time.Second, true},
		{"fractional seconds", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond, true},
		{"zero", http.Header{"Retry-After": {"0"}}, 0, true},
		{"ms wins", http.Header{"Retry-After": {"20"}, "Retry-After-Ms": {"250.5"}}, 250500 * time.Microsecond, true},
		{"bad ms falls back", http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"soon"}}, 3 * time.Second, true},
		{"date", http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second, true},
		{"past date", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0, true},
		{"negative", http.Header{"Retry-After": {"-1"}}, 0, false},
		{"garbage", http.Header{"Retry-After": {"later"}}, 0, false},
		{"huge", http.Header{"Retry-After": {"1e300"}}, maxRetryAfter, true},
		{"nan ms", http.Header{"Retry-After-Ms": {"NaN"}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RetryAfter(tt.header, now)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("RetryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "1.5", "-3", "1e309", "NaN", "+Inf", "0x10", "Mon, 02 Jan 2006 15:04:05 GMT", "Sun, 06 Nov 1994 08:49:37 GMT"} {
		f.Add(s, s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, ms string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		h.Set("Retry-After-Ms", ms)
		d, ok := RetryAfter(h, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("RetryAfter(%q, %q) = %v out of range", ra, ms, d)
		}
		if !ok && d != 0 {
			t.Fatalf("RetryAfter(%q, %q) = %v without ok", ra, ms, d)
		}
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		o    Outcome
		want Kind
	}{
		{Outcome{Status: 200}, KindOK},
		{Outcome{Status: 304}, KindOK},
		{Outcome{Status: 400}, KindRejected},
		{Outcome{Status: 401}, KindRejected},
		{Outcome{Status: 403}, KindRejected},
		{Outcome{Status: 404}, KindRejected},
		{Outcome{Status: 413}, KindRejected},
		{Outcome{Status: 422}, KindRejected},
		{Outcome{Status: 501}, KindRejected},
		{Outcome{Status: 408}, KindStatus},
		{Outcome{Status: 409}, KindStatus},
		{Outcome{Status: 429}, KindStatus},
		{Outcome{Status: 500}, KindStatus},
		{Outcome{Status: 502}, KindStatus},
		{Outcome{Status: 503}, KindStatus},
		{Outcome{Status: 504}, KindStatus},
		{Outcome{Status: 529}, KindStatus},
		{Outcome{Err: context.DeadlineExceeded}, KindTimeout},
		{Outcome{Err: errors.New("x"), Timeout: true}, KindTimeout},
		{Outcome{Timeout: true}, KindTimeout},
		{Outcome{Err: errors.New("connection refused")}, KindConnection},
		{Outcome{}, KindConnection},
		{Outcome{Status: 200, Err: errors.New("unexpected EOF")}, KindStream},
		{Outcome{Status: 200, Err: errors.New("unexpected EOF"), Committed: true}, KindBroken},
		{Outcome{Status: 500, Committed: true}, KindStatus},
		{Outcome{Status: 200, Committed: true}, KindOK},
		{Outcome{Err: fmt.Errorf("read: %w", context.Canceled)}, KindCanceled},
	}
	for _, tt := range tests {
		if got := Classify(tt.o); got != tt.want {
			t.Errorf("Classify(%+v) = %s, want %s", tt.o, got, tt.want)
		}
	}
}
