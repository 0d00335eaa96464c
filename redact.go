package llmscope

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The markers that replace redacted text, one per kind. None holds a quote
// or a backslash, so a marker put inside a JSON string leaves it valid.
const (
	RedactedAPIKey = "[REDACTED:api_key]" // a provider's API key or token
	RedactedBearer = "[REDACTED:bearer]"  // the token after "Bearer "
	RedactedEmail  = "[REDACTED:email]"   // an e-mail address
	RedactedCard   = "[REDACTED:card]"    // a payment card number
	Redacted       = "[REDACTED]"         // a match of a user pattern
)

// Redactor replaces sensitive text by markers before it leaves the process
// (store, MLflow, OTLP, exports). A nil *Redactor redacts nothing. It is
// safe for concurrent use.
type Redactor struct {
	builtin  bool
	patterns []*regexp.Regexp
}

// NewRedactor returns a Redactor of the built-in kinds when builtin is set
// (API keys, bearer tokens, e-mail addresses, card numbers) and of patterns,
// regular expressions in Go's RE2 syntax whose matches become Redacted. An
// empty or invalid pattern is an error naming it (numbered from 1).
func NewRedactor(builtin bool, patterns []string) (*Redactor, error) {
	r := &Redactor{builtin: builtin}
	for i, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("redact pattern %d %q: empty", i+1, p)
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact pattern %d %q: %w", i+1, p, err)
		}
		r.patterns = append(r.patterns, re)
	}
	return r, nil
}

// Call redacts in place the fields of c that carry text from the client or
// the upstream: Input, Output, Tools, ToolCalls and ErrorMessage (kept within
// MaxErrorMessage bytes). It must run before c reaches any sink: the store,
// and through it every exporter, keeps and sends what it is given.
func (r *Redactor) Call(c *Call) {
	if r == nil || c == nil {
		return
	}
	for _, f := range [...]*string{&c.Input, &c.Output, &c.Tools, &c.ToolCalls, &c.ErrorMessage} {
		*f = r.String(*f)
	}
	if n := MaxErrorMessage; len(c.ErrorMessage) > n {
		for n > 0 && !utf8.RuneStart(c.ErrorMessage[n]) {
			n--
		}
		c.ErrorMessage = c.ErrorMessage[:n]
	}
}

// String returns s with every match replaced by the marker of its kind, or
// s itself, without allocating, when nothing matches. Redacting the result
// again changes nothing the built-in kinds find. Valid UTF-8 and valid JSON
// stay valid: a match never takes a quote, a backslash or a JSON escape (the
// text on either side of one gets a marker each), and in a valid JSON
// document a number or literal a match touches becomes a quoted marker.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	// A replacement can free a neighbour refused for the letter next to it
	// ("a@b.cc4111…"): the built-in kinds run again until nothing changes.
	// Each round replaces text outside markers, so this ends; 8 is a guard.
	var ms []match
	for round := 0; round < 8; round++ {
		ms = r.find(s, ms[:0], round == 0)
		if len(ms) == 0 {
			break
		}
		next := apply(s, ms)
		if next == s {
			break
		}
		s = next
	}
	return s
}

type match struct {
	start, end int
	marker     string
}

// find appends the matches of the built-in kinds in s to ms, and those of
// the user patterns when user is set. API keys come first, then e-mail
// addresses, then bearer tokens: where two kinds match from the same byte,
// apply keeps the first.
func (r *Redactor) find(s string, ms []match, user bool) []match {
	if r.builtin {
		ms = findKeys(s, ms)
		ms = scan(s, finders[:], ms)
		ms = findCards(s, ms)
	}
	for i := 0; user && i < len(r.patterns); i++ {
		for _, m := range r.patterns[i].FindAllStringIndex(s, -1) {
			if m[0] < m[1] {
				ms = append(ms, match{m[0], m[1], Redacted})
			}
		}
	}
	return ms
}

