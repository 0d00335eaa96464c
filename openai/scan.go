package openai

import (
	"encoding/binary"

	"github.com/tidwall/gjson"
)

// A member locates one member of a JSON object in the bytes it was read
// from: the key with its quotes is b[k0:k1], the value is b[v0:v1].
type member struct {
	k0, k1, v0, v1 int
	esc            bool // the key holds an escape sequence
}

// keyIs reports whether m's key, unescaped, is name (as gjson compares keys).
func (m *member) keyIs(b []byte, name string) bool {
	if !m.esc {
		return m.k1-m.k0-2 == len(name) && string(b[m.k0+1:m.k1-1]) == name
	}
	return gjson.Parse(str(b[m.k0:m.k1])).Str == name
}

// name returns m's key, unescaped. It may share b's memory.
func (m *member) name(b []byte) string {
	if !m.esc {
		return str(b[m.k0+1 : m.k1-1])
	}
	return gjson.Parse(str(b[m.k0:m.k1])).Str
}

// firstNamed returns the first of ms whose key is name, or nil.
func firstNamed(b []byte, ms []member, name string) *member {
	for i := range ms {
		if ms[i].keyIs(b, name) {
			return &ms[i]
		}
	}
	return nil
}

// find returns the value of the first member of ms whose key is name (as
// gjson's Get does), or nil.
func find(b []byte, ms []member, name string) []byte {
	for i := range ms {
		if ms[i].keyIs(b, name) {
			return b[ms[i].v0:ms[i].v1]
		}
	}
	return nil
}

// scanObject validates b as validJSON does (gjson.ValidBytes, nested at
// most MaxDepth deep when b is shallowSize bytes or more) and, when b is a
// JSON object, appends its top-level members to ms. ok is false when b is
// not valid JSON or not an object: the caller then takes gjson's way. It
// reads b once, whatever its size.
func scanObject(b []byte, ms []member) (_ []member, ok bool) {
	i := skipWS(b, 0)
	if i == len(b) || b[i] != '{' {
		return ms, false
	}
	room := len(b) // below shallowSize, nesting is not bounded (as validJSON)
	if len(b) >= shallowSize {
		room = MaxDepth - 1 // levels that may open inside this object
	}
	i = skipWS(b, i+1)
	if i == len(b) {
		return ms, false
	}
	if b[i] != '}' {
		for {
			if b[i] != '"' {
				return ms, false
			}
			m := member{k0: i}
			if i, m.esc, ok = validString(b, i+1); !ok {
				return ms, false
			}
			m.k1 = i
			if i = skipWS(b, i); i == len(b) || b[i] != ':' {
				return ms, false
			}
			if i = skipWS(b, i+1); i == len(b) {
				return ms, false
			}
			m.v0 = i
			if i, ok = validValue(b, i, room); !ok {
				return ms, false
			}
			m.v1 = i
			ms = append(ms, m)
			if i = skipWS(b, i); i == len(b) {
				return ms, false
			}
			if b[i] == '}' {
				break
			}
			if b[i] != ',' {
				return ms, false
			}
			if i = skipWS(b, i+1); i == len(b) {
				return ms, false
			}
		}
	}
	// b[i] is the closing brace; only white space may follow.
	return ms, skipWS(b, i+1) == len(b)
}

// Shallow reports whether b nests at most MaxDepth deep (strings aside), so
// that a recursive parser (gjson) stays bounded whatever b holds. The wire
// packages of other providers check bodies and events with it.
func Shallow(b []byte) bool { return shallow(b) }

