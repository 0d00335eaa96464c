package llmscope_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"llmscope"
)

func newRedactor(t testing.TB, builtin bool, patterns ...string) *llmscope.Redactor {
	t.Helper()
	r, err := llmscope.NewRedactor(builtin, patterns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Secrets of each kind, as the built-in patterns must find them.
const (
	keyOpenAI     = "sk-proj-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMn"
	keyLegacy     = "sk-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789AbCdEfGhIj"
	keyService    = "sk-svcacct-Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE"
	keyAnthropic  = "sk-ant-api03-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrSt-AA"
	keyGoogle     = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
	keyAWS        = "AKIAIOSFODNN7EXAMPLE"
	keyAWSSession = "ASIAY34FZKBOKMUTVV7A"
	keyGitHub     = "ghp_1A2b3C4d5E6f7G8h9I0jK1l2M3n4O5p6Q7r8"
	keyGitHubOA   = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
	keyGitHubApp  = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
	keyGitHubPAT  = "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU"
	keySlack      = "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	maskedOpenAI  = "sk-proj-********************************abcd"
	jwt           = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	cardVisa      = "4111111111111111"
	cardVisaSpace = "4111 1111 1111 1111"
	cardMCDash    = "5555-5555-5555-4444"
	cardAmex      = "3782 822463 10005"
	cardMC2       = "2223003122003222"
	cardDiscover  = "6011111111111117"
)

func TestRedactFinds(t *testing.T) {
	r := newRedactor(t, true)
	for _, tc := range []struct{ in, want string }{
		{"key " + keyOpenAI + " here", "key [REDACTED:api_key] here"},
		{"key=" + keyLegacy, "key=[REDACTED:api_key]"},
		{keyService, "[REDACTED:api_key]"},
		{"ANTHROPIC_API_KEY=" + keyAnthropic + "\n", "ANTHROPIC_API_KEY=[REDACTED:api_key]\n"},
		{"?key=" + keyGoogle + "&x=1", "?key=[REDACTED:api_key]&x=1"},
		{"aws_access_key_id = " + keyAWS, "aws_access_key_id = [REDACTED:api_key]"},
		{"(" + keyAWSSession + ")", "([REDACTED:api_key])"},
		{"token: " + keyGitHub, "token: [REDACTED:api_key]"},
		{keyGitHubOA + " " + keyGitHubApp, "[REDACTED:api_key] [REDACTED:api_key]"},
		{"'" + keyGitHubPAT + "'", "'[REDACTED:api_key]'"},
		{"SLACK=" + keySlack, "SLACK=[REDACTED:api_key]"},
		{"Incorrect API key provided: " + maskedOpenAI + ". You can find your API key at https://platform.openai.com/account/api-keys.",
			"Incorrect API key provided: [REDACTED:api_key]. You can find your API key at https://platform.openai.com/account/api-keys."},
		{"Incorrect API key provided: sk-abc12***************************************wxyz.", "Incorrect API key provided: [REDACTED:api_key]."},
		{"Authorization: Bearer " + jwt, "Authorization: Bearer [REDACTED:bearer]"},
		{"curl -H 'authorization: bearer abcdef0123456789'", "curl -H 'authorization: bearer [REDACTED:bearer]'"},
		{"Authorization: Bearer " + keyOpenAI, "Authorization: Bearer [REDACTED:api_key]"},
		{"mail jane.doe+llm@example.co.uk today", "mail [REDACTED:email] today"},
		{"<j_smith99@mail-server.example.org>.", "<[REDACTED:email]>."},
		{"mailto:bob@example.com?subject=x", "mailto:[REDACTED:email]?subject=x"},
		{"card " + cardVisa + ".", "card [REDACTED:card]."},
		{"card: " + cardVisaSpace + " exp 12/29", "card: [REDACTED:card] exp 12/29"},
		{cardMCDash, "[REDACTED:card]"},
		{"amex " + cardAmex, "amex [REDACTED:card]"},
		{"mc " + cardMC2 + ", discover " + cardDiscover, "mc [REDACTED:card], discover [REDACTED:card]"},
		{"order 12 " + cardVisaSpace, "order 12 [REDACTED:card]"},
		{"a@b.cc" + cardVisa, "[REDACTED:email][REDACTED:card]"},
	} {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactLeavesAlone(t *testing.T) {
	r := newRedactor(t, true)
	for _, s := range []string{
		"a task-based approach, risk-free, desk-1234567890abcdefghij",
		"sk-learn is scikit-learn; sk-short; sk-abcdefghijklmnopqrstuvwxyz (no digit)",
		"AIzaTooShort123 and AKIAIOSFODNN7EXAMPLEX and AKIAIOSFODNN7EXAMPL and AKIAIOSFODNN7EXAMPLEabc",
		"ghp_short, the light through the night, github_pat_short",
		"xoxb-short; xoxo-1234567890abcdef",
		"the bearer of bad news; Bearer <token>; Bearer $TOKEN; bearer instruments",
		"@property\ndef f(self): return a @ b  # user@localhost, x@y.z, @mention, foo@.com",
		"order 1234567890123 (13 digits, Luhn-invalid), timestamp 1715950000123, id 17159500001234567",
		"ms 1700000000000 and 1234567812345670 (Luhn-valid, no issuer)",
		"pi 3.4111111111111111 and 4111111111111111.25 and 4111111111111111e5",
		"x4111111111111111 4111111111111111abc +4111111111111111",
		"long 41111111111111111111111; Luhn-invalid 4111111111111112 and 5555-5555-5555-4445",
		"dates 2024-01-15 2024-01-15-12-30, phone +1 555-123-4567, uuid 123e4567-e89b-12d3-a456-426614174000",
		"[REDACTED:api_key] [REDACTED:email] [REDACTED:card] [REDACTED:bearer] [REDACTED]",
		"",
	} {
		if got := r.String(s); got != s {
			t.Errorf("String(%q)\n changed it to %q", s, got)
		}
	}
}

func TestRedactUserPatterns(t *testing.T) {
	r := newRedactor(t, false, `\bEMP-\d{6}\b`, `(?i)project\s+falcon`)
	got := r.String(`badge EMP-123456, on Project  Falcon; ` + keyOpenAI)
	want := `badge [REDACTED], on [REDACTED]; ` + keyOpenAI // built-ins off
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	_, err := llmscope.NewRedactor(true, []string{`ok`, `([a-`})
	var se *syntax.Error
	if err == nil || !strings.HasPrefix(err.Error(), `redact pattern 2 "([a-": error parsing regexp`) || !errors.As(err, &se) {
		t.Errorf("invalid pattern: %v", err)
	}
	if _, err := llmscope.NewRedactor(false, []string{""}); err == nil {
		t.Error("an empty pattern was accepted")
	}
}

func TestRedactNil(t *testing.T) {
	var r *llmscope.Redactor
	if got := r.String("mail a@example.com"); got != "mail a@example.com" {
		t.Errorf("nil redactor changed text: %q", got)
	}
	c := &llmscope.Call{Input: "a@example.com"}
	r.Call(c)
	if c.Input != "a@example.com" {
		t.Errorf("nil redactor changed a call: %q", c.Input)
	}
}

// TestRedactJSON: secrets inside JSON strings go, next to escapes and
// quotes, and the document stays valid; a card written as a number becomes a
// string.
func TestRedactJSON(t *testing.T) {
	r := newRedactor(t, true, `secret-[a-z]+`, `"x"`, `\d\d`)
	secrets := []string{keyOpenAI, keyAnthropic, keyGitHub, jwt, "jane@example.com", cardVisa, "secret-sauce", "secret-recipe"}
	for _, doc := range []string{
		`[{"role":"user","content":"my key is ` + keyOpenAI + `\nand mail jane@example.com\tthanks"}]`,
		`{"messages":[{"role":"system","content":"\"` + keyAnthropic + `\" \u00e9jane@example.com\\"}]}`,
		`[{"type":"function","function":{"name":"pay","parameters":{"card":{"type":"string","example":"` + cardVisa + `"}}}}]`,
		`[{"id":"call_1","type":"function","function":{"name":"pay","arguments":"{\"card\":\"` + cardVisa + `\",\"token\":\"Bearer ` + jwt + `\"}"}}]`,
		`{"card":` + cardVisa + `,"n":[-` + cardVisa + `, 1], "x":"secret-sauce", "y":"a secret-recipe\u0041"}`,
		`{"q":"\u0031` + cardVisa + `","k":"\\` + keyGitHub + `","e":"\\\"jane@example.com\\\\"}`,
		`"` + keyOpenAI + `"`,
		cardVisa,
	} {
		if !json.Valid([]byte(doc)) {
			t.Fatalf("test document is not JSON: %s", doc)
		}
		got := r.String(doc)
		if !json.Valid([]byte(got)) {
			t.Errorf("redacted JSON is invalid:\n in %s\nout %s", doc, got)
		}
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Errorf("secret %q left in %s", s, got)
			}
		}
	}
}

func TestRedactNoMatchReturnsInput(t *testing.T) {
	r := newRedactor(t, true)
	s := cleanPrompt(50 << 10)
	if got := r.String(s); unsafe.StringData(got) != unsafe.StringData(s) {
		t.Fatal("String copied a text with nothing to redact")
	}
	if n := testing.AllocsPerRun(20, func() { r.String(s) }); n != 0 {
		t.Errorf("String allocated %v times on a clean text", n)
	}
}

func TestRedactCall(t *testing.T) {
	r := newRedactor(t, true)
	c := &llmscope.Call{
		Input:        `[{"role":"user","content":"I am jane@example.com"}]`,
		Output:       "Your card " + cardVisa + " is on file.",
		Tools:        `[{"type":"function","function":{"name":"f","description":"uses ` + keyGitHub + `"}}]`,
		ToolCalls:    `[{"function":{"arguments":"{\"key\":\"` + keyAWS + `\"}"}}]`,
		ErrorMessage: "Incorrect API key provided: " + maskedOpenAI + strings.Repeat("é", 500),
		User:         "jane@example.com", // not text from a message: left alone
	}
	r.Call(c)
	for name, v := range map[string]string{"input": c.Input, "output": c.Output, "tools": c.Tools, "tool_calls": c.ToolCalls, "error_message": c.ErrorMessage} {
		if !strings.Contains(v, "[REDACTED:") {
			t.Errorf("%s not redacted: %q", name, v)
		}
	}
	if len(c.ErrorMessage) > llmscope.MaxErrorMessage || !utf8.ValidString(c.ErrorMessage) {
		t.Errorf("error message %d bytes, valid UTF-8 %v", len(c.ErrorMessage), utf8.ValidString(c.ErrorMessage))
	}
	if c.User != "jane@example.com" {
		t.Errorf("user changed: %q", c.User)
	}
}

// cleanPrompt returns a realistic chat request of about n bytes with
// nothing to redact: prose, code, numbers, dates, near misses.
// prose returns n bytes of plain English-like words, as the load harness's
// long prompts hold.
func prose(n int) string {
	words := strings.Fields(`the quick brown fox jumps over a lazy dog while seven engineers measure
	latency of every request through an observability gateway and count tokens cost errors`)
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[(i*7+i/len(words))%len(words)])
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

func cleanPrompt(n int) string {
	paras := []string{
		"You are a helpful assistant. Answer thoroughly, although briefly, and think through the light and the night of each step.",
		"Here is my code:\n```python\nclass Task:\n    @property\n    def risk(self):\n        return self.a @ self.b  # matrix product\n```\nWhy does it fail on 2024-05-17 at 13:45:09?",
		"Order #48213-77 shipped 2024-05-17; tracking 1Z999AA10123456784; call 555-0143 or +1 (555) 123-4567. Total $1,234.56 for 3 items.",
		"The task-based scheduler uses a risk-free desk-side heuristic: see https://example.com/docs/task-based?page=2&sort=asc#section-4.",
		"Timestamps: 1715950000, 1715950000123; ids 42, 1001, 987654321; version v1.22.3; sha 9f86d081884c7d659a2feaa0c55ad015.",
		"The bearer of this note may pass. Bearer tokens go in the Authorization header, e.g. `Authorization: Bearer <token>`.",
		"Emails look like name at example dot com; our handle is @llmscope on social media, ping @team in chat.",
		"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
	}
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","messages":[`)
	for i := 0; b.Len() < n; i++ {
		p, _ := json.Marshal(paras[i%len(paras)])
		role := "user"
		if i%3 == 1 {
			role = "assistant"
		}
		fmt.Fprintf(&b, `{"role":%q,"content":%s},`, role, p)
	}
	b.WriteString(`{"role":"user","content":"thanks"}]}`)
	return b.String()
}

// secretPrompt is cleanPrompt with a few secrets of each kind spread in it.
func secretPrompt(n int) string {
	s := cleanPrompt(n)
	for i, secret := range []string{keyOpenAI, "jane@example.com", cardVisaSpace, "Bearer " + jwt, keyAWS, maskedOpenAI} {
		at := len(s) * (i + 1) / 8
		at += strings.Index(s[at:], "Lorem") // inside a string
		s = s[:at] + secret + " " + s[at:]
	}
	return s
}

func BenchmarkRedact(b *testing.B) {
	r := newRedactor(b, true)
	for _, bc := range []struct{ name, s string }{
		{"clean-50KB", cleanPrompt(50 << 10)},
		{"prose-50KB", prose(50 << 10)},
		{"secrets-50KB", secretPrompt(50 << 10)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.s)))
			b.ReportAllocs()
			for b.Loop() {
				r.String(bc.s)
			}
		})
	}
}

