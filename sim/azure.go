package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Azure OpenAI: POST /openai/deployments/{deployment}/chat/completions,
// /completions and /embeddings with an api-version query parameter answer
// exactly as the OpenAI routes do. The answer's model is the body's model
// when it names one, else the model the deployment would run
// (azureChatModel, azureCompletionModel, azureEmbeddingModel): Azure
// requests usually leave the model out.

// Models an Azure deployment answers as when the request names none.
const (
	azureChatModel       = "gpt-4o-mini-2024-07-18"
	azureCompletionModel = "gpt-3.5-turbo-instruct"
	azureEmbeddingModel  = "text-embedding-3-small"
)

// azureRoute routes /openai/deployments/{deployment}/{operation}.
func azureRoute(x *exchange, p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/openai/deployments/")
	if !ok {
		return route{}, false
	}
	dep, op, ok := strings.Cut(rest, "/")
	if !ok || dep == "" {
		return route{}, false
	}
	x.model = dep
	var rt route
	switch op {
	case "chat/completions":
		rt.handle = func(s *Server, x *exchange) { s.azure(x, azureChatModel, (*Server).chat) }
	case "completions":
		rt.handle = func(s *Server, x *exchange) { s.azure(x, azureCompletionModel, (*Server).completions) }
	case "embeddings":
		rt.handle = func(s *Server, x *exchange) { s.azure(x, azureEmbeddingModel, (*Server).embeddings) }
	default:
		return route{}, false
	}
	rt.method, rt.api, rt.pre = http.MethodPost, apiOpenAI, requireAPIVersion
	return rt, true
}

// requireAPIVersion answers 400 when the api-version query parameter is
// missing, as Azure does.
func requireAPIVersion(x *exchange) bool {
	if x.r.URL.Query().Get("api-version") == "" {
		x.errorCode(http.StatusBadRequest, "The api-version query parameter (?api-version=) is required for all requests.",
			"invalid_request_error", "MissingApiVersionParameter", "")
		return false
	}
	return true
}

// azure sets the body's model to model when it names none and hands the
// request to the OpenAI handler.
func (s *Server) azure(x *exchange, model string, handle func(*Server, *exchange)) {
	body, ok := x.body()
	if !ok {
		return
	}
	x.r.Body = io.NopCloser(bytes.NewReader(withModel(body, model)))
	handle(s, x)
}

// withModel returns body with "model" set to model when body is a JSON
// object whose model is absent, null or empty; else body unchanged.
func withModel(body []byte, model string) []byte {
	var m map[string]json.RawMessage
	if firstByte(body) != '{' || json.Unmarshal(body, &m) != nil {
		return body
	}
	if v := m["model"]; !absent(v) && string(v) != `""` {
		return body
	}
	m["model"] = appendString(nil, model)
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}
