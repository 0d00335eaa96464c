package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// vectors are produced by OpenAI's reference tiktoken (scripts/tiktoken-vectors.sh).
type vectors struct {
	Texts map[string]map[string]struct {
		Count int   `json:"count"`
		IDs   []int `json:"ids"`
	} `json:"texts"`
	Chats []struct {
		Model    string `json:"model"`
		Encoding string `json:"encoding"`
		Count    int    `json:"count"`
		Messages []struct {
			Role, Name, Content string
		} `json:"messages"`
	} `json:"chats"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMatchesReferenceTiktoken(t *testing.T) {
	v := loadVectors(t)
	if len(v.Texts) < 9 {
		t.Fatalf("only %d corpus texts in vectors.json", len(v.Texts))
	}
	for name, byEnc := range v.Texts {
		text, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []string{O200kBase, Cl100kBase} {
			want, ok := byEnc[enc]
			if !ok {
				t.Fatalf("%s: no %s vector", name, enc)
			}
			ids, err := Encode(enc, string(text))
			if err != nil {
				t.Fatalf("%s/%s: %v", name, enc, err)
			}
			if !slices.Equal(ids, want.IDs) {
				i := 0
				for i < len(ids) && i < len(want.IDs) && ids[i] == want.IDs[i] {
					i++
				}
				t.Errorf("%s/%s: ids differ from tiktoken at token %d of %d", name, enc, i, len(want.IDs))
			}
			if got := CountEncoding(enc, string(text)); got != want.Count {
				t.Errorf("%s/%s: count %d, tiktoken %d", name, enc, got, want.Count)
			}
		}
	}
}

func TestChatMatchesReferenceCounting(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Chats {
		if EncodingFor(c.Model) != c.Encoding {
			t.Errorf("%s: encoding %s, tiktoken says %s", c.Model, EncodingFor(c.Model), c.Encoding)
		}
		msgs := make([]Message, len(c.Messages))
		for i, m := range c.Messages {
			msgs[i] = Message{Role: m.Role, Name: m.Name, Content: m.Content}
		}
		if got := CountChat(c.Model, msgs); got != c.Count {
			t.Errorf("%s chat of %d messages: %d tokens, reference %d", c.Model, len(msgs), got, c.Count)
		}
	}
}

func TestHostileInput(t *testing.T) {
	if n := Count("gpt-4o", "\xff\xfe\xfd"); n <= 0 || n > 3 {
		t.Errorf("invalid UTF-8 counted as %d", n)
	}
	big := strings.Repeat("The quick brown fox 🦊 jumps; ", 10<<20/32)
	n := Count("gpt-4o", big)
	if n < len(big)/8 || n > len(big) {
		t.Errorf("10 MB text counted as %d tokens", n)
	}
	if n := Count("gpt-4o", strings.Repeat(" ", 1<<20)); n <= 0 || n > 1<<20 {
		t.Errorf("1 MiB of spaces counted as %d", n)
	}
}

func TestCountTools(t *testing.T) {
	tools := []Tool{{Name: "get_weather", Description: "Get the weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}}
	want := toolsOverhead + toolOverhead + Count("gpt-4o", "get_weather") + Count("gpt-4o", "Get the weather") + Count("gpt-4o", string(tools[0].Parameters))
	if got := CountTools("gpt-4o", tools); got != want || CountTools("gpt-4o", nil) != 0 {
		t.Errorf("CountTools = %d, want %d", got, want)
	}
}
