package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkSchema reports how v (decoded by encoding/json) fails schema s, the
// subset of JSON Schema the simulator generates for; root resolves $ref.
func checkSchema(root, s any, v any) error {
	m, ok := s.(map[string]any)
	if !ok {
		return nil
	}
	if ref, ok := m["$ref"].(string); ok {
		t := root
		for _, seg := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
			t = t.(map[string]any)[seg]
		}
		return checkSchema(root, t, v)
	}
	if c, ok := m["const"]; ok {
		if !reflect.DeepEqual(c, v) {
			return fmt.Errorf("%v is not const %v", v, c)
		}
		return nil
	}
	if e, ok := m["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || reflect.DeepEqual(x, v)
		}
		if !found {
			return fmt.Errorf("%v not in enum %v", v, e)
		}
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if alts, ok := m[k].([]any); ok {
			var errs []string
			for _, a := range alts {
				if err := checkSchema(root, a, v); err == nil {
					return nil
				} else {
					errs = append(errs, err.Error())
				}
			}
			return fmt.Errorf("%s: %v", k, errs)
		}
	}
	if err := checkType(m["type"], v); err != nil {
		return err
	}
	switch x := v.(type) {
	case map[string]any:
		return checkObject(root, m, x)
	case []any:
		if n, ok := m["minItems"].(float64); ok && float64(len(x)) < n {
			return fmt.Errorf("%d items, minItems %v", len(x), n)
		}
		for _, it := range x {
			if err := checkSchema(root, m["items"], it); err != nil {
				return fmt.Errorf("item: %w", err)
			}
		}
	case string:
		return checkString(m, x)
	case float64:
		return checkNumber(m, x)
	}
	return nil
}

func checkType(t any, v any) error {
	var types []any
	switch t := t.(type) {
	case nil:
		return nil
	case string:
		types = []any{t}
	case []any:
		types = t
	}
	for _, typ := range types {
		switch x := v.(type) {
		case map[string]any:
			if typ == "object" {
				return nil
			}
		case []any:
			if typ == "array" {
				return nil
			}
		case string:
			if typ == "string" {
				return nil
			}
		case bool:
			if typ == "boolean" {
				return nil
			}
		case nil:
			if typ == "null" {
				return nil
			}
		case float64:
			if typ == "number" || typ == "integer" && x == math.Trunc(x) {
				return nil
			}
		}
	}
	return fmt.Errorf("%#v is not of type %v", v, t)
}

