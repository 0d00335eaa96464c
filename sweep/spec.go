// Package sweep runs a prompt set over a grid of model configurations,
// scores every answer, and compares the configurations on quality, cost
// and latency. Each configuration is one named run: its calls are recorded
// like any other (store, metrics, MLflow) and tagged so an interrupted
// sweep resumes where it stopped.
package sweep

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Spec describes a sweep. The zero value of a field means its default.
type Spec struct {
	// Name names the sweep; run names and tags start with it.
	Name string `yaml:"name"`
	// Experiment is the experiment of every run (default "llmscope").
	Experiment string `yaml:"experiment"`
	// Dataset is a JSONL file of items, relative to the spec's directory.
	Dataset string `yaml:"dataset"`
	Grid    Grid   `yaml:"grid"`
	// Repeats sends every item this many times per configuration (default 1).
	Repeats int `yaml:"repeats"`
	// Concurrency bounds the requests in flight (default 4).
	Concurrency int       `yaml:"concurrency"`
	RateLimit   RateLimit `yaml:"rate_limit"`
	Scorer      Scorer    `yaml:"scorer"`
	// Stream asks for streamed answers, so time to first token is measured.
	Stream bool `yaml:"stream"`
	// Retries is how often a request is tried again after a 429, a 408, a
	// 5xx or a network error (nil: 4; 0: never).
	Retries *int `yaml:"retries"`
	// Timeout bounds one request, its answer included (default 5m).
	Timeout string `yaml:"timeout"`
	// SortBy orders the comparison table: accuracy (best first), cost,
	// latency_p50, latency_p95, ttft_p50 or tokens (lowest first).
	SortBy string `yaml:"sort_by"`
	// Out is the directory of the results (default "sweep-<name>").
	Out string `yaml:"out"`
	// Headers are sent with every request (e.g. X-Sim-Fault for a demo).
	Headers map[string]string `yaml:"headers"`

	dir       string     // the spec file's directory; Dataset is relative to it
	file      string     // the spec file, named in errors
	root      *yaml.Node // the spec file's document, for the line of a field
	overrides map[string]bool
	timeout   time.Duration
}

// ExperimentName is the experiment of the sweep's runs: Experiment, or
// "llmscope".
func (s *Spec) ExperimentName() string {
	if s.Experiment == "" {
		return "llmscope"
	}
	return s.Experiment
}

// OutDir is the results directory: Out, or "sweep-<name>".
func (s *Spec) OutDir() string {
	if s.Out == "" {
		return "sweep-" + s.Name
	}
	return s.Out
}

// attempts is how many times one item is tried at most.
func (s *Spec) attempts() int {
	if s.Retries == nil {
		return 5
	}
	return 1 + *s.Retries
}

// SetDataset sets the dataset to path, relative to the working directory
// (not to the spec file).
func (s *Spec) SetDataset(path string) {
	s.Dataset, s.dir = path, ""
}

// Override marks fields (dotted names, e.g. "grid.temperature") as set
// outside the spec file, so Check does not blame a line of the file for
// them.
func (s *Spec) Override(fields ...string) {
	if s.overrides == nil {
		s.overrides = map[string]bool{}
	}
	for _, f := range fields {
		s.overrides[f] = true
	}
}

// Grid lists the values of each parameter; every combination is one
// configuration. An empty list leaves the parameter out of the requests.
type Grid struct {
	Model       []string  `yaml:"model"`
	Temperature []float64 `yaml:"temperature"`
	TopP        []float64 `yaml:"top_p"`
	MaxTokens   []int64   `yaml:"max_tokens"`
	System      []string  `yaml:"system"`
}

// RateLimit caps what the sweep sends; zero means no cap.
type RateLimit struct {
	RequestsPerMinute float64 `yaml:"requests_per_minute"`
	TokensPerMinute   float64 `yaml:"tokens_per_minute"`
}

// SortKeys are the values SortBy accepts.
var SortKeys = []string{"accuracy", "cost", "latency_p50", "latency_p95", "ttft_p50", "tokens"}

// SpecError is an invalid spec: the file, the line and the field at fault.
type SpecError struct {
	File  string
	Line  int
	Field string
	Msg   string

	index int // 1 + the index of the bad element of a list field, or 0
}

