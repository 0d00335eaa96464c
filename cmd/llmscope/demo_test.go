package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
	"llmscope/sim"
	"llmscope/sqlite"
)

// TestDemoAgainstServe runs `demo --duration 5s` against a serve with the
// in-process simulator on its realistic profile and checks what the store
// got: both experiments, named runs, streams, embeddings, Responses calls and
// failed calls.
func TestDemoAgainstServe(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	_, base, db, stderr := startServe(t, "--sim-profile", "realistic")
	start := time.Now()
	out, errs, code := runCmd(t, "", "demo", "--url", base, "--duration", "5s", "--rate", "25", "--progress", "2s")
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("demo --duration 5s took %v", d)
	}
	for _, want := range []string{"llmscope demo: 2s:", "llmscope demo: done:", "demo-a:", "demo-b:", base + "/", "llmscope stats", "llmscope report"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`done: (\d+) sent`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no final count in:\n%s", out)
	}
	sent, _ := strconv.Atoi(m[1])
	if sent < 50 {
		t.Errorf("demo sent %d requests in 5s at 25/s", sent)
	}

	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var calls []*llmscope.Call
	deadline := time.Now().Add(10 * time.Second)
	for {
		all, err := store.List(context.Background(), llmscope.Filter{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		calls = calls[:0]
		for _, c := range all {
			if strings.HasPrefix(c.Experiment, "demo-") {
				calls = append(calls, c)
			}
		}
		if len(calls) >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(calls) != sent {
		t.Errorf("store holds %d demo calls, demo sent %d", len(calls), sent)
	}
	count := map[string]int{}
	models := map[string]map[string]bool{"demo-a": {}, "demo-b": {}}
	for _, c := range calls {
		count["experiment "+c.Experiment]++
		if c.Run != "" {
			count["run "+c.Run]++
		}
		if c.Stream {
			count["stream"]++
		}
		count["operation "+c.Operation]++
		if c.Status >= 400 || c.ErrorType != "" {
			count["error"]++
		}
		if c.Status == http.StatusBadRequest {
			count["400"]++
		}
		if c.Operation != llmscope.OpEmbeddings {
			models[c.Experiment][c.RequestModel] = true
		}
	}
	for _, k := range []string{"experiment demo-a", "experiment demo-b", "run baseline", "run candidate", "stream",
		"operation " + llmscope.OpEmbeddings, "error", "400"} {
		if count[k] == 0 {
			t.Errorf("no demo call with %s; counts %v", k, count)
		}
	}
	for m := range models["demo-b"] {
		if models["demo-a"][m] {
			t.Errorf("model %s in both experiments' mixes", m)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s\nserve stderr:\n%s", out, stderr.String())
	}
}

// TestDemoRefusesRealUpstream: a gateway whose models are not the
// simulator's gets no traffic without --allow-real-upstream.
func TestDemoRefusesRealUpstream(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o","object":"model","owned_by":"openai"}]}`)
	}))
	defer srv.Close()
	_, errs, code := runCmd(t, "", "demo", "--url", srv.URL, "--duration", "1s")
	if code != 1 || !strings.Contains(errs, "--allow-real-upstream") || posts.Load() != 0 {
		t.Errorf("demo against a real upstream: exit %d, %d posts, stderr %q", code, posts.Load(), errs)
	}
	_, errs, code = runCmd(t, "", "demo", "--url", "http://127.0.0.1:1", "--duration", "1s")
	if code != 1 || !strings.Contains(errs, "no gateway") {
		t.Errorf("demo without a gateway: exit %d, stderr %q", code, errs)
	}
}

// TestSimProfileOfServe: which latency profile serve's in-process simulator
// gets.
func TestSimProfileOfServe(t *testing.T) {
	t.Chdir(t.TempDir()) // no .env
	for _, env := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "LLMSCOPE_SIM_PROFILE", "LLMSCOPE_SIM_TTFT", "LLMSCOPE_SIM_TOKENS_PER_SECOND", "LLMSCOPE_ADDR", "LLMSCOPE_CONFIG"} {
		t.Setenv(env, "")
	}
	for _, c := range []struct {
		args []string
		want string // profile name, "" for none
	}{
		{nil, sim.ProfileRealistic}, // make serve: no key, no --upstream, port 8700
		{[]string{"--addr", "127.0.0.1:9999"}, sim.ProfileRealistic},
		{[]string{"--addr", "127.0.0.1:0"}, ""}, // tests
		{[]string{"--upstream", "sim"}, ""},
		{[]string{"--sim-profile", "none"}, ""},
		{[]string{"--sim-profile", "realistic", "--addr", "127.0.0.1:0"}, sim.ProfileRealistic},
		{[]string{"--sim-profile", "realistic", "--upstream", "sim"}, sim.ProfileRealistic},
		{[]string{"--sim-profile", "Auto", "--upstream", "sim"}, ""},
	} {
		o := newServeOptions(io.Discard)
		if err := o.s.parse(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		cfg, err := inProcessSimConfig(o, nil)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		got := ""
		if cfg.Profile != nil {
			got = cfg.Profile.Name
		}
		if got != c.want {
			t.Errorf("serve %v: profile %q, want %q", c.args, got, c.want)
		}
	}
	// An explicit --sim-ttft stays in the config: it replaces the medians.
	o := newServeOptions(io.Discard)
	if err := o.s.parse([]string{"--sim-ttft", "20ms"}); err != nil {
		t.Fatal(err)
	}
	if cfg, err := inProcessSimConfig(o, nil); err != nil || cfg.Profile == nil || cfg.TTFT != 20*time.Millisecond {
		t.Errorf("--sim-ttft 20ms: %+v %v", cfg, err)
	}
	// chat and sweep start the simulator with options they never parse.
	o = newServeOptions(io.Discard)
	o.simTTFT.val = "150ms"
	if cfg, err := inProcessSimConfig(o, nil); err != nil || cfg.Profile != nil {
		t.Errorf("unparsed options: profile %v, %v", cfg.Profile, err)
	}
	o = newServeOptions(io.Discard)
	if err := o.s.parse([]string{"--sim-profile", "slow"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inProcessSimConfig(o, nil); err == nil || !strings.Contains(err.Error(), "--sim-profile") {
		t.Errorf("--sim-profile slow: %v", err)
	}
	// serve and sim reject it before listening.
	if _, errs, code := runCmd(t, "", "sim", "--addr", "127.0.0.1:0", "--profile", "slow"); code != 1 || !strings.Contains(errs, "--profile") {
		t.Errorf("sim --profile slow: exit %d %q", code, errs)
	}
	if _, errs, code := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--db", "x.db", "--sim-profile", "slow"); code != 1 || !strings.Contains(errs, "--sim-profile") {
		t.Errorf("serve --sim-profile slow: exit %d %q", code, errs)
	}
}
