package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// jnode is one parsed JSON value that keeps the order of object keys, so
// that values generated from a schema list properties in the schema's order
// and the same schema always gives the same bytes.
type jnode struct {
	kind byte     // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string // object keys, parallel to vals
	vals []*jnode // object values or array items
	str  string   // string value, or a number's literal
	b    bool
}

// parseNode parses one JSON value. It fails on anything but exactly one
// value.
func parseNode(raw []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := decodeNode(dec)
	if err != nil {
		return nil, fmt.Errorf("parse json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse json: trailing data")
	}
	return n, nil
}

func decodeNode(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return decodeObject(dec)
		}
		if v == '[' {
			return decodeArray(dec)
		}
		return nil, fmt.Errorf("unexpected %q", v)
	case string:
		return &jnode{kind: 's', str: v}, nil
	case json.Number:
		return &jnode{kind: 'n', str: v.String()}, nil
	case bool:
		return &jnode{kind: 'b', b: v}, nil
	default:
		return &jnode{kind: 'z'}, nil
	}
}

func decodeObject(dec *json.Decoder) (*jnode, error) {
	n := &jnode{kind: 'o'}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		v, err := decodeNode(dec)
		if err != nil {
			return nil, err
		}
		n.keys, n.vals = append(n.keys, key), append(n.vals, v)
	}
	_, err := dec.Token() // '}'
	return n, err
}

func decodeArray(dec *json.Decoder) (*jnode, error) {
	n := &jnode{kind: 'a'}
	for dec.More() {
		v, err := decodeNode(dec)
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
	}
	_, err := dec.Token() // ']'
	return n, err
}

// get returns the value of key in an object node (the last one when the key
// repeats, as encoding/json does), or nil.
func (n *jnode) get(key string) *jnode {
	if n == nil || n.kind != 'o' {
		return nil
	}
	for i := len(n.keys) - 1; i >= 0; i-- {
		if n.keys[i] == key {
			return n.vals[i]
		}
	}
	return nil
}

// text returns the value of a string node, or "".
func (n *jnode) text() string {
	if n == nil || n.kind != 's' {
		return ""
	}
	return n.str
}

// float returns the value of a number node.
func (n *jnode) float() (float64, bool) {
	if n == nil || n.kind != 'n' {
		return 0, false
	}
	f, err := strconv.ParseFloat(n.str, 64)
	return f, err == nil && !math.IsInf(f, 0)
}

// appendNode appends n as compact JSON.
func appendNode(b []byte, n *jnode) []byte {
	switch n.kind {
	case 'o':
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendNode(b, n.vals[i])
		}
		return append(b, '}')
	case 'a':
		b = append(b, '[')
		for i, v := range n.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNode(b, v)
		}
		return append(b, ']')
	case 's':
		return appendString(b, n.str)
	case 'n':
		return append(b, n.str...)
	case 'b':
		return strconv.AppendBool(b, n.b)
	default:
		return append(b, "null"...)
	}
}

// Bounds of a generated value: nesting below maxSchemaDepth gets empty
// objects and arrays, and generation stops after maxSchemaValues values, so
// a hostile schema cannot make an answer large.
const (
	maxSchemaDepth  = 10
	maxSchemaValues = 1000
	maxArrayItems   = 4
)

// valueGen writes deterministic JSON values that satisfy a JSON schema:
// for an object its required properties (all of them when none are
// required), in the schema's order; a string is a word of the simulator's
// vocabulary (or fits its format), a number a small one within its bounds,
// a boolean true, an array its minItems items (at most maxArrayItems), an
// enum its first value, a const its value. $ref into the root schema,
// anyOf, oneOf and allOf (the first alternative) are followed.
type valueGen struct {
	root   *jnode
	r      rng
	budget int
}

func newValueGen(root *jnode, seed uint64) *valueGen {
	return &valueGen{root: root, r: rng{s: seed}, budget: maxSchemaValues}
}

