// Package pricing turns token usage into dollars: an embedded, dated price
// table for OpenAI's models, with an overrides file merged over it.
package pricing

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"llmscope"
)

//go:embed prices.yaml
var builtin []byte

// Price is the price of one model in US dollars per 1,000,000 tokens.
type Price struct {
	Model       string   `yaml:"model" json:"model"`
	Input       float64  `yaml:"input" json:"input"`
	CachedInput *float64 `yaml:"cached_input,omitempty" json:"cached_input"` // nil: cached tokens cost Input
	Output      float64  `yaml:"output" json:"output"`
	Source      string   `yaml:"source" json:"source"`
	AsOf        string   `yaml:"as_of" json:"as_of"`
	Origin      string   `yaml:"-" json:"origin"` // "builtin" or the overrides file
}

// Table is a set of prices. The zero Table prices nothing; use Default or
// Load. A Table is read-only once built and safe for concurrent use.
type Table struct {
	prices map[string]*Price
}

var _ llmscope.Pricer = (*Table)(nil)

// Default returns the built-in table.
func Default() *Table {
	t, err := parse(builtin, "builtin")
	if err != nil {
		panic("pricing: built-in table: " + err.Error()) // caught by the package's tests
	}
	return t
}

// Load returns the built-in table with the prices of the overrides file at
// path merged over it (an entry replaces the built-in one of the same
// model). An empty path gives the built-in table.
func Load(path string) (*Table, error) {
	t := Default()
	if path == "" {
		return t, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	over, err := parse(b, path)
	if err != nil {
		return nil, err
	}
	for k, p := range over.prices {
		t.prices[k] = p
	}
	return t, nil
}

// parse reads a price file. Errors name the file and line.
func parse(b []byte, origin string) (*Table, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("prices %s: %w", origin, err)
	}
	t := &Table{prices: map[string]*Price{}}
	if len(doc.Content) == 0 {
		return t, nil
	}
	root := doc.Content[0]
	var models *yaml.Node
	if root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			switch key := root.Content[i]; key.Value {
			case "models":
				models = root.Content[i+1]
			default:
				return nil, fmt.Errorf("prices %s:%d: unknown key %q (want \"models\")", origin, key.Line, key.Value)
			}
		}
	}
	if models == nil || models.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("prices %s:%d: want a \"models\" list", origin, root.Line)
	}
	for _, n := range models.Content {
		var p Price
		if err := n.Decode(&p); err != nil {
			return nil, fmt.Errorf("prices %s:%d: %w", origin, n.Line, err)
		}
		if err := checkKeys(n); err != nil {
			return nil, fmt.Errorf("prices %s:%d: %w", origin, n.Line, err)
		}
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("prices %s:%d: %w", origin, n.Line, err)
		}
		key := strings.ToLower(p.Model)
		if _, dup := t.prices[key]; dup {
			return nil, fmt.Errorf("prices %s:%d: model %q listed twice", origin, n.Line, p.Model)
		}
		p.Origin = origin
		t.prices[key] = &p
	}
	return t, nil
}

var knownKeys = map[string]bool{"model": true, "input": true, "cached_input": true, "output": true, "source": true, "as_of": true}

func checkKeys(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("an entry must be a mapping")
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !knownKeys[k] {
			return fmt.Errorf("unknown field %q", k)
		}
	}
	return nil
}

func (p *Price) validate() error {
	switch {
	case strings.TrimSpace(p.Model) == "":
		return errors.New("entry without a model")
	case p.Input < 0 || p.Output < 0 || p.CachedInput != nil && *p.CachedInput < 0:
		return fmt.Errorf("model %q: negative price", p.Model)
	}
	return nil
}

var (
	datedSuffix = regexp.MustCompile(`-(\d{4}-\d{2}-\d{2}|\d{4})$`)
	fineTune    = regexp.MustCompile(`^ft:([^:]+)`)
)

// Lookup returns the price of model: an exact entry, else the entry of its
// base model (a dated snapshot without its date; a fine-tune as ft:BASE; a
// "provider/model" name without its provider).
func (t *Table) Lookup(model string) (*Price, bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	if m == "" || t == nil {
		return nil, false
	}
	if p, ok := t.prices[m]; ok {
		return p, true
	}
	if sub := fineTune.FindStringSubmatch(m); sub != nil {
		base := sub[1]
		for {
			if p, ok := t.prices["ft:"+base]; ok {
				return p, true
			}
			trimmed := datedSuffix.ReplaceAllString(base, "")
			if trimmed == base {
				return nil, false
			}
			base = trimmed
		}
	}
	if trimmed := datedSuffix.ReplaceAllString(m, ""); trimmed != m {
		return t.Lookup(trimmed)
	}
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return t.Lookup(m[i+1:])
	}
	return nil, false
}

// Cost prices usage u at p: (input − cached) × input price + cached × cached
// price + output × output price. Reasoning tokens are part of the output
// tokens and are not added again.
func (p *Price) Cost(u llmscope.Usage) *llmscope.Cost {
	cached := min(max(u.CachedInputTokens, 0), u.InputTokens)
	cachedPrice := p.Input
	if p.CachedInput != nil {
		cachedPrice = *p.CachedInput
	}
	in := (float64(u.InputTokens-cached)*p.Input + float64(cached)*cachedPrice) / 1e6
	out := float64(u.OutputTokens) * p.Output / 1e6
	return &llmscope.Cost{InputUSD: in, OutputUSD: out, TotalUSD: in + out, PriceSource: p.source()}
}

func (p *Price) source() string {
	s := p.Model + " " + p.AsOf
	if p.Source != "" {
		s += " " + p.Source
	}
	if p.Origin != "builtin" {
		s += " (" + p.Origin + ")"
	}
	return s
}

// Price returns the cost of call c, priced by its response model when the
// table knows it (a dated snapshot may differ from its alias), else by its
// request model. It returns nil when neither is known.
func (t *Table) Price(c *llmscope.Call) *llmscope.Cost {
	for _, m := range [...]string{c.ResponseModel, c.RequestModel} {
		if p, ok := t.Lookup(m); ok {
			return p.Cost(c.Usage)
		}
	}
	return nil
}

// All returns every price, sorted by model.
func (t *Table) All() []Price {
	out := make([]Price, 0, len(t.prices))
	for _, p := range t.prices {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}
