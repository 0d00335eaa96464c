package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzProviderBodies posts any body to the Anthropic, Gemini and Azure
// routes: the simulator never panics, answers 200 or a 4xx in the route's
// error shape, and a 200 non-stream answer is JSON.
func FuzzProviderBodies(f *testing.F) {
	for _, c := range providerGoldenCases {
		f.Add(c.path, c.body)
	}
	f.Add("/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"x"}],"cache_control":{}}]}],"tools":[{"name":"t","input_schema":{"type":"object","properties":{"a":{"$ref":"#"}}},"cache_control":{}}],"tool_choice":{"type":"any"}}`)
	f.Add("/v1beta/models/g:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"function_call":{"name":"f","args":{"a_b":1}}}]}],"generation_config":{"max_output_tokens":1,"thinking_config":{"thinking_level":"low"}}}`)
	s := New(Config{})
	f.Fuzz(func(t *testing.T, path, body string) {
		switch {
		case strings.HasPrefix(path, "/v1/messages"), strings.HasPrefix(path, "/v1beta/"), strings.HasPrefix(path, "/openai/"):
		default:
			return
		}
		req, err := http.NewRequest("POST", "http://sim"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("anthropic-version", anthropicVersion)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		out := w.Body.Bytes()
		switch {
		case w.Code == 200:
			if ct := w.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
				out = bytes.TrimSpace(out)
				if !json.Valid(out) {
					t.Fatalf("%s %q: invalid JSON answer %s", path, body, out)
				}
			}
		case w.Code >= 400 && w.Code < 500:
			var e map[string]json.RawMessage
			if json.Unmarshal(out, &e) != nil || e["error"] == nil {
				t.Fatalf("%s %q: %d %s", path, body, w.Code, out)
			}
		default:
			t.Fatalf("%s %q: status %d %s", path, body, w.Code, out)
		}
	})
}
