package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"llmscope/prom"
	"llmscope/tokenizer"
)

func runCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestTokensCommand(t *testing.T) {
	text := "Hello, world! 日本語 and code: fmt.Println(42)\n"
	out, _, code := runCmd(t, text, "tokens", "--model", "gpt-4o")
	if code != 0 || out != strconv.Itoa(tokenizer.Count("gpt-4o", text))+"\n" {
		t.Errorf("tokens gpt-4o: %q (exit %d)", out, code)
	}
	// cl100k counts "hello world" as 2 tokens: [15339, 1917].
	if out, _, _ := runCmd(t, "hello world", "tokens", "--model", "gpt-4"); out != "2\n" {
		t.Errorf("tokens gpt-4 = %q, want 2", out)
	}
	if _, errs, code := runCmd(t, "x", "tokens"); code == 0 || !strings.Contains(errs, "--model is required") {
		t.Errorf("tokens without --model: exit %d %q", code, errs)
	}
}

func TestCostCommand(t *testing.T) {
	// o4-mini: 128 × $1.10 + 1920 × $0.275 + 300 × $4.40 per 1M = $0.0019888
	out, errs, code := runCmd(t, "", "cost", "--model", "o4-mini-2025-04-16", "--input", "2048", "--output", "300", "--cached", "1920")
	if code != 0 || out != "0.0019888\n" {
		t.Errorf("cost = %q %q (exit %d)", out, errs, code)
	}
	if out, _, _ := runCmd(t, "", "cost", "--model", "gpt-4o", "--input", "1000000", "--output", "1000000"); out != "12.5\n" {
		t.Errorf("cost gpt-4o 1M/1M = %q, want 12.5", out)
	}
	for _, args := range [][]string{
		{"cost", "--model", "mystery", "--input", "1"},
		{"cost", "--model", "gpt-4o", "--input", "-5"},
		{"cost", "--model", "gpt-4o", "--input", "5", "--cached", "9"},
	} {
		if _, errs, code := runCmd(t, "", args...); code != 1 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	// Overrides apply, and a malformed file names its line.
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("models:\n  - {model: acme-1, input: 1, output: 2, source: contract, as_of: 2026-01-01}\n"), 0o644)
	if out, _, _ := runCmd(t, "", "cost", "--prices", good, "--model", "acme-1", "--input", "1000000", "--output", "500000"); out != "2\n" {
		t.Errorf("override cost = %q, want 2", out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("models:\n  - {model: a, input: 1, output: 2}\n  - {model: b, input: lots}\n"), 0o644)
	if _, errs, code := runCmd(t, "", "prices", "--prices", bad); code != 1 || !strings.Contains(errs, "bad.yaml:3") {
		t.Errorf("malformed overrides: exit %d %q", code, errs)
	}
}

func TestPricesCommand(t *testing.T) {
	out, _, code := runCmd(t, "", "prices")
	if code != 0 || !strings.Contains(out, "gpt-4o-mini") || !strings.Contains(out, "AS OF") {
		t.Errorf("prices (exit %d):\n%s", code, out)
	}
}

func TestCostUnknownWarnsOncePerModel(t *testing.T) {
	var logs bytes.Buffer
	m := prom.New(func() int { return 0 })
	report := costUnknownReporter(m, slog.New(slog.NewTextHandler(&logs, nil)))
	for _, model := range []string{"a", "a", "b", "a"} {
		report(model)
	}
	if n := strings.Count(logs.String(), "no price for model"); n != 2 {
		t.Errorf("%d warnings for 2 unknown models:\n%s", n, logs.String())
	}
}
