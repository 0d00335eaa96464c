package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
)

// TestCaptureRedactedEverywhere: with MLflow export on, prompts and answers
// are captured by default, and the secrets in them (built-in kinds and a
// --redact-pattern) reach neither the store nor MLflow; --capture=false
// keeps every text out of both.
func TestCaptureRedactedEverywhere(t *testing.T) {
	ml := mlflowtest.Start(t)
	const (
		email  = "ann.lee@example.com"
		key    = "sk-proj-Abc123def456GHI789jkl012MNO345"
		acct   = "ACCT-99881234"
		prompt = "Mail " + email + " the key " + key + " for account " + acct + "."
	)
	client, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, experiment string
		args             []string
		captured         bool
	}{
		{"default", "redact-default", nil, true},
		{"off", "redact-off", []string{"--capture=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--mlflow", ml.URL, "--redact-pattern", `ACCT-\d+`}, tc.args...)
			_, base, _, _ := startServe(t, args...)
			body := `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"` + prompt + `"}]}`
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Llmscope-Experiment", tc.experiment)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("X-Llmscope-Call-Id")

			var c llmscope.Call
			eventually(t, "the stored call", 30*time.Second, func() bool {
				r, err := http.Get(base + "/api/calls/" + id)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				return r.StatusCode == 200 && json.NewDecoder(r.Body).Decode(&c) == nil
			})
			stored, _ := json.Marshal(c)
			checkRedacted(t, "store", string(stored), tc.captured)

			var trace json.RawMessage
			eventually(t, "the trace", 30*time.Second, func() bool {
				trace, err = client.GetTrace(context.Background(), "tr-"+c.TraceHex())
				return err == nil
			})
			checkRedacted(t, "MLflow", string(trace), tc.captured)
		})
	}
}

// checkRedacted fails when text holds a secret of the prompt, and, when the
// prompt was captured, when it lacks the markers that replaced them.
func checkRedacted(t *testing.T, where, text string, captured bool) {
	t.Helper()
	for _, secret := range []string{"ann.lee@example.com", "Abc123def456GHI789", "99881234"} {
		if strings.Contains(text, secret) {
			t.Errorf("%s holds %q", where, secret)
		}
	}
	for _, marker := range []string{llmscope.RedactedEmail, llmscope.RedactedAPIKey, "account " + llmscope.Redacted} {
		if got := strings.Contains(text, marker); got != captured {
			t.Errorf("%s: marker %q present %v, want %v (capture %v)", where, marker, got, captured, captured)
		}
	}
	if !captured && strings.Contains(text, "the key") {
		t.Errorf("%s holds the prompt with capture off", where)
	}
}
