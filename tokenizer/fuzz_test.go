package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unicode/utf8"

	tiktoken "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// oracle is an independent tiktoken port (regexp2 backtracking pre-tokenizer,
// its own merge loop) that agrees with OpenAI's tiktoken on valid UTF-8.
var oracle = sync.OnceValue(func() map[string]*tiktoken.Tiktoken {
	tiktoken.SetBpeLoader(loader.NewOfflineLoader())
	out := map[string]*tiktoken.Tiktoken{}
	for _, e := range []string{O200kBase, Cl100kBase} {
		enc, err := tiktoken.GetEncoding(e)
		if err != nil {
			panic(err)
		}
		out[e] = enc
	}
	return out
})

// FuzzEncodeMatchesOracle compares our ids with the oracle's on any text.
func FuzzEncodeMatchesOracle(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.txt"))
	for _, name := range files {
		b, _ := os.ReadFile(name)
		if len(b) > 4096 {
			b = b[:4096]
		}
		f.Add(string(b))
	}
	for _, s := range []string{" \n \n x", "a  b", "\u00a0\u00a0x", "  \u3000!", "x\r\n\r\n  y", "It's ALLCAPS'S", "١٢٣٤ 12345", "a\u0301\u0301b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) || len(text) > maxRun {
			return // the oracle differs from tiktoken on invalid UTF-8; long runs are cut on purpose
		}
		for enc, o := range oracle() {
			got, err := Encode(enc, text)
			if err != nil {
				t.Fatal(err)
			}
			if want := o.EncodeOrdinary(text); !slices.Equal(got, want) {
				t.Fatalf("%s %q:\n got %v\nwant %v", enc, text, got, want)
			}
		}
	})
}

// TestPromptsMatchOracle compares the counts of the benchmark prompts with
// the oracle's.
func TestPromptsMatchOracle(t *testing.T) {
	_, prompts := benchTexts(t)
	for enc, o := range oracle() {
		for _, p := range prompts {
			if got, want := CountEncoding(enc, p), len(o.EncodeOrdinary(p)); got != want {
				t.Errorf("%s %q: %d tokens, oracle %d", enc, p, got, want)
			}
		}
	}
}
