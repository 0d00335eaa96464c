package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadCommandsNeedAStore: a read command run where no store exists says
// where it looked and how to point it elsewhere, and creates nothing; its
// limit must be a positive whole number.
func TestReadCommandsNeedAStore(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs, _ := filepath.Abs("llmscope.db")
	for _, args := range [][]string{{"calls"}, {"stats"}, {"export"}, {"report", "--out", "charts"}} {
		_, stderr, code := runCmd(t, "", args...)
		if code == 0 || !strings.Contains(stderr, "no store at "+abs) || !strings.Contains(stderr, "--db") {
			t.Errorf("%s without a store: exit %d, stderr %q", args[0], code, stderr)
		}
	}
	if _, err := os.Stat("llmscope.db"); !os.IsNotExist(err) {
		t.Errorf("calls created a store: %v", err)
	}
	for _, limit := range []string{"-5", "0", "abc", "1.5"} {
		_, stderr, code := runCmd(t, "", "calls", "--limit", limit)
		if code == 0 || !strings.Contains(stderr, "not a positive whole number") {
			t.Errorf("--limit %s: exit %d, stderr %q", limit, code, stderr)
		}
	}
}
