package auth

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden .err files of testdata/keys")

func TestLoadClientKeys(t *testing.T) {
	k, err := LoadClientKeys("testdata/keys/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Names(); !slices.Equal(got, []string{"alice", "bob@team"}) {
		t.Errorf("Names() = %v", got)
	}
	for token, want := range map[string]string{aliceKey: "alice", bobKey: "bob@team"} {
		if name, ok := k.Lookup(token); !ok || name != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", token, name, ok, want)
		}
	}
	for _, token := range []string{"", "alice", adminToken, aliceKey + " "} {
		if name, ok := k.Lookup(token); ok {
			t.Errorf("Lookup(%q) = %q", token, name)
		}
	}
	var nilKeys *Keys
	if _, ok := nilKeys.Lookup(aliceKey); ok || nilKeys.Len() != 0 {
		t.Error("nil Keys knows a key")
	}
}

// TestLoadClientKeysErrors compares each bad file's error with its golden
// testdata/keys/<case>.err.
func TestLoadClientKeysErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/keys/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "/valid.yaml") {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			_, err := LoadClientKeys(f)
			if err == nil {
				t.Fatal("accepted")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run with -update to create it)", rerr)
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
			if strings.Contains(err.Error(), aliceKey) {
				t.Error("error repeats a key")
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d error cases", n)
	}
	if _, err := LoadClientKeys("testdata/keys/absent.yaml"); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewKeysRefuses(t *testing.T) {
	for _, keys := range [][]Key{
		{{Name: "", Hash: HashToken("a")}},
		{{Name: "a b", Hash: HashToken("a")}},
		{{Name: "é", Hash: HashToken("a")}},
		{{Name: strings.Repeat("a", 65), Hash: HashToken("a")}},
		{{Name: "a", Hash: HashToken("a")}, {Name: "a", Hash: HashToken("b")}},
		{{Name: "a", Hash: HashToken("a")}, {Name: "b", Hash: HashToken("a")}},
	} {
		if _, err := NewKeys(keys...); err == nil {
			t.Errorf("NewKeys(%v) accepted", keys)
		}
	}
}

func TestLoadAdminTokenFile(t *testing.T) {
	h, err := LoadAdminTokenFile("testdata/token/good.txt")
	if err != nil {
		t.Fatal(err)
	}
	if h != HashToken(adminToken) {
		t.Error("hash differs from HashToken of the token")
	}
	if got := FormatHash(h); !strings.HasPrefix(got, "sha256:") || len(got) != 7+64 {
		t.Errorf("FormatHash = %q", got)
	}
	for f, want := range map[string]string{
		"testdata/token/raw_token.txt": "testdata/token/raw_token.txt: want sha256:<64 hex digits> (the hash of the token, not the token)",
		"testdata/token/short.txt":     "testdata/token/short.txt: want sha256:<64 hex digits>, got 10 characters",
	} {
		_, err := LoadAdminTokenFile(f)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", f, err, want)
		}
		if err != nil && strings.Contains(err.Error(), adminToken) {
			t.Errorf("%s: error repeats the token", f)
		}
	}
	if _, err := LoadAdminTokenFile("testdata/token/absent.txt"); err == nil {
		t.Error("missing file accepted")
	}
}
