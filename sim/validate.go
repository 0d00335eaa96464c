package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Parameter validation in the style of OpenAI's API: a parameter of the
// wrong JSON type is answered 400 invalid_type ("Invalid type for
// 'temperature': expected a decimal, but got a string instead."), a number
// out of its range 400 with codes such as decimal_above_max_value
// ("Invalid 'temperature': decimal above maximum value. Expected a value
// <= 2, but got 3 instead."). The simulator ignores what these parameters
// ask for; it only refuses what the API would refuse.

// sampling is the sampling parameters of chat and text completion
// requests, decoded to be validated.
type sampling struct {
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	N                *int            `json:"n"`
	Seed             *int64          `json:"seed"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Stop             json.RawMessage `json:"stop"`
}

// Ranges the API enforces.
const (
	maxTemperature = 2
	maxPenalty     = 2
	maxN           = 128
	maxStop        = 4
)

// check validates the ranges of p and the type of stop.
func (p *sampling) check() *badRequest {
	if err := checkTemperature(p.Temperature, p.TopP); err != nil {
		return err
	}
	if err := decimalRange("presence_penalty", p.PresencePenalty, -maxPenalty, maxPenalty); err != nil {
		return err
	}
	if err := decimalRange("frequency_penalty", p.FrequencyPenalty, -maxPenalty, maxPenalty); err != nil {
		return err
	}
	if p.N != nil {
		if *p.N < 1 {
			return outOfRange("n", "integer below minimum value", ">=", "1", strconv.Itoa(*p.N), "integer_below_min_value")
		}
		if *p.N > maxN {
			return outOfRange("n", "integer above maximum value", "<=", strconv.Itoa(maxN), strconv.Itoa(*p.N), "integer_above_max_value")
		}
	}
	return checkStop(p.Stop)
}

// checkTemperature validates temperature (0 to 2) and top_p (0 to 1), the
// two parameters the Responses API shares with chat.
func checkTemperature(temperature, topP *float64) *badRequest {
	if err := decimalRange("temperature", temperature, 0, maxTemperature); err != nil {
		return err
	}
	return decimalRange("top_p", topP, 0, 1)
}

func decimalRange(param string, v *float64, lo, hi float64) *badRequest {
	switch {
	case v == nil:
		return nil
	case *v < lo:
		return outOfRange(param, "decimal below minimum value", ">=", formatNumber(lo), formatNumber(*v), "decimal_below_min_value")
	case *v > hi:
		return outOfRange(param, "decimal above maximum value", "<=", formatNumber(hi), formatNumber(*v), "decimal_above_max_value")
	}
	return nil
}

// outOfRange is OpenAI's range error: "Invalid 'n': integer below minimum
// value. Expected a value >= 1, but got 0 instead."
func outOfRange(param, what, op, bound, got, code string) *badRequest {
	return &badRequest{
		msg:   fmt.Sprintf("Invalid '%s': %s. Expected a value %s %s, but got %s instead.", param, what, op, bound, got),
		param: param, code: code,
	}
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// checkStop validates stop: absent, a string, or an array of at most four
// strings.
func checkStop(raw json.RawMessage) *badRequest {
	switch firstByte(raw) {
	case 0, 'n', '"':
		return nil
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return invalidType("stop", "one of a string or array of strings", raw)
		}
		for i, it := range items {
			if firstByte(it) != '"' {
				return invalidType("stop["+strconv.Itoa(i)+"]", "a string", it)
			}
		}
		if len(items) > maxStop {
			return &badRequest{
				msg: fmt.Sprintf("Invalid 'stop': array too long. Expected an array with maximum length %d, but got an array with length %d instead.",
					maxStop, len(items)),
				param: "stop", code: "array_above_max_length",
			}
		}
		return nil
	}
	return invalidType("stop", "one of a string or array of strings", raw)
}

// typeError turns a json.UnmarshalTypeError of a request body into
// OpenAI's invalid_type answer naming the parameter; ok is false for other
// errors (malformed JSON, a body that is not an object).
func typeError(err error) (*badRequest, bool) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" || te.Type == nil {
		return nil, false
	}
	// Fields of the embedded sampling struct are reported under its name.
	param := strings.TrimPrefix(te.Field, "sampling.")
	want, got := expectedKind(te.Type), gotKind(te.Value)
	if num, ok := strings.CutPrefix(te.Value, "number "); ok && (want == got || want == "a decimal") {
		// A number of the right kind that overflows its type (1e999).
		return invalidValue(param, num+" is out of range."), true
	}
	return &badRequest{
		msg:   fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, got),
		param: param, code: codeInvalidType,
	}, true
}

// expectedKind names a Go field type as OpenAI's messages name the JSON
// type they expect.
func expectedKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a decimal"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// gotKind names the JSON value encoding/json reports ("string", "number",
// "number 1.5", "bool", "array", "object").
func gotKind(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "bool":
		return "a boolean"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	case strings.HasPrefix(v, "number"):
		if strings.ContainsAny(strings.TrimPrefix(v, "number"), ".eE") {
			return "a decimal"
		}
		return "an integer"
	}
	return v
}
