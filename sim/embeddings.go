package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
)

type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// Embedding limits.
const (
	defaultDims   = 1536
	largeDims     = 3072 // default of text-embedding-3-large
	maxDims       = 8192
	maxEmbedInput = 2048 // inputs per request, as the API allows
)

// embeddings serves POST /v1/embeddings: one unit-length vector per input,
// a function of (Seed, model, input) only, as JSON floats or (encoding_format
// "base64") base64 of little-endian float32s. It answers after TTFT.
func (s *Server) embeddings(x *exchange) {
	var req embeddingsRequest
	if !x.decode(&req) || !x.requireModel(req.Model) {
		return
	}
	inputs, err := textInputs(req.Input)
	if err != nil {
		x.error(http.StatusBadRequest, "invalid 'input': "+err.Error(), "input")
		return
	}
	if len(inputs) == 0 || len(inputs) > maxEmbedInput {
		x.error(http.StatusBadRequest, "'input' must hold 1 to "+strconv.Itoa(maxEmbedInput)+" items", "input")
		return
	}
	for i, in := range inputs {
		if !in.isIDs && in.text == "" || in.isIDs && len(in.tokens) == 0 {
			x.error(http.StatusBadRequest, "invalid 'input["+strconv.Itoa(i)+"]': empty input", "input")
			return
		}
	}
	var b64 bool
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		x.error(http.StatusBadRequest, "invalid 'encoding_format': want float or base64", "encoding_format")
		return
	}
	dims := defaultDims
	if strings.HasPrefix(req.Model, "text-embedding-3-large") {
		dims = largeDims
	}
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > maxDims {
			x.error(http.StatusBadRequest, "invalid 'dimensions': want 1 to "+strconv.Itoa(maxDims), "dimensions")
			return
		}
		dims = *req.Dimensions
	}

	promptTokens := 0
	all := newHasher(s.cfg.Seed, req.Model)
	seeds := make([]uint64, len(inputs))
	for i, in := range inputs {
		in.feed(&all)
		h := newHasher(s.cfg.Seed, req.Model)
		in.feed(&h)
		seeds[i] = h.sum()
		promptTokens += s.promptTokens(seeds[i], func() int { return in.count(req.Model) })
	}
	x.setRequestID(makeIDs(all.sum()).requestID)
	pace := s.modelPacer(all.sum(), req.Model)
	if sleep(x.ctx, pace.first()) != nil {
		return
	}

	b := s.getBuf()
	defer s.putBuf(b)
	vec := make([]float32, dims)
	var raw []byte
	if b64 {
		raw = make([]byte, 4*dims)
	}
	*b = append(*b, `{"object":"list","data":[`...)
	for i, seed := range seeds {
		embed(vec, seed)
		if i > 0 {
			*b = append(*b, ',')
		}
		*b = append(*b, `{"object":"embedding","index":`...)
		*b = appendInt(*b, i)
		*b = append(*b, `,"embedding":`...)
		if b64 {
			for j, v := range vec {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(v))
			}
			*b = append(*b, '"')
			*b = base64.StdEncoding.AppendEncode(*b, raw)
			*b = append(*b, '"')
		} else {
			*b = append(*b, '[')
			for j, v := range vec {
				if j > 0 {
					*b = append(*b, ',')
				}
				*b = strconv.AppendFloat(*b, float64(v), 'g', -1, 32)
			}
			*b = append(*b, ']')
		}
		*b = append(*b, '}')
	}
	*b = append(*b, `],"model":`...)
	*b = appendString(*b, req.Model)
	if !x.fault.noUsage {
		*b = append(*b, `,"usage":{"prompt_tokens":`...)
		*b = appendInt(*b, promptTokens)
		*b = append(*b, `,"total_tokens":`...)
		*b = appendInt(*b, promptTokens)
		*b = append(*b, '}')
	}
	*b = append(*b, "}\n"...)
	x.writeJSON(http.StatusOK, *b)
}

// embed fills vec with a unit-length vector drawn from seed.
func embed(vec []float32, seed uint64) {
	r := rng{s: seed}
	var sum float64
	for i := range vec {
		v := float32(r.float()*2 - 1)
		vec[i] = v
		sum += float64(v) * float64(v)
	}
	if sum == 0 {
		vec[0], sum = 1, 1
	}
	inv := 1 / math.Sqrt(sum)
	for i, v := range vec {
		vec[i] = float32(float64(v) * inv)
	}
}