// FuzzRedact: redaction never panics, is idempotent for the built-in kinds,
// keeps valid UTF-8 and valid JSON valid, with user patterns too that match
// across quotes, escapes and JSON structure.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"", "plain text", keyOpenAI, "Bearer " + jwt, "jane@example.com", cardVisaSpace, maskedOpenAI,
		`{"a":"` + keyGitHub + `\n","b":` + cardVisa + `}`, `"\u0031` + cardVisa + `"`, `"\\\"a@b.cc\\"`,
		"a@b.cc" + cardVisa, `["x\u00e9jane@example.com"]`, cleanPrompt(2 << 10), secretPrompt(2 << 10),
	} {
		f.Add(s)
	}
	r := newRedactor(f, true)
	ru := newRedactor(f, true, `(?s)x.{0,8}y`, `[0-9]{3}`, `\\u00`, `e"?:`)
	f.Fuzz(func(t *testing.T, s string) {
		once := r.String(s)
		if twice := r.String(once); twice != once {
			t.Errorf("not idempotent:\n in %q\nonce %q\ntwice %q", s, once, twice)
		}
		if utf8.ValidString(s) && !utf8.ValidString(once) {
			t.Errorf("invalid UTF-8 out of %q: %q", s, once)
		}
		user := ru.String(s)
		if utf8.ValidString(s) && !utf8.ValidString(user) {
			t.Errorf("user patterns: invalid UTF-8 out of %q: %q", s, user)
		}
		if json.Valid([]byte(s)) && (!json.Valid([]byte(once)) || !json.Valid([]byte(user))) {
			t.Errorf("invalid JSON out of %q:\n%q\n%q", s, once, user)
		}
	})
}

