package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchTexts are the texts of the benchmarks: the 100 KB corpus document and
// a list of short chat prompts (testdata/prompts.json), also measured with
// the reference tiktoken by scripts/tokenizer-bench.sh.
func benchTexts(tb testing.TB) (document string, prompts []string) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "corpus", "document_100k.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := os.ReadFile(filepath.Join("testdata", "prompts.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(p, &prompts); err != nil {
		tb.Fatal(err)
	}
	return string(b), prompts
}

// TestCountDoesNotAllocate checks that counting valid UTF-8 text allocates
// nothing once the vocabulary is loaded.
func TestCountDoesNotAllocate(t *testing.T) {
	document, prompts := benchTexts(t)
	msgs := []Message{{Role: "system", Content: prompts[1]}, {Role: "user", Name: "ann", Content: prompts[0]}}
	for _, enc := range []string{O200kBase, Cl100kBase} {
		model := "gpt-4o"
		if enc == Cl100kBase {
			model = "gpt-4"
		}
		CountEncoding(enc, "warm up")
		for _, p := range prompts {
			if a := testing.AllocsPerRun(20, func() { Count(model, p) }); a != 0 {
				t.Errorf("%s: Count(%q) makes %v allocations", enc, p, a)
			}
		}
		if a := testing.AllocsPerRun(20, func() { CountChat(model, msgs) }); a != 0 {
			t.Errorf("%s: CountChat makes %v allocations", enc, a)
		}
		if a := testing.AllocsPerRun(3, func() { CountEncoding(enc, document) }); a != 0 {
			t.Errorf("%s: counting the 100 KB document makes %v allocations", enc, a)
		}
	}
}

// BenchmarkCount reports counting throughput on the 100 KB document and on
// the short prompts (one operation counts all of them; ns/prompt is the
// time per Count call).
func BenchmarkCount(b *testing.B) {
	document, prompts := benchTexts(b)
	for _, enc := range []string{O200kBase, Cl100kBase} {
		b.Run(enc+"/document_100k", func(b *testing.B) {
			tokens := CountEncoding(enc, document)
			b.SetBytes(int64(len(document)))
			b.ReportAllocs()
			for b.Loop() {
				CountEncoding(enc, document)
			}
			b.ReportMetric(float64(tokens), "tokens/op")
			b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
		b.Run(enc+"/prompts", func(b *testing.B) {
			tokens, size := 0, 0
			for _, p := range prompts {
				tokens += CountEncoding(enc, p)
				size += len(p)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range prompts {
					CountEncoding(enc, p)
				}
			}
			b.ReportMetric(float64(tokens), "tokens/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prompts)), "ns/prompt")
			b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkEncode is BenchmarkCount for Encode, which returns the ids.
func BenchmarkEncode(b *testing.B) {
	document, prompts := benchTexts(b)
	for _, enc := range []string{O200kBase, Cl100kBase} {
		b.Run(enc+"/document_100k", func(b *testing.B) {
			b.SetBytes(int64(len(document)))
			b.ReportAllocs()
			for b.Loop() {
				Encode(enc, document)
			}
		})
		b.Run(enc+"/prompts", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range prompts {
					Encode(enc, p)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prompts)), "ns/prompt")
		})
	}
}

// TestLoadCost logs the time of the first Count of each encoding (loading its
// vocabulary) and the heap it keeps. It runs only with TOKENIZER_LOAD_COST=1,
// alone in its process (go test -run TestLoadCost), as the vocabularies are
// loaded once per process.
func TestLoadCost(t *testing.T) {
	if os.Getenv("TOKENIZER_LOAD_COST") != "1" {
		t.Skip("set TOKENIZER_LOAD_COST=1")
	}
	var before, after runtime.MemStats
	for _, enc := range []string{O200kBase, Cl100kBase} {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		CountEncoding(enc, "hello world")
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		t.Logf("%s: first Count %v, heap after load +%.1f MB", enc, elapsed.Round(time.Millisecond), float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
	}
}
