package sweep

import (
	"encoding/json"
	"regexp"
	"strings"
)

// Scorer says how an answer is compared with the item's expected text.
type Scorer struct {
	// Type is exact, contains, regex or json_valid (default exact).
	Type string `yaml:"type"`
	// Pattern is the regex of the regex scorer; when empty, each item's
	// expected text is the pattern.
	Pattern string `yaml:"pattern"`
	// IgnoreCase compares without regard to case.
	IgnoreCase bool `yaml:"ignore_case"`
}

// ScorerTypes are the values Scorer.Type accepts.
var ScorerTypes = []string{"exact", "contains", "regex", "json_valid"}

// score returns 1 when answer passes the scorer for the expected text, 0
// when it does not, and false when the item cannot be scored (no expected
// text for a scorer that needs one).
func (sc Scorer) score(answer string, expected *string) (float64, bool) {
	if sc.Type == "json_valid" {
		return b2f(json.Valid([]byte(strings.TrimSpace(answer)))), true
	}
	if sc.Type == "regex" && sc.Pattern != "" {
		return b2f(sc.compile(sc.Pattern).MatchString(answer)), true
	}
	if expected == nil {
		return 0, false
	}
	want := *expected
	switch sc.Type {
	case "exact":
		a, w := strings.TrimSpace(answer), strings.TrimSpace(want)
		if sc.IgnoreCase {
			return b2f(strings.EqualFold(a, w)), true
		}
		return b2f(a == w), true
	case "contains":
		if sc.IgnoreCase {
			return b2f(strings.Contains(strings.ToLower(answer), strings.ToLower(want))), true
		}
		return b2f(strings.Contains(answer, want)), true
	case "regex":
		re := sc.compile(want)
		if re == nil {
			return 0, true // an expected pattern that does not compile matches nothing
		}
		return b2f(re.MatchString(answer)), true
	}
	return 0, false
}

// compile compiles a scorer pattern, honouring IgnoreCase; nil when the
// pattern is invalid.
func (sc Scorer) compile(p string) *regexp.Regexp {
	if sc.IgnoreCase {
		p = "(?i)" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil
	}
	return re
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