// adversarialUnits are pieces that, repeated to 50 KB, make a naive
// redactor quadratic: every position starts a candidate match.
var adversarialUnits = []string{
	"sk-", "sk-a", "AIza-", "AKIA", "gh", "ghp_", "github_pat_", "xoxb-", "a@", "@a.", "a@a.", ".@a", "1 ", "4111 ", "1-",
	"bearer ", "Bearer a", `\`, `\u0031`, `\n4`, "4", `"4111111111111111",`, "a@b.cc4111111111111111",
}

// TestRedactAdversarial: inputs built to make candidate matches everywhere
// come out redacted idempotently (their speed is BenchmarkRedactAdversarial's
// business: no timing here).
func TestRedactAdversarial(t *testing.T) {
	r := newRedactor(t, true, `a+b`)
	for _, unit := range adversarialUnits {
		s := strings.Repeat(unit, (50<<10)/len(unit))
		once := r.String(s)
		if twice := r.String(once); twice != once {
			t.Errorf("%q repeated to 50 KB: redacting again changes it", unit)
		}
	}
}

// BenchmarkRedactAdversarial times each adversarial input at 50 KB.
func BenchmarkRedactAdversarial(b *testing.B) {
	r, err := llmscope.NewRedactor(true, []string{`a+b`})
	if err != nil {
		b.Fatal(err)
	}
	for _, unit := range adversarialUnits {
		s := strings.Repeat(unit, (50<<10)/len(unit))
		b.Run(fmt.Sprintf("%q", unit), func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				r.String(s)
			}
		})
	}
}
