package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func benchServe(b *testing.B, path, body string) {
	s := New(Config{})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkChat(b *testing.B) {
	benchServe(b, "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tell me about rivers."}]}`)
}

func BenchmarkChatStream(b *testing.B) {
	benchServe(b, "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me about rivers."}]}`)
}

func BenchmarkChatToolCallStream(b *testing.B) {
	benchServe(b, "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}}}]}`)
}

func BenchmarkResponsesStream(b *testing.B) {
	benchServe(b, "/v1/responses", `{"model":"gpt-4.1","stream":true,"input":"Tell me about rivers."}`)
}

func BenchmarkEmbeddings(b *testing.B) {
	benchServe(b, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"Tell me about rivers."}`)
}
