package gateway

import (
	"net/http"
	"strings"

	"llmscope"
	"llmscope/anthropic"
	"llmscope/openai"
)

// API is one provider's wire format as the gateway serves it. The gateway
// picks the API of a request by its path (Match), and asks it everything
// that differs between providers: the operation, the request's model and
// parameters, how to read the answer, the shape of llmscope's own errors,
// the upstream URL and where the server's key goes. Implementations hold no
// per-request state and are safe for concurrent use.
type API interface {
	// Provider is the OpenTelemetry gen_ai.provider.name of the API's
	// calls ("openai", "anthropic", "gcp.gemini", "azure.ai.openai").
	Provider() string
	// Match reports whether a request path belongs to the API.
	Match(path string) bool
	// Operation names the operation of a request (llmscope.OpChat, …) and,
	// when its method does not suit its path, returns the methods allowed.
	Operation(method, path string) (op, allowed string)
	// ParseRequest reads the request's model, streaming flag and
	// parameters from its body and, where the API puts them there, its
	// path (Gemini's model and stream). IncludeUsage true means the
	// answer will report usage without being asked.
	ParseRequest(r *http.Request, body []byte) openai.Request
	// Describe sets the call fields the request decides besides those
	// ParseRequest reads (Azure's deployment).
	Describe(r *http.Request, c *llmscope.Call)
	// Capture returns what the request asks the model about and its
	// tools, as raw JSON cut to max bytes (tools "" rather than cut). It
	// is called only for a body ParseRequest found Valid.
	Capture(body []byte, max int) (input, tools string)
	// InjectsUsage reports whether streaming chat and text completion
	// requests may be asked for usage (OpenAI's stream_options), with the
	// extra chunk hidden from the client.
	InjectsUsage() bool
	// ReadBody reads a non-streamed answer of operation op into res: the
	// whole body, or (whole false) only its last bytes.
	ReadBody(res *openai.Response, op string, body []byte, whole bool)
	// NewEvents returns the reader of a streamed answer's events; nil
	// means OpenAI's (openai.NewRelay, which undoes usage injection).
	NewEvents(op string, textLimit int) openai.Events
	// WriteError answers with an error llmscope raises itself, in the
	// API's error shape; typ and code are llmscope's names.
	WriteError(w http.ResponseWriter, status int, typ, code, msg string)
	// Target returns the upstream URL of r under base, the API's base URL
	// as its own SDKs take it.
	Target(base string, r *http.Request) string
	// SetKey puts the server's key on an upstream request in the API's
	// way, replacing any credential of the client's.
	SetKey(up *http.Request, key string)
}

// OpenAI returns the API of OpenAI and OpenAI-compatible upstreams: /v1/X
// goes to base+"/X" (base with its /v1), the key as Authorization: Bearer.
func OpenAI() API { return openaiAPI{} }

// Anthropic returns the API of Anthropic's Messages (/v1/messages and
// below, count_tokens included): /v1/X goes to base+"/v1/X" (base without
// /v1, as ANTHROPIC_BASE_URL), the key as x-api-key; the client's
// anthropic-version and anthropic-beta headers pass on.
func Anthropic() API { return anthropicAPI{} }

// Azure returns the API of Azure OpenAI: the OpenAI shape under
// /openai/deployments/{deployment}/… and /openai/v1/…, sent to base plus
// the same path and query (base as AZURE_OPENAI_ENDPOINT), the key as
// api-key. With v1AtRoot, /openai/v1/X goes to base+"/v1/X" instead, for
// an upstream that serves Azure's deployment paths beside OpenAI's own
// (the simulator).
func Azure(v1AtRoot bool) API { return azureAPI{v1AtRoot: v1AtRoot} }

// credentialHeaders are the headers a client may carry a provider key in;
// an API setting the server's key removes them all first.
var credentialHeaders = [...]string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"}

func clearCredentials(h http.Header) {
	for _, k := range credentialHeaders {
		delete(h, k)
	}
}

// withQuery appends r's raw query, if any, to target.
func withQuery(target string, r *http.Request) string {
	if r.URL.RawQuery != "" {
		return target + "?" + r.URL.RawQuery
	}
	return target
}

// openaiAPI is OpenAI's wire format: the gateway's behaviour before other
// APIs existed, unchanged.
type openaiAPI struct{}

func (openaiAPI) Provider() string       { return "openai" }
func (openaiAPI) Match(path string) bool { return strings.HasPrefix(path, "/v1/") || path == "/v1" }
func (openaiAPI) Operation(method, path string) (string, string) {
	return openai.OperationOf(method, path)
}
func (openaiAPI) ParseRequest(_ *http.Request, body []byte) openai.Request {
	return openai.ParseRequest(body)
}
func (openaiAPI) Describe(*http.Request, *llmscope.Call) {}
func (openaiAPI) Capture(body []byte, max int) (string, string) {
	return openai.Capture(body, max)
}
func (openaiAPI) InjectsUsage() bool { return true }
func (openaiAPI) ReadBody(res *openai.Response, op string, body []byte, whole bool) {
	readOpenAIBody(res, op, body, whole)
}
func (openaiAPI) NewEvents(string, int) openai.Events { return nil }
func (openaiAPI) WriteError(w http.ResponseWriter, status int, typ, code, msg string) {
	openai.WriteError(w, status, typ, code, msg)
}
func (openaiAPI) Target(base string, r *http.Request) string {
	return withQuery(base+strings.TrimPrefix(r.URL.EscapedPath(), "/v1"), r)
}
func (openaiAPI) SetKey(up *http.Request, key string) {
	clearCredentials(up.Header)
	up.Header.Set("Authorization", "Bearer "+key)
}