// A finder finds one built-in kind where its needle occurs: at gets the
// needle's position less off and returns the match s[start:end] (empty:
// none) and where to look for the next.
type finder struct {
	needle string
	off    int
	marker string
	at     func(s string, i int) (start, end, next int)
}

// finders' needles start with bytes rare in prose. The API keys whose
// prefixes start with common letters ("sk-", "ghp_", "xoxb-") are found by
// findKeys instead.
var finders = [...]finder{
	{"@", 0, RedactedEmail, emailAt},
	{"Bearer ", 0, RedactedBearer, bearerAt}, {"bearer ", 0, RedactedBearer, bearerAt},
}

// scan appends to ms the matches of each finder in fs, in order.
func scan(s string, fs []finder, ms []match) []match {
	for _, f := range fs {
		for i := 0; ; {
			j := strings.Index(s[i:], f.needle)
			if j < 0 {
				break
			}
			j += i
			a, e, next := f.at(s, j-f.off)
			if a < e {
				ms = append(ms, match{a, e, f.marker})
			}
			i = max(j+1, next)
		}
	}
	return ms
}

// findKeys appends the API keys of s to ms. It looks where a key prefix's
// rarest byte is: the '-' of "sk-" and "xoxb-", the '_' of "ghp_" and
// "github_pat_", the 'A' of "AIza", "AKIA" and "ASIA". Each family has
// its own scan position (next, as finders have): a key refused for its
// unbounded body hides no key of its family inside that body, yet may hide
// one of another family.
func findKeys(s string, ms []match) []match {
	var sk, xox, gh, ghPat, aiza, akia, asia int // each family's scan position
	try := func(p int, pos *int) {
		if p < *pos {
			return
		}
		a, e, next := keyAt(s, p)
		if a < e {
			ms = append(ms, match{a, e, RedactedAPIKey})
		}
		*pos = max(p+1, next)
	}
	at := func(c byte, f func(j int)) { // f(j) for each s[j] == c
		for j := 0; ; j++ {
			k := strings.IndexByte(s[j:], c)
			if k < 0 {
				return
			}
			j += k
			f(j)
		}
	}
	at('-', func(j int) {
		if j >= 2 && s[j-2] == 's' && s[j-1] == 'k' {
			try(j-2, &sk)
		}
		if j >= 4 && s[j-4:j-1] == "xox" {
			try(j-4, &xox)
		}
	})
	at('_', func(j int) {
		if j >= 3 && s[j-3] == 'g' && s[j-2] == 'h' {
			try(j-3, &gh)
		}
		if j >= 6 && s[j-6:j] == "github" {
			try(j-6, &gh)
			try(j-6, &ghPat)
		}
	})
	at('A', func(j int) {
		if j+4 > len(s) {
			return
		}
		switch s[j+1 : j+4] {
		case "Iza":
			try(j, &aiza)
		case "KIA":
			try(j, &akia)
		case "SIA":
			try(j, &asia)
		}
	})
	return ms
}

// Character classes, a bit each.
const (
	cAlnum  = 1 << iota // letters and digits
	cWord               // alnum and '_'
	cKey                // word and '-': API key bodies
	cStar               // '*': OpenAI's masked keys ("sk-proj-****abcd")
	cUpper              // 'A'-'Z' and digits
	cLocal              // word and ".%+-": e-mail local parts
	cDomain             // alnum and ".-"
	cToken              // word and "-.~+/=": bearer tokens
)

var class = func() (t [256]uint8) {
	set := func(bits uint8, chars string) {
		for i := range len(chars) {
			t[chars[i]] |= bits
		}
	}
	const upper, lower, digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789"
	set(cAlnum|cWord|cKey|cLocal|cDomain|cToken, upper+lower+digits)
	set(cUpper, upper+digits)
	set(cWord|cKey|cLocal|cToken, "_")
	set(cKey|cLocal|cDomain|cToken, "-")
	set(cLocal|cDomain|cToken, ".")
	set(cLocal, "%+")
	set(cToken, "~+/=")
	set(cStar, "*")
	return t
}()

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return class[c]&cAlnum != 0 && !isDigit(c) }

