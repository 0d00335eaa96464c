package sim

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParameterTypeAndRange(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	chat := func(params string) string { return `{"model":"gpt-4o",` + msgs + `,` + params + `}` }
	cases := []struct {
		path, body           string
		param, code, message string
	}{
		{"/v1/chat/completions", chat(`"temperature":"hot"`), "temperature", "invalid_type",
			"Invalid type for 'temperature': expected a decimal, but got a string instead."},
		{"/v1/chat/completions", chat(`"temperature":3`), "temperature", "decimal_above_max_value",
			"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead."},
		{"/v1/chat/completions", chat(`"temperature":-0.5`), "temperature", "decimal_below_min_value",
			"Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -0.5 instead."},
		{"/v1/chat/completions", chat(`"top_p":1.5`), "top_p", "decimal_above_max_value",
			"Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead."},
		{"/v1/chat/completions", chat(`"top_p":true`), "top_p", "invalid_type",
			"Invalid type for 'top_p': expected a decimal, but got a boolean instead."},
		{"/v1/chat/completions", chat(`"max_tokens":"100"`), "max_tokens", "invalid_type",
			"Invalid type for 'max_tokens': expected an integer, but got a string instead."},
		{"/v1/chat/completions", chat(`"max_tokens":1.5`), "max_tokens", "invalid_type",
			"Invalid type for 'max_tokens': expected an integer, but got a decimal instead."},
		{"/v1/chat/completions", chat(`"max_tokens":-15`), "max_tokens", "integer_below_min_value",
			"Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got -15 instead."},
		{"/v1/chat/completions", chat(`"max_completion_tokens":[1]`), "max_completion_tokens", "invalid_type",
			"Invalid type for 'max_completion_tokens': expected an integer, but got an array instead."},
		{"/v1/chat/completions", chat(`"n":"2"`), "n", "invalid_type",
			"Invalid type for 'n': expected an integer, but got a string instead."},
		{"/v1/chat/completions", chat(`"n":0`), "n", "integer_below_min_value",
			"Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."},
		{"/v1/chat/completions", chat(`"n":129`), "n", "integer_above_max_value",
			"Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead."},
		{"/v1/chat/completions", chat(`"seed":"abc"`), "seed", "invalid_type",
			"Invalid type for 'seed': expected an integer, but got a string instead."},
		{"/v1/chat/completions", chat(`"presence_penalty":{}`), "presence_penalty", "invalid_type",
			"Invalid type for 'presence_penalty': expected a decimal, but got an object instead."},
		{"/v1/chat/completions", chat(`"frequency_penalty":-2.5`), "frequency_penalty", "decimal_below_min_value",
			"Invalid 'frequency_penalty': decimal below minimum value. Expected a value >= -2, but got -2.5 instead."},
		{"/v1/chat/completions", chat(`"stream":"yes"`), "stream", "invalid_type",
			"Invalid type for 'stream': expected a boolean, but got a string instead."},
		{"/v1/chat/completions", chat(`"stream":true,"stream_options":{"include_usage":1}`), "stream_options.include_usage", "invalid_type",
			"Invalid type for 'stream_options.include_usage': expected a boolean, but got an integer instead."},
		{"/v1/chat/completions", chat(`"stop":{"a":1}`), "stop", "invalid_type",
			"Invalid type for 'stop': expected one of a string or array of strings, but got an object instead."},
		{"/v1/chat/completions", chat(`"stop":["a",2]`), "stop[1]", "invalid_type",
			"Invalid type for 'stop[1]': expected a string, but got a number instead."},
		{"/v1/chat/completions", chat(`"stop":["a","b","c","d","e"]`), "stop", "array_above_max_length",
			"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead."},
		{"/v1/chat/completions", chat(`"temperature":1e999`), "temperature", "invalid_value",
			"Invalid value for 'temperature': 1e999 is out of range."},
		{"/v1/chat/completions", chat(`"seed":99999999999999999999`), "seed", "invalid_value",
			"Invalid value for 'seed': 99999999999999999999 is out of range."},
		{"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"x","temperature":2.5}`, "temperature", "decimal_above_max_value",
			"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead."},
		{"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"x","max_tokens":"7"}`, "max_tokens", "invalid_type",
			"Invalid type for 'max_tokens': expected an integer, but got a string instead."},
		{"/v1/responses", `{"model":"gpt-4.1","input":"x","temperature":"hot"}`, "temperature", "invalid_type",
			"Invalid type for 'temperature': expected a decimal, but got a string instead."},
		{"/v1/responses", `{"model":"gpt-4.1","input":"x","top_p":-1}`, "top_p", "decimal_below_min_value",
			"Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -1 instead."},
		{"/v1/responses", `{"model":"gpt-4.1","input":"x","max_output_tokens":"many"}`, "max_output_tokens", "invalid_type",
			"Invalid type for 'max_output_tokens': expected an integer, but got a string instead."},
	}
	for _, c := range cases {
		res, b := do(t, srv, "POST", c.path, c.body)
		want := `{"error":{"message":` + mustJSON(c.message) + `,"type":"invalid_request_error","param":` + mustJSON(c.param) +
			`,"code":` + mustJSON(c.code) + "}}\n"
		if res.StatusCode != 400 || string(b) != want {
			t.Errorf("%s %s:\n got %d %s\nwant 400 %s", c.path, c.body, res.StatusCode, b, want)
		}
	}
	// The exact body the API answers for a string temperature.
	_, b := do(t, srv, "POST", "/v1/chat/completions", chat(`"temperature":"hot"`))
	if want := `{"error":{"message":"Invalid type for 'temperature': expected a decimal, but got a string instead.","type":"invalid_request_error","param":"temperature","code":"invalid_type"}}`; strings.TrimSpace(string(b)) != want {
		t.Errorf("temperature \"hot\": %s", b)
	}
}

func TestParameterBoundsAccepted(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	for _, params := range []string{
		`"temperature":0,"top_p":1`,
		`"temperature":2,"top_p":0`,
		`"temperature":null,"top_p":null,"n":null,"stop":null,"seed":null`,
		`"n":1,"seed":-42,"presence_penalty":-2,"frequency_penalty":2`,
		`"stop":"\n"`,
		`"stop":["a","b","c","d"]`,
		`"stream":false,"max_tokens":1,"max_completion_tokens":5`,
	} {
		body := `{"model":"gpt-4o",` + msgs + `,` + params + `}`
		if res, b := do(t, srv, "POST", "/v1/chat/completions", body); res.StatusCode != 200 {
			t.Errorf("%s: %d %s", params, res.StatusCode, b)
		}
	}
	if res, b := do(t, srv, "POST", "/v1/responses", `{"model":"gpt-4.1","input":"x","temperature":1.3,"top_p":0.9}`); res.StatusCode != 200 {
		t.Errorf("responses: %d %s", res.StatusCode, b)
	}
}

func mustJSON(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSpace(b.String())
}
