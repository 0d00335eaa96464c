package tokenizer

import "testing"

func TestEncodingFor(t *testing.T) {
	cases := map[string]string{
		"gpt-4o":                      O200kBase,
		"gpt-4o-mini-2024-07-18":      O200kBase,
		"ft:gpt-4o-mini:acme::abc123": O200kBase,
		"gpt-4.1":                     O200kBase,
		"gpt-5-mini":                  O200kBase,
		"o3-mini":                     O200kBase,
		"gpt-4":                       Cl100kBase,
		"gpt-4-0613":                  Cl100kBase,
		"gpt-4-turbo":                 Cl100kBase,
		"gpt-3.5-turbo-0125":          Cl100kBase,
		"ft:gpt-3.5-turbo:acme::x":    Cl100kBase,
		"text-embedding-3-small":      Cl100kBase,
		"text-embedding-ada-002":      Cl100kBase,
		"some-unknown-model":          DefaultEncoding,
	}
	for model, want := range cases {
		if got := EncodingFor(model); got != want {
			t.Errorf("EncodingFor(%q) = %s, want %s", model, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	// Reference counts from tiktoken.
	if got := Count("gpt-4o", "hello world"); got != 2 {
		t.Errorf("o200k count = %d, want 2", got)
	}
	if got := Count("gpt-4", "tiktoken is great!"); got != 6 {
		t.Errorf("cl100k count = %d, want 6", got)
	}
	if got := Count("gpt-4o", ""); got != 0 {
		t.Errorf("empty count = %d, want 0", got)
	}
}

func TestCountChat(t *testing.T) {
	// OpenAI's cookbook example: these two messages are 2+... tokens; the
	// formula is 3 per message + content + role, plus 3 for the reply.
	msgs := []Message{{Role: "system", Content: "You are helpful."}, {Role: "user", Content: "hello world"}}
	want := 3 + (3 + Count("gpt-4o", "system") + Count("gpt-4o", "You are helpful.")) + (3 + Count("gpt-4o", "user") + 2)
	if got := CountChat("gpt-4o", msgs); got != want {
		t.Errorf("CountChat = %d, want %d", got, want)
	}
}
