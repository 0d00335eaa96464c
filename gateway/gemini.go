package gateway

import (
	"net/http"
	"strings"

	"llmscope"
	"llmscope/gemini"
	"llmscope/openai"
)

// GeminiProvider is the gen_ai.provider.name of the Gemini API.
const GeminiProvider = "gcp.gemini"

// Gemini returns the API of Google's Gemini (package gemini):
// /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse
// and the rest of /v1beta/, and the model methods of the v1 API
// (/v1/models/{model}:generateContent…, google-genai's default), sent to
// base plus the same path and query (base without a version, as the SDKs'
// base URL option), the key as x-goog-api-key. A server key also removes a client's ?key= from the query; a ?key= a
// client sends with its own key goes upstream but is never recorded (calls
// keep the path alone) nor logged (errors are redacted).
func Gemini() API { return geminiAPI{} }

type geminiAPI struct{}

func (geminiAPI) Provider() string { return GeminiProvider }
func (geminiAPI) Match(path string) bool {
	return strings.HasPrefix(path, "/v1beta/") || geminiV1(path)
}

// geminiV1 reports whether path is a model method of Gemini's v1 API,
// "/v1/models/{model}:{method}" (or tunedModels), which OpenAI's /v1/models
// paths never are: their methods are GET and DELETE on a model id.
func geminiV1(path string) bool {
	rest, ok := strings.CutPrefix(path, "/v1/models/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/v1/tunedModels/"); !ok {
			return false
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return false
	}
	switch rest[i+1:] {
	case gemini.MethodGenerate, gemini.MethodStreamGenerate, gemini.MethodCountTokens, gemini.MethodEmbed, gemini.MethodBatchEmbed:
		return true
	}
	return false
}
func (geminiAPI) Operation(method, path string) (string, string) {
	return gemini.Operation(method, path)
}
func (geminiAPI) ParseRequest(r *http.Request, body []byte) openai.Request {
	return gemini.ParseRequest(r.URL.Path, body)
}
func (geminiAPI) Describe(*http.Request, *llmscope.Call) {}
func (geminiAPI) Capture(body []byte, max int) (string, string) {
	return gemini.Capture(body, max)
}
func (geminiAPI) InjectsUsage() bool { return false }
func (geminiAPI) ReadBody(res *openai.Response, _ string, body []byte, whole bool) {
	if whole {
		gemini.ReadBody(res, body)
	}
}
func (geminiAPI) NewEvents(_ string, textLimit int) openai.Events { return gemini.NewEvents(textLimit) }
func (geminiAPI) WriteError(w http.ResponseWriter, status int, typ, code, msg string) {
	gemini.WriteError(w, status, typ, code, msg)
}
func (geminiAPI) Target(base string, r *http.Request) string {
	return withQuery(base+r.URL.EscapedPath(), r)
}
func (geminiAPI) SetKey(up *http.Request, key string) {
	clearCredentials(up.Header)
	up.Header.Set("X-Goog-Api-Key", key)
	if up.URL.RawQuery != "" {
		q := up.URL.Query()
		if q.Has("key") {
			q.Del("key")
			up.URL.RawQuery = q.Encode()
		}
	}
}