// value appends a value satisfying schema s at nesting depth.
func (g *valueGen) value(b []byte, s *jnode, depth int) []byte {
	g.budget--
	if s == nil || s.kind != 'o' {
		return g.str(b, nil)
	}
	if ref := s.get("$ref").text(); ref != "" && depth < maxSchemaDepth {
		if t := g.resolve(ref); t != nil {
			return g.value(b, t, depth+1)
		}
	}
	if c := s.get("const"); c != nil {
		return appendNode(b, c)
	}
	if e := s.get("enum"); e != nil && e.kind == 'a' && len(e.vals) > 0 {
		return appendNode(b, e.vals[0])
	}
	if alt := firstAlternative(s); alt != nil && depth < maxSchemaDepth {
		return g.value(b, alt, depth+1)
	}
	switch schemaType(s) {
	case "object":
		return g.object(b, s, depth)
	case "array":
		return g.array(b, s, depth)
	case "integer":
		return g.number(b, s, true)
	case "number":
		return g.number(b, s, false)
	case "boolean":
		return append(b, "true"...)
	case "null":
		return append(b, "null"...)
	default:
		return g.str(b, s)
	}
}

// firstAlternative returns the first alternative of anyOf, oneOf or allOf
// that is not {"type":"null"} (or the null one when it is the only one).
func firstAlternative(s *jnode) *jnode {
	for _, k := range [...]string{"anyOf", "oneOf", "allOf"} {
		alts := s.get(k)
		if alts == nil || alts.kind != 'a' || len(alts.vals) == 0 {
			continue
		}
		for _, a := range alts.vals {
			if schemaType(a) != "null" {
				return a
			}
		}
		return alts.vals[0]
	}
	return nil
}

// schemaType returns the type a schema asks for: its "type" (the first one
// other than "null" of a list), else object when it has properties, array
// when it has items, else "".
func schemaType(s *jnode) string {
	t := s.get("type")
	switch {
	case t == nil:
	case t.kind == 's':
		return t.str
	case t.kind == 'a':
		first := ""
		for _, v := range t.vals {
			if v.text() != "null" && v.text() != "" {
				return v.text()
			}
			if first == "" {
				first = v.text()
			}
		}
		return first
	}
	if s.get("properties") != nil {
		return "object"
	}
	if s.get("items") != nil {
		return "array"
	}
	return ""
}

// resolve follows a local $ref ("#", "#/$defs/x", "#/definitions/x", any
// JSON pointer into the root schema); nil when it leads nowhere.
func (g *valueGen) resolve(ref string) *jnode {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	n := g.root
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if seg == "" {
			continue
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		switch {
		case n == nil:
			return nil
		case n.kind == 'o':
			n = n.get(seg)
		case n.kind == 'a':
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n.vals) {
				return nil
			}
			n = n.vals[i]
		default:
			return nil
		}
	}
	return n
}