// span returns the end of the run of bytes of class bits from s[i].
func span(s string, i int, bits uint8) int {
	for i < len(s) && class[s[i]]&bits != 0 {
		i++
	}
	return i
}

// wordStart reports whether a word can start at s[i]: the byte before is no
// word byte, or ends a JSON escape ("\nsk-…").
func wordStart(s string, i int) bool {
	return i == 0 || class[s[i-1]]&cWord == 0 || escapeEnd(s, i)
}

// keyRules: a prefix, then min to max (0: any number) bytes of class body,
// not followed by a word byte. A body that may hold '*' (a masked key) must
// hold a digit or a '*'.
var keyRules = [...]struct {
	prefix   string
	min, max int
	body     uint8
}{
	// OpenAI sk-, sk-proj-, sk-svcacct-; Anthropic sk-ant-; Google; AWS access key ids
	{"sk-", 20, 0, cKey | cStar}, {"AIza", 35, 35, cKey}, {"AKIA", 16, 16, cUpper}, {"ASIA", 16, 16, cUpper},
	// GitHub
	{"ghp_", 30, 0, cAlnum}, {"gho_", 30, 0, cAlnum}, {"ghs_", 30, 0, cAlnum},
	{"ghu_", 30, 0, cAlnum}, {"ghr_", 30, 0, cAlnum}, {"github_pat_", 22, 0, cWord},
	// Slack
	{"xoxa-", 10, 0, cKey}, {"xoxb-", 10, 0, cKey}, {"xoxp-", 10, 0, cKey}, {"xoxr-", 10, 0, cKey}, {"xoxs-", 10, 0, cKey},
}

// keyAt finds an API key at s[i]. No key starts inside one refused for its
// unbounded body, as that body ends it too: the search goes on after it.
func keyAt(s string, i int) (start, end, next int) {
	if i < 0 || !wordStart(s, i) {
		return 0, 0, 0
	}
	for _, k := range keyRules {
		if !strings.HasPrefix(s[i:], k.prefix) {
			continue
		}
		b := i + len(k.prefix)
		e := b
		for e < len(s) && class[s[e]]&k.body != 0 && (k.max == 0 || e-b <= k.max) {
			e++
		}
		if k.max == 0 {
			next = e
		}
		if n := e - b; n < k.min || k.max > 0 && n > k.max || e < len(s) && class[s[e]]&cWord != 0 ||
			k.body&cStar != 0 && !strings.ContainsAny(s[b:e], "0123456789*") {
			return 0, 0, next
		}
		return i, e, e
	}
	return 0, 0, 0
}

// bearerAt finds the token after "Bearer " at s[i]: 24 bytes or more, or
// 12 with a digit, so that prose ("the bearer of") stays.
func bearerAt(s string, i int) (start, end, next int) {
	a := i + len("bearer ")
	for a < len(s) && s[a] == ' ' {
		a++
	}
	e := span(s, a, cToken)
	for e > a && s[e-1] == '.' {
		e--
	}
	if n := e - a; wordStart(s, i) && (n >= 24 || n >= 12 && strings.ContainsAny(s[a:e], "0123456789")) {
		return a, e, e
	}
	return 0, 0, 0
}

// emailAt finds local@domain around the '@' at s[at], the domain ending in
// a name of two letters or more after a dot.
func emailAt(s string, at int) (start, end, next int) {
	a := at
	for a > 0 && class[s[a-1]]&cLocal != 0 && !escapeEnd(s, a) {
		a--
	}
	for a < at && s[a] == '.' {
		a++
	}
	if a == at || at+1 == len(s) || class[s[at+1]]&cAlnum == 0 {
		return 0, 0, 0
	}
	for p := span(s, at+1, cDomain); p > at+1; { // from the right, the first letters after "x."
		for p > at+1 && !isLetter(s[p-1]) {
			p--
		}
		q := p
		for q > at+1 && isLetter(s[q-1]) {
			q--
		}
		if p-q >= 2 && q-2 > at && s[q-1] == '.' && class[s[q-2]]&cAlnum != 0 {
			return a, p, p
		}
		p = q
	}
	return 0, 0, 0
}