// shallow is Shallow.
func shallow(b []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr:
			if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// validValue validates the JSON value starting at b[i] (not white space)
// and returns the index just past it. It follows gjson's validator; room is
// how many levels of objects and arrays may still open.
func validValue(b []byte, i, room int) (int, bool) {
	switch b[i] {
	case '{':
		if room == 0 {
			return i, false
		}
		return validObject(b, i+1, room-1)
	case '[':
		if room == 0 {
			return i, false
		}
		return validArray(b, i+1, room-1)
	case '"':
		i, _, ok := validString(b, i+1)
		return i, ok
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return validNumber(b, i)
	case 't':
		return validLiteral(b, i, "true")
	case 'f':
		return validLiteral(b, i, "false")
	case 'n':
		return validLiteral(b, i, "null")
	}
	return i, false
}

// validObject validates an object whose opening brace is just before b[i].
func validObject(b []byte, i, room int) (int, bool) {
	var ok bool
	if i = skipWS(b, i); i == len(b) {
		return i, false
	}
	if b[i] == '}' {
		return i + 1, true
	}
	for {
		if b[i] != '"' {
			return i, false
		}
		if i, _, ok = validString(b, i+1); !ok {
			return i, false
		}
		if i = skipWS(b, i); i == len(b) || b[i] != ':' {
			return i, false
		}
		if i = skipWS(b, i+1); i == len(b) {
			return i, false
		}
		if i, ok = validValue(b, i, room); !ok {
			return i, false
		}
		if i = skipWS(b, i); i == len(b) {
			return i, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return i, false
		}
		if i = skipWS(b, i+1); i == len(b) {
			return i, false
		}
	}
}

// validArray validates an array whose opening bracket is just before b[i].
func validArray(b []byte, i, room int) (int, bool) {
	var ok bool
	if i = skipWS(b, i); i == len(b) {
		return i, false
	}
	if b[i] == ']' {
		return i + 1, true
	}
	for {
		if i, ok = validValue(b, i, room); !ok {
			return i, false
		}
		if i = skipWS(b, i); i == len(b) {
			return i, false
		}
		if b[i] == ']' {
			return i + 1, true
		}
		if b[i] != ',' {
			return i, false
		}
		if i = skipWS(b, i+1); i == len(b) {
			return i, false
		}
	}
}

// validString validates a string whose opening quote is just before b[i]
// and returns the index past its closing quote and whether it holds an
// escape sequence.
func validString(b []byte, i int) (int, bool, bool) {
	esc := false
	for {
		i = plainRun(b, i)
		if i == len(b) {
			return i, esc, false
		}
		switch b[i] {
		case '"':
			return i + 1, esc, true
		case '\\':
			esc = true
			if i++; i == len(b) {
				return i, esc, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if i++; i >= len(b) || !isHex(b[i]) {
						return i, esc, false
					}
				}
			default:
				return i, esc, false
			}
			i++
		default: // a control character
			return i, esc, false
		}
	}
}

// plain marks the bytes that stand for themselves inside a JSON string.
var plain = func() (t [256]bool) {
	for c := ' '; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainRun returns the index of the first byte at or after b[i] that does
// not stand for itself inside a JSON string (a quote, a backslash or a
// control character), or len(b). It reads eight bytes at a time, so the
// long strings of a prompt cost little.
func plainRun(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		q, s := v^(ones*'"'), v^(ones*'\\')
		// A byte of v below 0x20, or a zero byte of q or s, sets its high bit
		// here (no false positives for the word as a whole).
		if ((v-ones*0x20)&^v|(q-ones)&^q|(s-ones)&^s)&highs != 0 {
			break
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// validNumber validates the number starting at b[i].
func validNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		if i++; i == len(b) || !isDigit(b[i]) {
			return i, false
		}
	}
	if b[i] == '0' {
		i++
	} else {
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		if i++; i == len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

func validLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return i, false
}

// The functions below walk JSON that has already been validated.

// members appends the members of the object that starts at obj[0] (valid
// JSON) to ms, and returns the index just past the object.
func members(obj []byte, ms []member) ([]member, int) {
	i := 1
	for {
		i = skipWS(obj, i)
		switch obj[i] {
		case '}':
			return ms, i + 1
		case ',':
			i++
			continue
		}
		m := member{k0: i}
		i, m.esc = stringEnd(obj, i+1)
		m.k1 = i
		i = skipWS(obj, i)   // at ':'
		i = skipWS(obj, i+1) // at the value
		m.v0 = i
		i = skipValue(obj, i)
		m.v1 = i
		ms = append(ms, m)
	}
}

// stringEnd returns the index past the closing quote of the valid string
// whose opening quote is just before b[i], and whether it holds an escape.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for {
		i = plainRun(b, i)
		if b[i] == '"' {
			return i + 1, esc
		}
		esc = true // a backslash: skip it and the byte it escapes
		i += 2
	}
}

// skipValue returns the index past the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i+1)
		return end
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i, _ = stringEnd(b, i+1)
				i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// stringValue returns the unescaped text of the JSON value v when it is a
// string, else "" (gjson's Result.Str). The result may share v's memory.
func stringValue(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' {
			return gjson.Parse(str(v)).Str
		}
	}
	return str(v[1 : len(v)-1])
}