// object appends the required properties of s (all when none are
// required), in the order of "properties".
func (g *valueGen) object(b []byte, s *jnode, depth int) []byte {
	b = append(b, '{')
	if depth >= maxSchemaDepth || g.budget <= 0 {
		return append(b, '}')
	}
	props := s.get("properties")
	for i, name := range propertyNames(s, props) {
		if g.budget <= 0 {
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		b = g.value(b, props.get(name), depth+1)
	}
	return append(b, '}')
}

// propertyNames returns the names an object value holds: the properties
// listed in "required", in the order of "properties" first and then any
// others in the order of "required"; or every property when none are
// required.
func propertyNames(s, props *jnode) []string {
	req := s.get("required")
	var required []string
	if req != nil && req.kind == 'a' {
		seen := make(map[string]bool, len(req.vals))
		for _, v := range req.vals {
			if v.kind == 's' && !seen[v.str] {
				seen[v.str] = true
				required = append(required, v.str)
			}
		}
	}
	var all []string
	if props != nil && props.kind == 'o' {
		all = dedupe(props.keys)
	}
	if len(required) == 0 {
		return all
	}
	want := make(map[string]bool, len(required))
	for _, r := range required {
		want[r] = true
	}
	out := make([]string, 0, len(required))
	for _, k := range all {
		if want[k] {
			out = append(out, k)
			delete(want, k)
		}
	}
	for _, r := range required {
		if want[r] {
			out = append(out, r)
		}
	}
	return out
}

func dedupe(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// array appends minItems items (at most maxArrayItems) of the items schema.
func (g *valueGen) array(b []byte, s *jnode, depth int) []byte {
	b = append(b, '[')
	n := 0
	if f, ok := s.get("minItems").float(); ok && f > 0 {
		n = int(min(f, maxArrayItems))
	}
	if depth >= maxSchemaDepth {
		n = 0
	}
	items := s.get("items")
	for i := 0; i < n && g.budget > 0; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.value(b, items, depth+1)
	}
	return append(b, ']')
}

// number appends a small number (1 to 9) moved into the schema's bounds and
// onto its multipleOf; when the bounds are too narrow for that, their
// midpoint.
func (g *valueGen) number(b []byte, s *jnode, integer bool) []byte {
	v := float64(1 + g.r.intn(9))
	step := 1.0
	if !integer {
		step = 0.5
	}
	lo, loEx, hasLo := bound(s, "minimum", "exclusiveMinimum")
	hi, hiEx, hasHi := bound(s, "maximum", "exclusiveMaximum")
	below := func(v float64) bool { return hasLo && (v < lo || loEx && v <= lo) }
	above := func(v float64) bool { return hasHi && (v > hi || hiEx && v >= hi) }
	if below(v) {
		v = lo
		if integer {
			v = math.Ceil(lo)
		}
		if loEx && v <= lo {
			v += step
		}
	}
	if above(v) {
		v = hi
		if integer {
			v = math.Floor(hi)
		}
		if hiEx && v >= hi {
			v -= step
		}
	}
	if below(v) {
		v = (lo + hi) / 2
	}
	if m, ok := s.get("multipleOf").float(); ok && m > 0 && m < 1e15 {
		if w := math.Ceil(v/m) * m; !above(w) {
			v = w
		}
	}
	v = max(-1e15, min(v, 1e15))
	if integer {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return appendFloat(b, v)
}

// bound reads a lower or upper bound: the inclusive keyword, or the
// exclusive one as a number (JSON Schema 2020-12) or as a boolean next to
// the inclusive one (draft 4).
func bound(s *jnode, incl, excl string) (v float64, exclusive, ok bool) {
	if e := s.get(excl); e != nil {
		if f, ok := e.float(); ok {
			return f, true, true
		}
		exclusive = e.kind == 'b' && e.b
	}
	v, ok = s.get(incl).float()
	return v, exclusive && ok, ok
}

// str appends a word of the vocabulary, shaped by the schema's format,
// minLength and maxLength.
func (g *valueGen) str(b []byte, s *jnode) []byte {
	w := words[g.r.intn(len(words))]
	switch s.get("format").text() {
	case "date-time":
		w = "2023-11-14T22:13:20Z"
	case "date":
		w = "2023-11-14"
	case "time":
		w = "22:13:20Z"
	case "email":
		w += "@example.com"
	case "uri", "url":
		w = "https://example.com/" + w
	case "hostname":
		w += ".example.com"
	case "ipv4":
		w = "192.0.2.1"
	case "uuid":
		w = g.uuid()
	}
	if f, ok := s.get("minLength").float(); ok && f > float64(len(w)) {
		n := int(min(f, 4096))
		w = strings.Repeat(w, n/len(w)+1)[:n]
	}
	if f, ok := s.get("maxLength").float(); ok && f >= 0 && f < float64(len(w)) {
		w = w[:int(f)]
	}
	return appendString(b, w)
}

// uuid returns a version 4 UUID drawn from the generator.
func (g *valueGen) uuid() string {
	var u [16]byte
	for i := range u {
		u[i] = byte(g.r.next())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