// findCards finds payment card numbers: 13 to 19 digits, in groups joined
// by single spaces or dashes, of a known issuer range and Luhn-valid, not
// part of a longer number or word. A run of them spans 13 bytes or more, so
// looking at every 13th byte finds each run.
func findCards(s string, ms []match) []match {
	const stride = 13
	isSep := func(c byte) bool { return c == ' ' || c == '-' }
	for i := stride - 1; i < len(s); i += stride {
		if !isDigit(s[i]) {
			if !isSep(s[i]) || i+1 >= len(s) || !isDigit(s[i+1]) {
				continue
			}
			i++
		}
		a, b := i, i+1
		for a > 0 && !escapeEnd(s, a) && (isDigit(s[a-1]) || a > 1 && isSep(s[a-1]) && isDigit(s[a-2])) {
			a--
		}
		for b < len(s) && (isDigit(s[b]) || b+1 < len(s) && isSep(s[b]) && isDigit(s[b+1])) {
			b++
		}
		for a = escapeCover(s, a); a < b && !isDigit(s[a]); a++ {
		}
		ms = cardsIn(s, a, b, ms)
		i = b - 1
	}
	return ms
}

// cardsIn finds the card numbers among the digit groups of the run s[a:b].
func cardsIn(s string, a, b int, ms []match) []match {
	left := a == 0 || escapeEnd(s, a) || class[s[a-1]]&cWord == 0 && s[a-1] != '.' && s[a-1] != '+'
	right := b == len(s) || class[s[b]]&cWord == 0 &&
		!((s[b] == '.' || s[b] == ',') && b+1 < len(s) && isDigit(s[b+1]))
	for x := a; x < b; x++ { // x: a group's first digit
		n := 0
		for y := x; y < b && n <= 19; y++ {
			g := y
			for g < b && isDigit(s[g]) {
				g++
			}
			if n += g - y; n >= 13 && n <= 19 && (x > a || left) && (g < b || right) && isCard(s[x:g]) {
				ms = append(ms, match{x, g, RedactedCard})
				x = g
				break
			}
			y = g
		}
		for x < b && isDigit(s[x]) {
			x++
		}
	}
	return ms
}

// isCard reports whether the digits of d (separators aside) pass the Luhn
// checksum and start with a card issuer's range: Visa 4, Mastercard 51-55 and
// 2221-2720, Maestro 5 and 6, Discover and UnionPay 6, Amex 34 and 37, JCB
// 35, Diners 30, 36, 38, 39.
func isCard(d string) bool {
	sum, n, iin := 0, 0, 0
	for i := len(d) - 1; i >= 0; i-- {
		if v := int(d[i] - '0'); isDigit(d[i]) {
			if n++; n%2 == 0 {
				v = v*2 - 9*(v/5)
			}
			sum += v
		}
	}
	for i := 0; i < len(d) && iin < 1000; i++ {
		if isDigit(d[i]) {
			iin = iin*10 + int(d[i]-'0')
		}
	}
	p := iin / 100
	return sum%10 == 0 && d[0] != '0' && (40 <= p && p < 70 || p == 30 || 34 <= p && p < 40 || 2221 <= iin && iin <= 2720)
}

// escapeEnd reports whether s[i-1] ends a JSON escape (`\n`, `\u00e9`).
func escapeEnd(s string, i int) bool {
	if i < 2 || s[i-1] < utf8.RuneSelf && s[i-2] != '\\' && (i < 6 || s[i-6] != '\\') {
		return false // the quick answer: no backslash where an escape would start
	}
	return escapeCover(s, i-1) == i
}