func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadSpec reads and checks a spec file. Every error names the file, the
// line and the field at fault.
func LoadSpec(path string) (*Spec, error) {
	s, err := ReadSpec(path)
	if err != nil {
		return nil, err
	}
	return s, s.Check()
}

// ReadSpec reads a spec file without checking its values, so flags can
// complete or change it before Check.
func ReadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweep spec: %w", err)
	}
	return DecodeSpec(b, path)
}

// ParseSpec decodes and checks a spec; path names it in errors and anchors
// the dataset path.
func ParseSpec(b []byte, path string) (*Spec, error) {
	s, err := DecodeSpec(b, path)
	if err != nil {
		return nil, err
	}
	return s, s.Check()
}

// DecodeSpec decodes a spec without checking its values: unknown keys and
// values of the wrong type are errors already.
func DecodeSpec(b []byte, path string) (*Spec, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, &SpecError{File: path, Msg: "not YAML: " + err.Error()}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, &SpecError{File: path, Line: more.Line, Msg: "a second YAML document: a spec is one document"}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &SpecError{File: path, Line: 1, Msg: "want a mapping of settings (name, dataset, grid, …)"}
	}
	root := doc.Content[0]
	if err := checkFields(path, root, "", specFields); err != nil {
		return nil, err
	}
	var s Spec
	if err := root.Decode(&s); err != nil {
		return nil, decodeError(path, root, err)
	}
	s.dir, s.file, s.root = filepath.Dir(path), path, root
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return &s, nil
}

// specFields are the keys a spec may hold, nested keys after a dot.
var specFields = map[string][]string{
	"":           {"name", "experiment", "dataset", "grid", "repeats", "concurrency", "rate_limit", "scorer", "stream", "retries", "timeout", "sort_by", "out", "headers"},
	"grid":       {"model", "temperature", "top_p", "max_tokens", "system"},
	"rate_limit": {"requests_per_minute", "tokens_per_minute"},
	"scorer":     {"type", "pattern", "ignore_case"},
}

