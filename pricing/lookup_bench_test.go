package pricing

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// bigTable builds a table of n entries from LiteLLM's price file, every
// provider's entries as LiteLLM names them: the full file when
// LLMSCOPE_LITELLM_FILE names it (4,800-odd entries), else the trimmed copy
// in testdata; either is padded with made-up variants up to n.
func bigTable(b *testing.B, n int) (*Table, []Price) {
	b.Helper()
	raw := readTrimmed(b)
	if path := os.Getenv("LLMSCOPE_LITELLM_FILE"); path != "" {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
	ps, err := FromLiteLLM(raw, LiteLLMOptions{AllProviders: true})
	if err != nil {
		b.Fatal(err)
	}
	real := len(ps)
	for i := 0; len(ps) < n; i++ {
		p := ps[i%real]
		p.Model = fmt.Sprintf("acme%d/%s-v%d", i%7, p.Model, i)
		ps = append(ps, p)
	}
	ps = ps[:n]
	t, err := NewTable(ps, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if t.Len() != n {
		b.Fatalf("table has %d entries, want %d", t.Len(), n)
	}
	return t, ps
}

// BenchmarkLookup5000 looks names up in a 5,000-entry table: exact names,
// names that resolve (dated snapshots, provider prefixes, Gemini revisions,
// fine-tunes, other case) and names that miss.
func BenchmarkLookup5000(b *testing.B) {
	t, ps := bigTable(b, 5000)
	var names []string
	for i, p := range ps {
		if i%50 != 0 {
			continue
		}
		names = append(names, p.Model, p.Model+"-2025-06-01", "openrouter/"+p.Model, strings.ToUpper(p.Model))
	}
	names = append(names, "gpt-4o-2024-08-06", "models/gemini-2.5-flash-001", "claude-sonnet-4-5-20250929", "anthropic/claude-opus-4-5@20251101",
		"ft:gpt-4o-mini-2024-07-18:acme::x", "acme-llm-7b", "llama-3-70b", "mystery/model-2024-01-01", "ft:llama:x::y", "")
	var hits, misses int
	for _, n := range names {
		if _, ok := t.Lookup(n); ok {
			hits++
		} else {
			misses++
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t.Lookup(names[i%len(names)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(hits), "hits")
	b.ReportMetric(float64(misses), "misses")
}

// BenchmarkStripVersion compares the hand-written suffix parser with the
// regular expression it replaced.
func BenchmarkStripVersion(b *testing.B) {
	names := []string{"gpt-4o-2024-08-06", "claude-3-5-haiku-20241022", "gpt-4-0613", "gemini-2.5-flash-001", "gpt-5.5", "claude-sonnet-4-5"}
	b.Run("bytes", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			stripVersion(names[i%len(names)])
		}
	})
	re := regexp.MustCompile(`-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3})$`)
	b.Run("regexp", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			re.ReplaceAllString(names[i%len(names)], "")
		}
	})
}
