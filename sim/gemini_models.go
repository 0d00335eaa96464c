package sim

import (
	"net/http"
	"strconv"
	"strings"
)

// Gemini's model listing and embeddings.

// geminiModels is the fixed list GET /v1beta/models returns.
var geminiModels = []struct {
	name, display string
	embedding     bool
}{
	{"gemini-2.5-pro", "Gemini 2.5 Pro", false},
	{"gemini-2.5-flash", "Gemini 2.5 Flash", false},
	{"gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", false},
	{"gemini-2.0-flash", "Gemini 2.0 Flash", false},
	{"gemini-embedding-001", "Gemini Embedding 001", true},
	{"text-embedding-004", "Text Embedding 004", true},
}

// appendGeminiModel appends one Model resource.
func appendGeminiModel(b []byte, name, display string, embedding bool) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, "models/"+name)
	b = append(b, `,"version":"001","displayName":`...)
	b = appendString(b, display)
	if embedding {
		b = append(b, `,"inputTokenLimit":2048,"outputTokenLimit":1,"supportedGenerationMethods":["embedContent","countTokens"]}`...)
		return b
	}
	return append(b, `,"inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens"],"temperature":1,"topP":0.95,"topK":64,"thinking":true}`...)
}

// listGeminiModels serves GET /v1beta/models.
func (s *Server) listGeminiModels(x *exchange) {
	b := []byte(`{"models":[`)
	for i, m := range geminiModels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendGeminiModel(b, m.name, m.display, m.embedding)
	}
	x.writeJSON(http.StatusOK, append(b, "]}\n"...))
}

// getGeminiModel serves GET /v1beta/models/{model}: any name is a model
// (the simulator answers for every model).
func (s *Server) getGeminiModel(x *exchange) {
	display := x.model
	embedding := strings.Contains(x.model, "embedding")
	for _, m := range geminiModels {
		if m.name == x.model {
			display = m.display
		}
	}
	x.writeJSON(http.StatusOK, append(appendGeminiModel(nil, x.model, display, embedding), '\n'))
}

type geminiEmbedRequest struct {
	Content              *geminiContent `json:"content"`
	OutputDimensionality *int           `json:"outputDimensionality"`
}

// Dimensions of Gemini's embedding models.
const (
	geminiEmbeddingDims = 3072 // gemini-embedding-001
	textEmbeddingDims   = 768  // text-embedding-004 and others
)

// embedContent serves :embedContent ({"embedding":{"values":[…]}}) and,
// when batch, :batchEmbedContents ({"embeddings":[{"values":[…]},…]} for
// its requests). A vector is a function of (Seed, model, text) only,
// unit length, outputDimensionality long (default 3072 for
// gemini-embedding-001, 768 otherwise). Gemini reports no usage for
// embeddings. It answers after TTFT.
func (s *Server) embedContent(x *exchange, batch bool) {
	var reqs []geminiEmbedRequest
	if batch {
		var body struct {
			Requests []geminiEmbedRequest `json:"requests"`
		}
		if !x.decodeGemini(&body) {
			return
		}
		reqs = body.Requests
	} else {
		var one geminiEmbedRequest
		if !x.decodeGemini(&one) {
			return
		}
		reqs = []geminiEmbedRequest{one}
	}
	if len(reqs) == 0 || len(reqs) > maxEmbedInput {
		x.geminiError(http.StatusBadRequest, "* BatchEmbedContentsRequest.requests: must hold 1 to "+strconv.Itoa(maxEmbedInput)+" requests\n")
		return
	}
	dims := textEmbeddingDims
	if strings.HasPrefix(x.model, "gemini-embedding") {
		dims = geminiEmbeddingDims
	}
	seeds := make([]uint64, len(reqs))
	sizes := make([]int, len(reqs))
	all := newHasher(s.cfg.Seed, x.model)
	for i, r := range reqs {
		if r.Content == nil || geminiText(r.Content.Parts) == "" {
			x.geminiError(http.StatusBadRequest, "* EmbedContentRequest.content: contents is not specified\n")
			return
		}
		sizes[i] = dims
		if d := r.OutputDimensionality; d != nil {
			if *d < 1 || *d > maxDims {
				x.geminiError(http.StatusBadRequest, "* EmbedContentRequest.output_dimensionality: must be 1 to "+strconv.Itoa(maxDims)+"\n")
				return
			}
			sizes[i] = *d
		}
		text := geminiText(r.Content.Parts)
		h := newHasher(s.cfg.Seed, x.model)
		h.str(text)
		h.sep()
		seeds[i] = h.sum()
		all.str(text)
		all.sep()
	}
	pace := s.modelPacer(all.sum(), x.model)
	if sleep(x.ctx, pace.first()) != nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	if batch {
		*b = append(*b, `{"embeddings":[`...)
	} else {
		*b = append(*b, `{"embedding":`...)
	}
	for i, seed := range seeds {
		if i > 0 {
			*b = append(*b, ',')
		}
		vec := make([]float32, sizes[i])
		embed(vec, seed)
		*b = append(*b, `{"values":[`...)
		for j, v := range vec {
			if j > 0 {
				*b = append(*b, ',')
			}
			*b = strconv.AppendFloat(*b, float64(v), 'g', -1, 32)
		}
		*b = append(*b, "]}"...)
	}
	if batch {
		*b = append(*b, ']')
	}
	*b = append(*b, "}\n"...)
	x.writeJSON(http.StatusOK, *b)
}
