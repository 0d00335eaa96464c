package pricing

import "strings"

// Lookup returns the price of model: an exact entry, else the entry of its
// base model. Names are matched case-insensitively, and a name that is not
// listed is retried as
//   - "provider/model" (openai/gpt-5-mini, anthropic/claude-sonnet-4-5,
//     models/gemini-2.5-flash) without its prefix;
//   - its base without a version suffix: a date (gpt-4o-2024-08-06,
//     claude-3-5-haiku-20241022, gpt-4-0613), Gemini's -001 revision, or
//     Vertex's @20250929;
//   - a fine-tune ft:BASE:org::id as the ft:BASE entry (BASE also without its
//     date), and never as the un-tuned model.
//
// An exact entry always wins, so a dated snapshot priced differently from
// its alias is listed and found as itself. Lookup allocates nothing for a
// lower-case name other than a fine-tune's.
func (t *Table) Lookup(model string) (*Price, bool) {
	if t == nil {
		return nil, false
	}
	p := t.lookup(strings.ToLower(strings.TrimSpace(model)))
	return p, p != nil
}

// LookupProvider is Lookup for a call served by provider (its
// gen_ai.provider.name): an entry listed as "provider/model" wins over the
// plain model. The embedded table lists plain models; overrides may list
// provider-specific prices (say "azure.ai.openai/gpt-4o").
func (t *Table) LookupProvider(provider, model string) (*Price, bool) {
	if t == nil {
		return nil, false
	}
	m := strings.ToLower(strings.TrimSpace(model))
	if provider != "" && t.slashKeys && m != "" {
		if p := t.prices[strings.ToLower(provider)+"/"+m]; p != nil {
			return p, true
		}
	}
	p := t.lookup(m)
	return p, p != nil
}

// maxSteps bounds how many names one look-up tries.
const maxSteps = 8

func (t *Table) lookup(m string) *Price {
	for range maxSteps {
		if m == "" {
			return nil
		}
		if p := t.prices[m]; p != nil {
			return p
		}
		if strings.HasPrefix(m, "ft:") {
			return t.fineTune(m)
		}
		if i := strings.LastIndexByte(m, '/'); i >= 0 {
			m = m[i+1:]
			continue
		}
		if s, ok := stripVersion(m); ok {
			m = s
			continue
		}
		return nil
	}
	return nil
}

// fineTune resolves ft:BASE[:org:name:id] to the ft:BASE entry, BASE
// stripped of its version suffixes one at a time.
func (t *Table) fineTune(m string) *Price {
	base := m[len("ft:"):]
	if i := strings.IndexByte(base, ':'); i >= 0 {
		base = base[:i]
	}
	for range maxSteps {
		if p := t.prices["ft:"+base]; p != nil { // allocates only for fine-tunes
			return p
		}
		s, ok := stripVersion(base)
		if !ok {
			return nil
		}
		base = s
	}
	return nil
}

// stripVersion removes one version suffix from model: "@…" (Vertex),
// "-YYYY-MM-DD", "-YYYYMMDD", "-MM-YYYY", "-MMDD" or "-NNN" (Gemini's -001).
// It reports whether it removed one.
func stripVersion(m string) (string, bool) {
	if i := strings.LastIndexByte(m, '@'); i > 0 {
		return m[:i], true
	}
	n := len(m)
	// the digit run at the end, and what is before it
	d := n
	for d > 0 && isDigit(m[d-1]) {
		d--
	}
	switch run := n - d; {
	case run == 0 || d < 2 || m[d-1] != '-':
		return m, false
	case run == 3 || run == 4 || run == 8:
		// -001, -0613, -20241022; or the year of -2024-08-06 / -09-2025
		if run == 4 && d >= 5 && m[d-4] == '-' && isDigit(m[d-3]) && isDigit(m[d-2]) {
			// -MM-YYYY (gemini-2.5-flash-preview-09-2025)
			return m[:d-4], true
		}
		return m[:d-1], true
	case run == 2 && d >= 10 && m[d-4] == '-' && m[d-9] == '-' && allDigits(m[d-3:d-1]) && allDigits(m[d-8:d-4]):
		return m[:d-9], true // -YYYY-MM-DD
	}
	return m, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
