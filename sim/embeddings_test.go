package sim

import (
	"context"
	"math"
	"testing"

	"github.com/openai/openai-go/v3"

	"llmscope/tokenizer"
)

func TestEmbeddings(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 1})
	const model = "text-embedding-3-small"
	inputs := []string{"first text", "second text", "first text"}
	get := func(format openai.EmbeddingNewParamsEncodingFormat, dims int64) *openai.CreateEmbeddingResponse {
		t.Helper()
		params := openai.EmbeddingNewParams{
			Model:          model,
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
			EncodingFormat: format,
		}
		if dims > 0 {
			params.Dimensions = openai.Int(dims)
		}
		res, err := client.Embeddings.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	fl := get(openai.EmbeddingNewParamsEncodingFormatFloat, 0)
	b64 := get(openai.EmbeddingNewParamsEncodingFormatBase64, 0)
	if len(fl.Data) != 3 || len(b64.Data) != 3 || fl.Model != model || fl.Object != "list" {
		t.Fatalf("data %d/%d model %q", len(fl.Data), len(b64.Data), fl.Model)
	}
	want := 0
	for _, in := range inputs {
		want += tokenizer.Count(model, in)
	}
	if fl.Usage.PromptTokens != int64(want) || fl.Usage.TotalTokens != int64(want) {
		t.Errorf("usage %s, want %d", fl.Usage.RawJSON(), want)
	}
	for i := range fl.Data {
		f, b := fl.Data[i].Embedding, b64.Data[i].Embedding
		if fl.Data[i].Index != int64(i) || len(f) != defaultDims || len(b) != defaultDims {
			t.Fatalf("item %d: index %d dims %d/%d", i, fl.Data[i].Index, len(f), len(b))
		}
		var norm float64
		for j := range f {
			norm += f[j] * f[j]
			if float32(f[j]) != float32(b[j]) {
				t.Fatalf("item %d dim %d: float %v base64 %v", i, j, f[j], b[j])
			}
		}
		if math.Abs(math.Sqrt(norm)-1) > 1e-5 {
			t.Errorf("item %d norm %v", i, math.Sqrt(norm))
		}
	}
	if !equal(fl.Data[0].Embedding, fl.Data[2].Embedding) || equal(fl.Data[0].Embedding, fl.Data[1].Embedding) {
		t.Error("same input must give the same vector, different inputs different ones")
	}
	again := get("", 0)
	if !equal(again.Data[1].Embedding, fl.Data[1].Embedding) {
		t.Error("embeddings are not deterministic")
	}
	if d := get("", 256); len(d.Data[0].Embedding) != 256 {
		t.Errorf("dimensions=256 gave %d", len(d.Data[0].Embedding))
	}

	res, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-large",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: [][]int64{{1, 2, 3}, {4, 5}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || len(res.Data[0].Embedding) != largeDims || res.Usage.PromptTokens != 5 {
		t.Errorf("token arrays: %d items, %d dims, usage %s", len(res.Data), len(res.Data[0].Embedding), res.Usage.RawJSON())
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