func readOpenAIBody(res *openai.Response, op string, body []byte, whole bool) {
	if whole {
		res.ReadBody(op, body)
	} else {
		res.ReadTail(body)
	}
}

// anthropicAPI is Anthropic's Messages API (package anthropic).
type anthropicAPI struct{}

func (anthropicAPI) Provider() string { return anthropic.Provider }
func (anthropicAPI) Match(path string) bool {
	return strings.HasPrefix(path, anthropic.MessagesPath) &&
		(len(path) == len(anthropic.MessagesPath) || path[len(anthropic.MessagesPath)] == '/')
}
func (anthropicAPI) Operation(method, path string) (string, string) {
	return anthropic.Operation(method, path)
}
func (anthropicAPI) ParseRequest(_ *http.Request, body []byte) openai.Request {
	return anthropic.ParseRequest(body)
}
func (anthropicAPI) Describe(*http.Request, *llmscope.Call) {}
func (anthropicAPI) Capture(body []byte, max int) (string, string) {
	return anthropic.Capture(body, max)
}
func (anthropicAPI) InjectsUsage() bool { return false }
func (anthropicAPI) ReadBody(res *openai.Response, _ string, body []byte, whole bool) {
	if whole {
		anthropic.ReadBody(res, body)
	}
}
func (anthropicAPI) NewEvents(_ string, textLimit int) openai.Events {
	return anthropic.NewEvents(textLimit)
}
func (anthropicAPI) WriteError(w http.ResponseWriter, status int, typ, code, msg string) {
	anthropic.WriteError(w, status, typ, code, msg)
}
func (anthropicAPI) Target(base string, r *http.Request) string {
	return withQuery(base+r.URL.EscapedPath(), r)
}
func (anthropicAPI) SetKey(up *http.Request, key string) {
	clearCredentials(up.Header)
	up.Header.Set("X-Api-Key", key)
}

// azureAPI is Azure OpenAI: OpenAI's wire format under /openai/.
type azureAPI struct{ v1AtRoot bool }

// AzureProvider is the gen_ai.provider.name of Azure OpenAI.
const AzureProvider = "azure.ai.openai"

// maxDeployment bounds the deployment name recorded with a call.
const maxDeployment = 256

func (azureAPI) Provider() string       { return AzureProvider }
func (azureAPI) Match(path string) bool { return strings.HasPrefix(path, "/openai/") }

// azureRest splits an Azure path into its deployment and the OpenAI path
// that follows: "/openai/deployments/d/chat/completions" gives "d" and
// "/chat/completions"; "/openai/v1/chat/completions" gives "" and
// "/v1/chat/completions". ok is false for any other path.
func azureRest(path string) (deployment, rest string, ok bool) {
	if r, found := strings.CutPrefix(path, "/openai/deployments/"); found {
		d, tail, _ := strings.Cut(r, "/")
		if d == "" || tail == "" {
			return "", "", false
		}
		return d, "/" + tail, true
	}
	if strings.HasPrefix(path, "/openai/v1/") {
		return "", path[len("/openai"):], true
	}
	return "", "", false
}

func (azureAPI) Operation(method, path string) (string, string) {
	if _, rest, ok := azureRest(path); ok {
		return openai.OperationOf(method, rest)
	}
	return llmscope.OpOther, ""
}
func (azureAPI) ParseRequest(_ *http.Request, body []byte) openai.Request {
	return openai.ParseRequest(body)
}
func (azureAPI) Describe(r *http.Request, c *llmscope.Call) {
	if d, _, ok := azureRest(r.URL.Path); ok && d != "" {
		c.Deployment = openai.Truncate(d, maxDeployment)
	}
}
func (azureAPI) Capture(body []byte, max int) (string, string) {
	return openai.Capture(body, max)
}
func (azureAPI) InjectsUsage() bool { return true }
func (azureAPI) ReadBody(res *openai.Response, op string, body []byte, whole bool) {
	readOpenAIBody(res, op, body, whole)
}
func (azureAPI) NewEvents(string, int) openai.Events { return nil }
func (azureAPI) WriteError(w http.ResponseWriter, status int, typ, code, msg string) {
	openai.WriteError(w, status, typ, code, msg)
}
func (a azureAPI) Target(base string, r *http.Request) string {
	p := r.URL.EscapedPath()
	if a.v1AtRoot && strings.HasPrefix(p, "/openai/v1/") {
		return withQuery(base+p[len("/openai"):], r)
	}
	return withQuery(base+p, r)
}
func (azureAPI) SetKey(up *http.Request, key string) {
	clearCredentials(up.Header)
	up.Header.Set("Api-Key", key)
}
