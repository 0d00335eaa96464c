package gateway_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
	"llmscope/sqlite"
)

// TestPoisonRequestsAreStored sends requests whose parameters, model or
// labels no store or exporter could take as they are, then normal ones,
// through a gateway writing to a real SQLite store: every call must be
// stored, the odd values recorded as sent in tags, nothing dropped and no
// write refused.
func TestPoisonRequestsAreStored(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "llmscope.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var mu sync.Mutex
	var drops, writeErrors []string
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{
		OnDrop:       func(r string) { mu.Lock(); drops = append(drops, r); mu.Unlock() },
		OnWriteError: func(r string) { mu.Lock(); writeErrors = append(writeErrors, r); mu.Unlock() },
	})
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: rec, Provider: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	msgs := `"messages":[{"role":"user","content":"hi"}]`
	poison := []struct {
		name   string
		body   string
		header map[string]string
		tags   map[string]string // tags the stored call must carry
		model  string            // the stored request model, when not gpt-4o-mini
	}{
		{name: "frequency_penalty -1e999", body: `{"model":"gpt-4o-mini","frequency_penalty":-1e999,` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.frequency_penalty": "-1e999"}},
		{name: "temperature 1e999", body: `{"model":"gpt-4o-mini","temperature":1e999,` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.temperature": "1e999"}},
		{name: "max_tokens 1e400", body: `{"model":"gpt-4o-mini","max_tokens":1e400,` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.max_tokens": "1e400"}},
		{name: "seed beyond int64", body: `{"model":"gpt-4o-mini","seed":99999999999999999999,` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.seed": "99999999999999999999"}},
		{name: "top_p NaN string", body: `{"model":"gpt-4o-mini","top_p":"NaN","temperature":"-Infinity",` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.top_p": `"NaN"`, "llmscope.invalid.temperature": `"-Infinity"`}},
		{name: "presence_penalty huge exponent", body: `{"model":"gpt-4o-mini","presence_penalty":1e99999999999999,` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.presence_penalty": "1e99999999999999"}},
		{name: "streamed frequency_penalty", body: `{"model":"gpt-4o-mini","stream":true,"frequency_penalty":-1e999,` + msgs + `}`,
			tags: map[string]string{"llmscope.invalid.frequency_penalty": "-1e999"}},
		{name: "model with invalid UTF-8 and NUL", body: "{\"model\":\"gpt\\u0000-4o\xff\xfe\"," + msgs + "}",
			tags: map[string]string{llmscope.TagSanitized: "request_model,response_model"}, model: "gpt-4o\uFFFD"}, // the simulator answers with the model asked for
		{name: "tags header with control and invalid bytes", body: `{"model":"gpt-4o-mini",` + msgs + `}`,
			header: map[string]string{"X-Llmscope-Tags": "team=a\tb,k\xff=v\xfe", "X-Llmscope-User": "u\xff"},
			tags:   map[string]string{"team": "a\tb", "k\uFFFD": "v\uFFFD", llmscope.TagSanitized: "user,tags"}},
	}
	want := map[string]int{} // call id → index in poison, -1 for a normal call
	send := func(body string, header map[string]string) string {
		t.Helper()
		status, h, _ := post(t, srv.URL+"/v1/chat/completions", body, header)
		id := h.Get(gateway.HeaderCallID)
		if id == "" {
			t.Fatalf("no call id (status %d): %s", status, body)
		}
		return id
	}
	for i, p := range poison {
		want[send(p.body, p.header)] = i
	}
	for range 50 {
		want[send(`{"model":"gpt-4o-mini","temperature":0.7,"max_tokens":64,`+msgs+`}`, nil)] = -1
	}

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gw.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(wctx); err != nil {
		t.Fatalf("Recorder.Close: %v (a call blocks the store)", err)
	}
	mu.Lock()
	if len(drops) > 0 || rec.Dropped() > 0 || len(writeErrors) > 0 {
		t.Errorf("dropped %v, write errors %v; want every call written at once", drops, writeErrors)
	}
	mu.Unlock()

	for id, i := range want {
		c, err := store.Get(ctx, id)
		if err != nil {
			name := "normal call"
			if i >= 0 {
				name = poison[i].name
			}
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := json.Marshal(c); err != nil {
			t.Errorf("stored call %s cannot be encoded: %v", id, err)
		}
		if i < 0 {
			if c.Params.Temperature == nil || *c.Params.Temperature != 0.7 || len(c.Tags) != 0 {
				t.Errorf("normal call stored with params %+v, tags %v", c.Params, c.Tags)
			}
			continue
		}
		p := poison[i]
		for k, v := range p.tags {
			if got, ok := c.Tags[k]; !ok || got != v {
				t.Errorf("%s: tag %q = %q, want %q (tags %q)", p.name, k, got, v, c.Tags)
			}
		}
		if model := p.model; model == "" && c.RequestModel != "gpt-4o-mini" || model != "" && c.RequestModel != model {
			t.Errorf("%s: request model %q", p.name, c.RequestModel)
		}
	}
	calls, err := store.List(ctx, llmscope.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != len(want) {
		t.Errorf("store holds %d calls, sent %d requests", len(calls), len(want))
	}
	if b, err := json.Marshal(map[string]any{"calls": calls}); err != nil || len(b) == 0 {
		t.Errorf("the calls as /api/calls returns them cannot be encoded: %v", err)
	}
}