// checkFields rejects keys the spec does not know, naming the closest
// place: a typo must not silently drop a setting.
func checkFields(path string, n *yaml.Node, prefix string, known map[string][]string) error {
	allowed, ok := known[prefix]
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &SpecError{File: path, Line: n.Line, Field: prefix, Msg: "want a mapping"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		field := k.Value
		if prefix != "" {
			field = prefix + "." + k.Value
		}
		if !slices.Contains(allowed, k.Value) {
			return &SpecError{File: path, Line: k.Line, Field: field, Msg: "unknown field (known: " + strings.Join(allowed, ", ") + ")"}
		}
		if err := checkFields(path, n.Content[i+1], field, known); err != nil {
			return err
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// decodeError turns a YAML type error into a SpecError at its line, naming
// the field found there.
func decodeError(path string, root *yaml.Node, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	e := &SpecError{File: path, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &e.Line)
		e.Msg = strings.Replace(msg, m[0], "", 1)
		e.Field = fieldAt(root, "", e.Line)
	}
	return e
}

// fieldAt returns the dotted name of the deepest key whose value spans line.
func fieldAt(n *yaml.Node, prefix string, line int) string {
	if n.Kind != yaml.MappingNode {
		return prefix
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if prefix != "" {
			name = prefix + "." + name
		}
		if k.Line == line || contains(v, line) {
			return fieldAt(v, name, line)
		}
	}
	return prefix
}

func contains(n *yaml.Node, line int) bool {
	if n.Line == line {
		return true
	}
	for _, c := range n.Content {
		if contains(c, line) {
			return true
		}
	}
	return false
}

// lineOf returns the line of the dotted field in root (of its element at
// index, when index >= 0 and the field is a list), or of its closest
// existing parent, or 0.
func lineOf(root *yaml.Node, field string, index int) int {
	n, line := root, 0
	for _, part := range strings.Split(field, ".") {
		found := false
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	if index >= 0 && n.Kind == yaml.SequenceNode && index < len(n.Content) {
		return n.Content[index].Line
	}
	return line
}

// Check validates s and fills in its defaults. An error is a SpecError
// naming the field, and the file and line of it when the spec was read
// from a file and the field was not overridden.
func (s *Spec) Check() error {
	err := s.check()
	var se *SpecError
	if errors.As(err, &se) && s.root != nil && !s.overridden(se.Field) {
		se.File, se.Line = s.file, lineOf(s.root, se.Field, se.index-1)
	}
	return err
}

// overridden reports whether field, or the section holding it, was set
// outside the file.
func (s *Spec) overridden(field string) bool {
	for f := field; f != ""; {
		if s.overrides[f] {
			return true
		}
		i := strings.LastIndex(f, ".")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return false
}

// check validates s and fills in defaults; errors name the field.
func (s *Spec) check() error {
	bad := func(field, format string, a ...any) error {
		return &SpecError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if s.Name == "" {
		return bad("name", "missing")
	}
	if strings.ContainsAny(s.Name, ",=\r\n") {
		return bad("name", "%q: a name cannot hold ',', '=' or a line break", s.Name)
	}
	if s.Dataset == "" {
		return bad("dataset", "missing: the JSONL file of items")
	}
	if len(s.Grid.Model) == 0 {
		return bad("grid.model", "missing: at least one model")
	}
	// A bad value of a list is blamed on its own line.
	badAt := func(field string, i int, format string, a ...any) error {
		err := bad(field, format, a...).(*SpecError)
		err.index = i + 1
		return err
	}
	for i, m := range s.Grid.Model {
		if m == "" || strings.ContainsAny(m, "\r\n") {
			return badAt("grid.model", i, "%q is not a model name", m)
		}
	}
	for i, t := range s.Grid.Temperature {
		if !(t >= 0 && t <= 2) { // NaN too
			return badAt("grid.temperature", i, "%g is outside 0 to 2", t)
		}
	}
	for i, p := range s.Grid.TopP {
		if !(p >= 0 && p <= 1) {
			return badAt("grid.top_p", i, "%g is outside 0 to 1", p)
		}
	}
	for i, m := range s.Grid.MaxTokens {
		if m <= 0 {
			return badAt("grid.max_tokens", i, "%d is not a positive number of tokens", m)
		}
	}
	switch {
	case s.Repeats < 0:
		return bad("repeats", "%d is negative", s.Repeats)
	case s.Repeats == 0:
		s.Repeats = 1
	}
	switch {
	case s.Concurrency < 0:
		return bad("concurrency", "%d is negative", s.Concurrency)
	case s.Concurrency == 0:
		s.Concurrency = 4
	}
	if !(s.RateLimit.RequestsPerMinute >= 0) || math.IsInf(s.RateLimit.RequestsPerMinute, 0) {
		return bad("rate_limit.requests_per_minute", "%g is not a rate", s.RateLimit.RequestsPerMinute)
	}
	if !(s.RateLimit.TokensPerMinute >= 0) || math.IsInf(s.RateLimit.TokensPerMinute, 0) {
		return bad("rate_limit.tokens_per_minute", "%g is not a rate", s.RateLimit.TokensPerMinute)
	}
	if s.Scorer.Type == "" {
		s.Scorer.Type = "exact"
	}
	if !slices.Contains(ScorerTypes, s.Scorer.Type) {
		return bad("scorer.type", "%q is not one of %s", s.Scorer.Type, strings.Join(ScorerTypes, ", "))
	}
	if s.Scorer.Pattern != "" {
		if s.Scorer.Type != "regex" {
			return bad("scorer.pattern", "only the regex scorer takes a pattern")
		}
		if _, err := regexp.Compile(s.Scorer.Pattern); err != nil {
			return bad("scorer.pattern", "%v", err)
		}
	}
	if s.Retries != nil && *s.Retries < 0 {
		return bad("retries", "%d is negative", *s.Retries)
	}
	s.timeout = 5 * time.Minute
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d <= 0 {
			return bad("timeout", "%q is not a positive duration such as 90s or 5m", s.Timeout)
		}
		s.timeout = d
	}
	if s.SortBy == "" {
		s.SortBy = "accuracy"
	}
	if !slices.Contains(SortKeys, s.SortBy) {
		return bad("sort_by", "%q is not one of %s", s.SortBy, strings.Join(SortKeys, ", "))
	}
	for k := range s.Headers {
		if strings.HasPrefix(strings.ToLower(k), "x-llmscope-") {
			return bad("headers", "%s is set by the sweep itself", k)
		}
	}
	return nil
}

// DatasetPath returns the dataset's path, resolved against the spec's
// directory.
func (s *Spec) DatasetPath() string {
	if filepath.IsAbs(s.Dataset) || s.dir == "" {
		return s.Dataset
	}
	return filepath.Join(s.dir, s.Dataset)
}
