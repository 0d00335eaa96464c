package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolatePrices points the updated price file at a fresh temporary path, so
// no test reads or writes the user's.
func isolatePrices(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg", "prices.json")
	t.Setenv("LLMSCOPE_PRICES_CACHE", path)
	t.Setenv("LLMSCOPE_PRICES_URL", "")
	return path
}

func TestPricesCommandSaysWhichTable(t *testing.T) {
	isolatePrices(t)
	out, errs, code := runCmd(t, "", "prices")
	first, _, _ := strings.Cut(out, "\n")
	if code != 0 || first != "# embedded table as of 2026-11-30" {
		t.Fatalf("prices (exit %d %s): first line %q", code, errs, first)
	}
	for _, want := range []string{"claude-sonnet-4-5", "gemini-2.5-pro", "gpt-5.2", "flex,priority", ">272000 in 10 out 45", "CACHE WRITE/1M"} {
		if !strings.Contains(out, want) {
			t.Errorf("prices output lacks %q", want)
		}
	}
	out, errs, code = runCmd(t, "", "prices", "--json")
	if code != 0 || !strings.HasPrefix(out, "[") || !strings.Contains(errs, "embedded table as of") {
		t.Errorf("prices --json (exit %d): stderr %q, stdout starts %.20q", code, errs, out)
	}
}

func TestCostCommandTiersLongContextCacheWrites(t *testing.T) {
	isolatePrices(t)
	over := filepath.Join(t.TempDir(), "over.yaml")
	os.WriteFile(over, []byte("models:\n  - {model: azure.ai.openai/gpt-4o, input: 2, output: 8, source: contract, as_of: 2026-01-01}\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		// gpt-5.5 priority: 8000 × $12.50 + 2000 × $1.25 + 500 × $75 per 1M = 0.1 + 0.0025 + 0.0375
		{[]string{"--model", "gpt-5.5", "--input", "10000", "--cached", "2000", "--output", "500", "--tier", "priority"}, "0.14"},
		// flex: 8000 × $2.50 + 2000 × $0.25 + 500 × $15 = 0.02 + 0.0005 + 0.0075
		{[]string{"--model", "gpt-5.5", "--input", "10000", "--cached", "2000", "--output", "500", "--tier", "flex"}, "0.028"},
		{[]string{"--model", "gpt-5.5", "--input", "10000", "--cached", "2000", "--output", "500", "--tier", "default"}, "0.056"},
		// above 272k: 200000 × $10 + 100000 × $1 + 1000 × $45 = 2 + 0.1 + 0.045
		{[]string{"--model", "gpt-5.5", "--input", "300000", "--cached", "100000", "--output", "1000"}, "2.145"},
		// Anthropic: 1000 × $3 + 6000 × $0.30 read + 3000 × $3.75 write + 800 × $15 = 0.003 + 0.0018 + 0.01125 + 0.012
		{[]string{"--model", "claude-sonnet-4-5-20250929", "--input", "10000", "--cached", "6000", "--cache-write", "3000", "--output", "800"}, "0.02805"},
		// Gemini above 200k: 200000 × $2.50 + 50000 × $0.25 + 2000 × $15 = 0.5 + 0.0125 + 0.03
		{[]string{"--model", "models/gemini-2.5-pro", "--input", "250000", "--cached", "50000", "--output", "2000"}, "0.5425"},
		{[]string{"--model", "gpt-4o", "--input", "1000000", "--provider", "azure.ai.openai", "--prices", over}, "2"},
		{[]string{"--model", "gpt-4o", "--input", "1000000", "--provider", "openai", "--prices", over}, "2.5"},
	} {
		out, errs, code := runCmd(t, "", append([]string{"cost"}, c.args...)...)
		if code != 0 || out != c.want+"\n" {
			t.Errorf("cost %v = %q %q (exit %d), want %s", c.args, out, errs, code, c.want)
		}
	}
	_, errs, code := runCmd(t, "", "cost", "--model", "claude-sonnet-4-5", "--input", "10", "--cached", "6", "--cache-write", "5")
	if code != 1 || !strings.Contains(errs, "--cache-write 5 is more than --input 10") {
		t.Errorf("cache reads + writes over the input: exit %d %q", code, errs)
	}
	if _, errs, code := runCmd(t, "", "cost", "--model", "gpt-4o", "--cache-write", "x"); code != 1 || !strings.Contains(errs, "--cache-write") {
		t.Errorf("bad --cache-write: exit %d %q", code, errs)
	}
}

func TestPricesUpdateCommand(t *testing.T) {
	path := isolatePrices(t)
	litellm, err := os.ReadFile("../../pricing/testdata/litellm_trimmed.json")
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/good.json", func(w http.ResponseWriter, r *http.Request) { w.Write(litellm) })
	mux.HandleFunc("/bad.json", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"gpt-x": {"mode": `)) })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hang)

	// Before any update: the embedded table.
	if _, errs, code := runCmd(t, "", "prices", "update", "--url", srv.URL+"/500"); code != 1 || !strings.Contains(errs, "HTTP 500") {
		t.Errorf("update from a failing server, no previous file: exit %d %q", code, errs)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a failed update created %s: %v", path, err)
	}

	t.Setenv("LLMSCOPE_PRICES_URL", srv.URL+"/good.json")
	out, errs, code := runCmd(t, "", "prices", "update")
	if code != 0 || !strings.HasPrefix(out, "updated file "+path+" fetched ") || !strings.Contains(out, "anthropic 22") {
		t.Fatalf("prices update (exit %d): %q %q", code, out, errs)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ = runCmd(t, "", "prices")
	if first, _, _ := strings.Cut(out, "\n"); !strings.Contains(first, "updated file "+path+" fetched ") || !strings.Contains(first, " models") {
		t.Errorf("prices after an update says %q", first)
	}
	if !strings.Contains(out, "litellm ("+path+")") {
		t.Error("prices does not name the updated file as the source of its entries")
	}
	// The cost command reads it too: 1000 × $3 + 800 × $15 per 1M.
	if out, errs, _ := runCmd(t, "", "cost", "--model", "claude-sonnet-4-5", "--input", "1000", "--output", "800"); out != "0.015\n" {
		t.Errorf("cost after an update = %q %q", out, errs)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", srv.URL + "/bad.json"}, "want a JSON object of models"},
		{[]string{"--url", srv.URL + "/500"}, "HTTP 500 Internal Server Error"},
		{[]string{"--url", srv.URL + "/hang", "--timeout", "100ms"}, "after --timeout 100ms"},
		{[]string{"--url", "http://127.0.0.1:1/nothing"}, "fetch prices"},
	} {
		_, errs, code := runCmd(t, "", append([]string{"prices", "update"}, c.args...)...)
		if code != 1 || !strings.Contains(errs, c.want) || !strings.Contains(errs, path+" is unchanged") {
			t.Errorf("prices update %v: exit %d %q, want %q", c.args, code, errs, c.want)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("prices update %v changed the previous file", c.args)
		}
	}
	if _, errs, code := runCmd(t, "", "prices", "update", "--timeout", "soon"); code != 1 || !strings.Contains(errs, "--timeout") {
		t.Errorf("bad --timeout: exit %d %q", code, errs)
	}
}
