package llmscope

import (
	"slices"
	"strings"
	"testing"
)

// oldKeyFinders are the needle scans findKeys replaced, one per key family
// as they were: the reference FuzzFindKeys checks findKeys against.
var oldKeyFinders = [...]finder{
	{"k-", 1, RedactedAPIKey, keyAt}, {"AIza", 0, RedactedAPIKey, keyAt},
	{"AKIA", 0, RedactedAPIKey, keyAt}, {"ASIA", 0, RedactedAPIKey, keyAt},
	{"gh", 0, RedactedAPIKey, keyAt}, {"github_pat_", 0, RedactedAPIKey, keyAt},
	{"xox", 0, RedactedAPIKey, keyAt},
}

func oldFindKeys(s string) []match { return scan(s, oldKeyFinders[:], nil) }

// sortedUnique orders matches by start, then end, without repeats.
func sortedUnique(ms []match) []match {
	slices.SortFunc(ms, func(a, b match) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return a.end - b.end
	})
	return slices.Compact(ms)
}

// FuzzFindKeys: findKeys finds exactly the keys the former scans found,
// one per needle, in any text.
func FuzzFindKeys(f *testing.F) {
	for _, s := range []string{
		"", "sk-proj-abcdefghijklmnopqrstuvwxyz0123", "sk-aaaaaaaaaaaaaaaaaaaaaaa-sk-bbbbbbbbbbbbbbbbbbbbbbbb1",
		"sk-abcxoxb-1234567890", "sk-xoxb-abcdefghijkl", "ghp_" + strings.Repeat("a", 36), "github_pat_" + strings.Repeat("b", 30),
		"ghp_abcgithub_pat_" + strings.Repeat("c", 30), "AKIAIOSFODNN7EXAMPLE", "AIza" + strings.Repeat("d", 35), "ASIA" + strings.Repeat("E", 16),
		`"\nsk-` + strings.Repeat("f", 24) + `1"`, "xoxoxb-" + strings.Repeat("g", 12), "xsk-" + strings.Repeat("h", 30) + "1",
		"gh_ghp_ghX_github_github_pat_" + strings.Repeat("i", 25), "sk-" + strings.Repeat("*", 25), "AAIzaAKIAASIA-_-", "AIza" + "a-AKIAABCDEFGHIJKLMNOP-bbbbbbbbbbbb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := sortedUnique(oldFindKeys(s))
		got := sortedUnique(findKeys(s, nil))
		if !slices.Equal(got, want) {
			t.Errorf("findKeys(%q) = %v, the former scans found %v", s, got, want)
		}
	})
}