func checkObject(root any, m, x map[string]any) error {
	props, _ := m["properties"].(map[string]any)
	req, _ := m["required"].([]any)
	for _, r := range req {
		if _, ok := x[r.(string)]; !ok {
			return fmt.Errorf("required %q missing from %v", r, x)
		}
	}
	if len(req) == 0 && props != nil && len(x) != len(props) {
		return fmt.Errorf("without required, want all of %d properties, got %v", len(props), x)
	}
	for k, val := range x {
		if err := checkSchema(root, props[k], val); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func checkString(m map[string]any, x string) error {
	if n, ok := m["minLength"].(float64); ok && float64(len(x)) < n {
		return fmt.Errorf("%q shorter than %v", x, n)
	}
	if n, ok := m["maxLength"].(float64); ok && float64(len(x)) > n {
		return fmt.Errorf("%q longer than %v", x, n)
	}
	layouts := map[string]string{"date-time": time.RFC3339, "date": time.DateOnly}
	if l, ok := layouts[fmt.Sprint(m["format"])]; ok {
		if _, err := time.Parse(l, x); err != nil {
			return err
		}
	}
	if m["format"] == "email" && !strings.Contains(x, "@") {
		return fmt.Errorf("%q is no email", x)
	}
	return nil
}

func checkNumber(m map[string]any, x float64) error {
	if lo, ok := m["minimum"].(float64); ok && (x < lo || m["exclusiveMinimum"] == true && x <= lo) {
		return fmt.Errorf("%v below %v", x, lo)
	}
	if hi, ok := m["maximum"].(float64); ok && (x > hi || m["exclusiveMaximum"] == true && x >= hi) {
		return fmt.Errorf("%v above %v", x, hi)
	}
	if lo, ok := m["exclusiveMinimum"].(float64); ok && x <= lo {
		return fmt.Errorf("%v not above %v", x, lo)
	}
	if hi, ok := m["exclusiveMaximum"].(float64); ok && x >= hi {
		return fmt.Errorf("%v not below %v", x, hi)
	}
	if d, ok := m["multipleOf"].(float64); ok && math.Mod(x, d) != 0 {
		return fmt.Errorf("%v not a multiple of %v", x, d)
	}
	return nil
}

func TestValueGen(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, schema, want string }{
		{"scalars", `{"type":"object","properties":{"s":{"type":"string"},"i":{"type":"integer"},"n":{"type":"number"},"b":{"type":"boolean"},"z":{"type":"null"}},"required":["s","i","n","b","z"]}`, ""},
		{"enum and const", `{"type":"object","properties":{"u":{"type":"string","enum":["celsius","fahrenheit"]},"c":{"const":{"k":[1,"x"]}}},"required":["u","c"]}`, `{"u":"celsius","c":{"k":[1,"x"]}}`},
		{"required only, schema order", `{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"boolean"},"c":{"type":"boolean"}},"required":["c","a"]}`, `{"a":true,"c":true}`},
		{"all when none required", `{"type":"object","properties":{"x":{"type":"boolean"},"y":{"type":"array"},"z":{"type":"object"}}}`, `{"x":true,"y":[],"z":{}}`},
		{"nested", `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"array","minItems":2,"items":{"type":"object","properties":{"c":{"type":"integer","minimum":10,"maximum":12}},"required":["c"]}}},"required":["b"]}},"required":["a"],"additionalProperties":false}`, ""},
		{"refs", `{"type":"object","properties":{"d":{"$ref":"#/$defs/D"},"e":{"$ref":"#/definitions/E"}},"required":["d","e"],"$defs":{"D":{"type":"object","properties":{"when":{"type":"string","format":"date-time"}},"required":["when"]}},"definitions":{"E":{"type":"string","enum":["only"]}}}`, ""},
		{"nullable", `{"type":"object","properties":{"a":{"type":["null","string"]},"b":{"anyOf":[{"type":"null"},{"type":"integer"}]}},"required":["a","b"]}`, ""},
		{"bounds", `{"type":"object","properties":{"a":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1},"b":{"type":"integer","minimum":7,"multipleOf":5},"c":{"type":"integer","maximum":-3},"d":{"type":"number","minimum":0.25,"maximum":0.5},"e":{"type":"integer","minimum":100,"exclusiveMinimum":true}},"required":["a","b","c","d","e"]}`, ""},
		{"strings", `{"type":"object","properties":{"long":{"type":"string","minLength":30},"short":{"type":"string","maxLength":2},"mail":{"type":"string","format":"email"},"day":{"type":"string","format":"date"}},"required":["long","short","mail","day"]}`, ""},
		{"untyped properties", `{"properties":{"a":{"items":{"type":"string"},"minItems":1}},"required":["a"]}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := parseNode([]byte(c.schema))
			if err != nil {
				t.Fatal(err)
			}
			got := newValueGen(n, 42).arguments(n)
			again := newValueGen(n, 42).arguments(n)
			if string(got) != string(again) {
				t.Fatalf("not deterministic: %s %s", got, again)
			}
			if c.want != "" && string(got) != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			var schema, v any
			if err := json.Unmarshal([]byte(c.schema), &schema); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			if err := checkSchema(schema, schema, v); err != nil {
				t.Errorf("%s does not satisfy the schema: %v", got, err)
			}
		})
	}
}

// TestValueGenBounded checks that recursive and huge schemas give small,
// valid JSON.
func TestValueGenBounded(t *testing.T) {
	t.Parallel()
	wide := `{"type":"object","properties":{` + strings.Repeat(`"p":{"type":"array","minItems":100,"items":{"$ref":"#"}},`, 3) + `"q":{"$ref":"#"}},"required":["q","p"]}`
	for _, schema := range []string{
		`{"type":"object","properties":{"child":{"$ref":"#"}},"required":["child"]}`,
		`{"$ref":"#"}`,
		`{"type":"object","properties":{"a":{"$ref":"#/nowhere/x"},"b":{"$ref":"http://x"},"c":{"$ref":"#/properties/a/0"}},"required":["a","b","c"]}`,
		wide,
		`{"type":"object","properties":{"a":{"type":"array","minItems":1e300,"items":{"type":"integer","minimum":1e300,"multipleOf":1e-300}}},"required":["a"]}`,
		`{"type":"object","properties":{"a":{"type":7,"enum":[],"anyOf":{},"required":"x","properties":[]}}}`,
	} {
		n, err := parseNode([]byte(schema))
		if err != nil {
			t.Fatal(err)
		}
		got := newValueGen(n, 1).arguments(n)
		if !json.Valid(got) || len(got) > 64<<10 {
			t.Errorf("%s: %d bytes, valid %v: %.200s", schema, len(got), json.Valid(got), got)
		}
	}
}

func TestSplitPieces(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", " ", `{"answer":"The model, said: hi."}`, "x  y", "日本 語!", `{"a":[1,2.5,true]}`, "  lead", "trail  "} {
		pieces := splitPieces(s)
		if got := strings.Join(pieces, ""); got != s {
			t.Errorf("%q split to %q", s, pieces)
		}
		for _, p := range pieces {
			if p == "" {
				t.Errorf("%q: empty piece in %q", s, pieces)
			}
		}
	}
	if got := splitPieces(`{"city":"Paris and"}`); strings.Join(got, "|") != `{"|city|":"|Paris| and|"}` {
		t.Errorf("pieces %q", got)
	}
}
