package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"llmscope"
	"llmscope/internal/mlflowtest"
)

// TestStatsAndExport: `stats` and `export` read the store; pandas reads the
// CSV with the right types, and its sums equal /api/stats.
func TestStatsAndExport(t *testing.T) {
	python := filepath.Join(filepath.Dir(mlflowtest.Binary()), "python")
	if mlflowtest.Binary() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Python with pandas: run scripts/mlflow-venv.sh")
		}
		t.Skip("\n\n*** no Python with pandas (.venv/mlflow): run scripts/mlflow-venv.sh; skipping ***\n")
	}
	_, base, db, _ := startServe(t)
	const n = 24
	for i := range n {
		h := map[string]string{"X-Llmscope-Run": []string{"a", "b"}[i%2]}
		if i%6 == 5 {
			h["X-Sim-Fault"] = "status=429" // an error row: cost and usage empty
		}
		body := fmt.Sprintf(`{"model":%q,"stream":%t,"temperature":0.5,"messages":[{"role":"user","content":"call %d, with \"quotes\", commas\\nand a newline"}]}`,
			[]string{"gpt-4o-mini", "gpt-4o", "mystery-model"}[i%3], i%2 == 0, i)
		sendJSON(t, base+"/v1/chat/completions", body, h)
	}
	stats := waitStats(t, base, n)

	out, errs, code := runCmd(t, "", "stats", "--db", db)
	if code != 0 || !strings.Contains(out, "gpt-4o-mini") || !strings.Contains(out, "mystery-model") {
		t.Fatalf("stats (exit %d): %s %s", code, out, errs)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	last := strings.Fields(rows[len(rows)-1])
	if last[0] != "total" || last[1] != fmt.Sprint(n) || last[2] != fmt.Sprint(stats.Totals.Errors) {
		t.Errorf("stats total row %v, want %d calls and %d errors", last, n, stats.Totals.Errors)
	}

	csvPath := filepath.Join(t.TempDir(), "calls.csv")
	if _, errs, code := runCmd(t, "", "export", "--db", db, "--format", "csv", "--out", csvPath); code != 0 {
		t.Fatalf("export csv: %s", errs)
	}
	jl, errs, code := runCmd(t, "", "export", "--db", db, "--format", "jsonl", "--run", "a")
	if code != 0 {
		t.Fatalf("export jsonl: %s", errs)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewBufferString(jl))
	for sc.Scan() {
		var c llmscope.Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil || c.Run != "a" {
			t.Fatalf("jsonl line %d: %v %q", lines, err, c.Run)
		}
		lines++
	}
	if lines != n/2 {
		t.Errorf("jsonl has %d lines for run a, want %d", lines, n/2)
	}

	script := `
import sys, json, pandas as pd
df = pd.read_csv(sys.argv[1], parse_dates=["start"])
assert str(df["start"].dtype).startswith("datetime64"), df["start"].dtype
for col in ["duration_ms", "ttft_ms", "cost_total_usd", "temperature", "overhead_ms"]:
    assert df[col].dtype == "float64", (col, df[col].dtype)
for col in ["status", "input_tokens", "output_tokens", "total_tokens"]:
    assert df[col].dtype == "int64", (col, df[col].dtype)
assert df["stream"].dtype == "bool", df["stream"].dtype
print(json.dumps({"rows": len(df), "input": int(df["input_tokens"].sum()), "output": int(df["output_tokens"].sum()),
                  "cost": float(df["cost_total_usd"].sum()), "errors": int((df["error_type"].notna()).sum()),
                  "unpriced": int(df["cost_total_usd"].isna().sum()), "newline": bool(df["input"].isna().all())}))
`
	res, err := exec.Command(python, "-c", script, csvPath).CombinedOutput()
	if err != nil {
		t.Fatalf("pandas: %v\n%s", err, res)
	}
	var got struct {
		Rows, Input, Output, Errors, Unpriced int64
		Cost                                  float64
	}
	if err := json.Unmarshal(res, &got); err != nil {
		t.Fatalf("pandas output %q: %v", res, err)
	}
	tt := stats.Totals
	if tt.Errors != 4 {
		t.Errorf("%d errors in the traffic, want the 4 injected 429s", tt.Errors)
	}
	if got.Rows != n || got.Input != tt.InputTokens || got.Output != tt.OutputTokens || got.Errors != tt.Errors || got.Unpriced != tt.CostUnknown {
		t.Errorf("pandas sums %+v; /api/stats %+v", got, tt)
	}
	if d := got.Cost - tt.CostUSD; d > 1e-9 || d < -1e-9 {
		t.Errorf("pandas cost %v, /api/stats %v", got.Cost, tt.CostUSD)
	}
}
