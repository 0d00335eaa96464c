package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
)

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-4o-mini":                 "gpt-4o-mini",
		"héllo 👋":                     "héllo 👋",
		"a\tb\nc\r":                   `a\x09b\x0ac\x0d`,
		"\x1b]0;pwned\x07\x1b[2J":     `\x1b]0;pwned\x07\x1b[2J`,
		"del\x7f":                     `del\x7f`,
		"c1\u0085\u009b":              `c1\u0085\u009b`,
		"evil\u202egpj.exe":           `evil\u202egpj.exe`,
		"\u202a\u202b\u202c\u202d":    `\u202a\u202b\u202c\u202d`,
		"\u2066\u2067\u2068\u2069end": `\u2066\u2067\u2068\u2069end`,
		"bad\xff\xc3utf8":             `bad\xff\xc3utf8`,
		"":                            "",
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTablesEscapeStoredValues: a stored model name, error and id with
// terminal escapes and a bidi override reach `calls` and `stats` tables as
// visible escapes: no control byte but the line ends, no raw ESC, no
// U+202E. --json output stays exact.
func TestTablesEscapeStoredValues(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "t.db")
	store, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	evil := "m\x1b]0;pwned\x07\x1b[2J\u202eevil\t\u009b"
	c := &llmscope.Call{ID: "id\x1b[31m", Start: time.Now(), Operation: "chat\x07", RequestModel: evil, ResponseModel: evil,
		Status: 500, ErrorType: "err\x1b[1A\r", Experiment: "exp\x1b", Run: "run\u2066"}
	if err := store.Write(ctx, []*llmscope.Call{c}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	check := func(name, out string) {
		t.Helper()
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 && out[i] != '\n' || out[i] == 0x7f {
				t.Errorf("%s: byte %#x at %d: %q", name, out[i], i, out)
				break
			}
		}
		if strings.ContainsRune(out, '\u202e') || strings.ContainsRune(out, '\u009b') {
			t.Errorf("%s: raw bidi override or C1 control: %q", name, out)
		}
		if !strings.Contains(out, `m\x1b]0;pwned\x07\x1b[2J\u202eevil\x09\u009b`) {
			t.Errorf("%s: the model is not shown escaped: %q", name, out)
		}
	}
	var out, errs bytes.Buffer
	if err := runCalls(ctx, []string{"--db", db}, nil, &out, &errs); err != nil {
		t.Fatalf("calls: %v %s", err, errs.String())
	}
	check("calls", out.String())
	if !strings.Contains(out.String(), `id\x1b[31m`) || !strings.Contains(out.String(), `err\x1b[1A\x0d`) {
		t.Errorf("calls: id or error not escaped: %q", out.String())
	}
	out.Reset()
	if err := runStats(ctx, []string{"--db", db}, nil, &out, &errs); err != nil {
		t.Fatalf("stats: %v %s", err, errs.String())
	}
	check("stats", out.String())

	out.Reset()
	if err := runCalls(ctx, []string{"--db", db, "--json"}, nil, &out, &errs); err != nil {
		t.Fatalf("calls --json: %v", err)
	}
	if !strings.Contains(out.String(), `"request_model": "m\u001b]0;pwned\u0007\u001b[2J`) {
		t.Errorf("calls --json changed: %s", out.String())
	}
}