// escapeCover returns the end of the JSON escape s[a] is part of after its
// backslash, or a when it is in none.
func escapeCover(s string, a int) int {
	for p := a - 1; p >= 0 && p >= a-5; p-- {
		if s[p] == '\\' {
			if oddRun(s, p) {
				return max(a, p+escLen(s, p))
			}
			return a
		}
	}
	return a
}

// escLen returns the length of the escape starting with the backslash s[i].
func escLen(s string, i int) int {
	if i+6 <= len(s) && s[i+1] == 'u' && isHex4(s[i+2:i+6]) {
		return 6
	}
	_, n := utf8.DecodeRuneInString(s[i+1:]) // in text, a whole rune: "\é"
	return 1 + n
}

// oddRun reports whether the backslashes ending at s[p] are odd in number,
// so that s[p] starts an escape.
func oddRun(s string, p int) bool { return (p+1-len(strings.TrimRight(s[:p+1], `\`)))%2 == 1 }

func isHex4(h string) bool { return len(h) == 4 && strings.Trim(h, "0123456789abcdefABCDEF") == "" }

// apply replaces the matches ms of s, merged where they overlap (the first
// kind named wins), and JSON-aware when s is a JSON document.
func apply(s string, ms []match) string {
	slices.SortStableFunc(ms, func(a, b match) int { return cmp.Compare(a.start, b.start) })
	n := 0
	for _, m := range ms {
		if n > 0 && m.start < ms[n-1].end {
			ms[n-1].end = max(ms[n-1].end, m.end)
			continue
		}
		ms[n] = m
		n++
	}
	e := editor{s: s}
	if t := strings.TrimLeft(s, " \t\r\n"); t != "" && strings.IndexByte(`{["-0123456789tfn`, t[0]) >= 0 &&
		json.Valid([]byte(s)) {
		e.json(ms[:n])
	} else {
		for _, m := range ms[:n] {
			e.text(m.start, m.end, m.marker)
		}
	}
	if e.b.Cap() == 0 {
		return s
	}
	e.b.WriteString(s[e.done:])
	return e.b.String()
}

// editor writes s with replacements, in order.
type editor struct {
	s    string
	b    strings.Builder
	done int // s[:done] is written
}

func (e *editor) put(a, b int, marker string, quote bool) {
	if e.b.Cap() == 0 {
		e.b.Grow(len(e.s) + 64)
	}
	if quote {
		marker = `"` + marker + `"`
	}
	e.b.WriteString(e.s[e.done:a])
	e.b.WriteString(marker)
	e.done = b
}

// text replaces s[a:b] but its quotes, backslashes and escapes, each run
// between them by one marker.
func (e *editor) text(a, b int, marker string) {
	s := e.s
	from := escapeCover(s, max(a, e.done))
	for i := from; i < b; {
		if s[i] != '"' && s[i] != '\\' {
			i++
			continue
		}
		if from < i {
			e.put(from, i, marker, false)
		}
		if i++; s[i-1] == '\\' {
			i += escLen(s, i-1) - 1
		}
		from = i
	}
	if from < b {
		e.put(from, b, marker, false)
	}
}

// json replaces the matches ms in the valid JSON document s: inside strings
// as text does; a number or literal a match touches becomes a quoted marker.
func (e *editor) json(ms []match) {
	s := e.s
	for i, m := 0, 0; i < len(s) && m < len(ms); {
		if strings.IndexByte(" \t\n\r{}[],:", s[i]) >= 0 {
			i++
			continue
		}
		j := i + 1
		if s[i] == '"' {
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			j = min(j+1, len(s))
		} else {
			for j < len(s) && strings.IndexByte(" \t\n\r{}[],:", s[j]) < 0 {
				j++
			}
		}
		for m < len(ms) && ms[m].end <= i {
			m++
		}
		for k := m; k < len(ms) && ms[k].start < j; k++ {
			if s[i] != '"' {
				e.put(i, j, ms[k].marker, true)
				break
			}
			e.text(max(ms[k].start, i+1), min(ms[k].end, j-1), ms[k].marker)
		}
		i = j
	}
}
