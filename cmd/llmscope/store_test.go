package main

import (
	"strings"
	"testing"
)

// TestStoreLabelHidesPassword checks that a database URL's password never
// reaches the serve log or an error message.
func TestStoreLabelHidesPassword(t *testing.T) {
	for _, tc := range []struct{ db, want string }{
		{"llmscope.db", "llmscope.db"},
		{"/var/lib/llmscope/calls.db", "/var/lib/llmscope/calls.db"},
		{"postgres://llmscope:s3cret-pw@db:5432/llmscope?sslmode=require", "postgres://llmscope:xxxxx@db:5432/llmscope?sslmode=require"},
		{"postgresql://db/llmscope", "postgresql://db/llmscope"},
		{"postgres://u:p%zz@db/x", "the --db URL (unparsable; not shown)"},
	} {
		got := storeLabel(tc.db)
		if got != tc.want {
			t.Errorf("storeLabel(%q) = %q, want %q", tc.db, got, tc.want)
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "p%zz") {
			t.Errorf("storeLabel(%q) shows the password: %q", tc.db, got)
		}
	}
}
