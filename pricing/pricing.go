// Package pricing turns token usage into dollars: an embedded, dated price
// table for the models of OpenAI, Anthropic and Google Gemini (generated from
// LiteLLM's community price file), an updated file fetched by
// `llmscope prices update` merged over it, and an overrides file merged over
// both.
//
// A price names per-1M-token rates for input, cached input (cache reads),
// cache writes and output; optional service-tier rates (priority, flex, …);
// and optional long-context rates that apply when a call's prompt is longer
// than a threshold. See Price.CostAt for the formula.
package pricing

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"llmscope"
)

//go:embed prices.yaml
var builtin []byte

// Price is the price of one model in US dollars per 1,000,000 tokens.
// Nil rates inherit: a nil CachedInput or CacheWrite costs the (tier- and
// context-resolved) input rate, as the providers bill tokens they publish no
// cache price for.
type Price struct {
	Model    string  `yaml:"model" json:"model"`
	Provider string  `yaml:"provider,omitempty" json:"provider,omitempty"` // gen_ai.provider.name: openai, anthropic, gcp.gemini
	Input    float64 `yaml:"input" json:"input"`
	// CachedInput prices prompt tokens read from the prompt cache.
	CachedInput *float64 `yaml:"cached_input,omitempty" json:"cached_input"`
	// CacheWrite prices prompt tokens written to the prompt cache (Anthropic's
	// 5-minute cache write); CacheWrite1h is the 1-hour write, for reference
	// only (usage does not say which TTL a write had, so CacheWrite is used).
	CacheWrite   *float64 `yaml:"cache_write,omitempty" json:"cache_write,omitempty"`
	CacheWrite1h *float64 `yaml:"cache_write_1h,omitempty" json:"cache_write_1h,omitempty"`
	Output       float64  `yaml:"output" json:"output"`
	// Tiers holds the rates of service tiers ("priority", "flex", …) that
	// differ from the base rates; a nil rate in a tier is the base rate.
	Tiers map[string]Rates `yaml:"tiers,omitempty" json:"tiers,omitempty"`
	// LongContext holds the rates that apply when the prompt is longer than
	// LongContext.Above tokens.
	LongContext *LongContext `yaml:"long_context,omitempty" json:"long_context,omitempty"`
	Source      string       `yaml:"source" json:"source"`
	AsOf        string       `yaml:"as_of" json:"as_of"`
	Origin      string       `yaml:"-" json:"origin"` // "builtin", or the updated or overrides file
}

// Rates are per-1M-token rates that replace a price's base rates where set.
type Rates struct {
	Input       *float64 `yaml:"input,omitempty" json:"input,omitempty"`
	CachedInput *float64 `yaml:"cached_input,omitempty" json:"cached_input,omitempty"`
	CacheWrite  *float64 `yaml:"cache_write,omitempty" json:"cache_write,omitempty"`
	Output      *float64 `yaml:"output,omitempty" json:"output,omitempty"`
}

// LongContext holds the rates of prompts longer than Above tokens (all input
// tokens counted, cached ones included). Its Tiers hold tier-specific
// long-context rates; a rate a tier does not set is the long-context rate,
// and one neither sets is the tier's rate.
type LongContext struct {
	Above int64 `yaml:"above" json:"above"`
	Rates `yaml:",inline"`
	Tiers map[string]Rates `yaml:"tiers,omitempty" json:"tiers,omitempty"`
}

// Table is a set of prices. The zero Table prices nothing; use Default,
// Load or LoadAll. A Table is read-only once built and safe for concurrent
// use.
type Table struct {
	prices map[string]*Price
	// slashKeys is true when some model name holds a '/', so that
	// "provider/model" keys are worth a look-up.
	slashKeys bool
	info      Info
}

// Info says where a table's prices come from.
type Info struct {
	AsOf          string // the embedded table's date
	Source        string // the embedded table's source
	UpdatedPath   string // the updated file merged over it, "" when none
	UpdatedAt     string // when that file was fetched (YYYY-MM-DD)
	UpdatedModels int    // how many models it holds
	OverridesPath string // the overrides file merged last, "" when none
}

var _ llmscope.Pricer = (*Table)(nil)

var parsedBuiltin = sync.OnceValues(func() (*Table, error) { return parse(builtin, "builtin") })

// Default returns the built-in table.
func Default() *Table {
	t, err := parsedBuiltin()
	if err != nil {
		panic("pricing: built-in table: " + err.Error()) // caught by the package's tests
	}
	return t.clone()
}

func (t *Table) clone() *Table {
	c := *t
	c.prices = maps.Clone(t.prices)
	return &c
}

// Load returns the built-in table with the prices of the overrides file at
// path merged over it (an entry replaces the built-in one of the same
// model). An empty path gives the built-in table.
func Load(path string) (*Table, error) { return LoadAll("", path) }

// LoadAll returns the built-in table, with the updated file written by
// `llmscope prices update` at updatedPath merged over it when that file
// exists, and the YAML overrides file at overridesPath merged over both.
// Empty paths are skipped; a missing updated file is not an error, a
// missing overrides file is.
func LoadAll(updatedPath, overridesPath string) (*Table, error) {
	t := Default()
	if updatedPath != "" {
		u, err := ReadUpdated(updatedPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			t.merge(u.Table)
			t.info.UpdatedPath, t.info.UpdatedAt, t.info.UpdatedModels = updatedPath, u.FetchedDate(), len(u.Models)
		}
	}
	if overridesPath == "" {
		return t, nil
	}
	b, err := os.ReadFile(overridesPath)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	over, err := parse(b, overridesPath)
	if err != nil {
		return nil, err
	}
	t.merge(over)
	t.info.OverridesPath = overridesPath
	return t, nil
}

// merge puts every price of o over t's.
func (t *Table) merge(o *Table) {
	for k, p := range o.prices {
		t.prices[k] = p
	}
	t.slashKeys = t.slashKeys || o.slashKeys
}

// Info says where the table's prices come from.
func (t *Table) Info() Info { return t.info }

// Describe says in one line which table is in use: "embedded table as of
// YYYY-MM-DD", or "updated file PATH fetched YYYY-MM-DD, N models", plus the
// overrides file when there is one.
func (t *Table) Describe() string {
	i := t.info
	s := "embedded table as of " + i.AsOf
	if i.UpdatedPath != "" {
		s = fmt.Sprintf("updated file %s fetched %s, %d models (over the %s)", i.UpdatedPath, i.UpdatedAt, i.UpdatedModels, s)
	}
	if i.OverridesPath != "" {
		s += "; overrides from " + i.OverridesPath
	}
	return s
}

// NewTable builds a table of prices, each marked as coming from origin; a
// later price of a model replaces an earlier one.
func NewTable(ps []Price, origin string) (*Table, error) { return newTable(ps, origin) }

func newTable(ps []Price, origin string) (*Table, error) {
	t := &Table{prices: make(map[string]*Price, len(ps))}
	for i := range ps {
		p := ps[i]
		if err := p.validate(); err != nil {
			return nil, err
		}
		p.Origin = origin
		t.add(&p)
	}
	return t, nil
}

// Parse reads a YAML price file (the format of the embedded table and of
// overrides files); origin names it in errors and in each price's Origin.
func Parse(b []byte, origin string) (*Table, error) { return parse(b, origin) }

func (t *Table) add(p *Price) {
	key := strings.ToLower(strings.TrimSpace(p.Model))
	t.prices[key] = p
	if strings.IndexByte(key, '/') >= 0 {
		t.slashKeys = true
	}
}

// parse reads a YAML price file. Errors name the file and line.
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
			switch key, val := root.Content[i], root.Content[i+1]; key.Value {
			case "models":
				models = val
			case "as_of":
				t.info.AsOf = val.Value
			case "source":
				t.info.Source = val.Value
			default:
				return nil, fmt.Errorf("prices %s:%d: unknown key %q (want \"models\")", origin, key.Line, key.Value)
			}
		}
	}
	if models == nil || models.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("prices %s:%d: want a \"models\" list", origin, root.Line)
	}
	newest := ""
	for _, n := range models.Content {
		if err := checkKeys(n, entryKeys); err != nil {
			return nil, fmt.Errorf("prices %s:%d: %w", origin, n.Line, err)
		}
		var p Price
		if err := n.Decode(&p); err != nil {
			return nil, fmt.Errorf("prices %s:%d: %w", origin, n.Line, err)
		}
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("prices %s:%d: %w", origin, n.Line, err)
		}
		if _, dup := t.prices[strings.ToLower(strings.TrimSpace(p.Model))]; dup {
			return nil, fmt.Errorf("prices %s:%d: model %q listed twice", origin, n.Line, p.Model)
		}
		p.Origin = origin
		t.add(&p)
		newest = max(newest, p.AsOf)
	}
	if t.info.AsOf == "" {
		t.info.AsOf = newest // a file without its own date is as old as its newest entry
	}
	return t, nil
}

// The keys a price file may use.
var (
	rateKeys  = keySet("input", "cached_input", "cache_write", "output")
	longKeys  = keySet("above", "input", "cached_input", "cache_write", "output", "tiers")
	entryKeys = keySet("model", "provider", "input", "cached_input", "cache_write", "cache_write_1h", "output",
		"source", "as_of", "tiers", "long_context")
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// checkKeys rejects keys a price file does not know (a typo would otherwise
// silently price at zero), in an entry and in its tiers and long_context.
func checkKeys(n *yaml.Node, known map[string]bool) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("an entry must be a mapping")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if !known[k] {
			return fmt.Errorf("unknown field %q", k)
		}
		var err error
		switch k {
		case "long_context":
			err = checkMapping(v, func(v *yaml.Node) error { return checkKeys(v, longKeys) })
		case "tiers":
			err = checkMapping(v, func(v *yaml.Node) error {
				for j := 1; j < len(v.Content); j += 2 {
					if err := checkMapping(v.Content[j], func(r *yaml.Node) error { return checkKeys(r, rateKeys) }); err != nil {
						return fmt.Errorf("%s: %w", v.Content[j-1].Value, err)
					}
				}
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func checkMapping(n *yaml.Node, f func(*yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("want a mapping")
	}
	return f(n)
}

func (p *Price) validate() error {
	if strings.TrimSpace(p.Model) == "" {
		return errors.New("entry without a model")
	}
	bad := func(v float64) bool { return v < 0 || v != v }
	badp := func(v *float64) bool { return v != nil && bad(*v) }
	badr := func(r Rates) bool {
		return badp(r.Input) || badp(r.CachedInput) || badp(r.CacheWrite) || badp(r.Output)
	}
	neg := bad(p.Input) || bad(p.Output) || badp(p.CachedInput) || badp(p.CacheWrite) || badp(p.CacheWrite1h)
	for _, r := range p.Tiers {
		neg = neg || badr(r)
	}
	if lc := p.LongContext; lc != nil {
		if lc.Above <= 0 {
			return fmt.Errorf("model %q: long_context needs a positive \"above\" (prompt tokens)", p.Model)
		}
		neg = neg || badr(lc.Rates)
		for _, r := range lc.Tiers {
			neg = neg || badr(r)
		}
	}
	if neg {
		return fmt.Errorf("model %q: negative price", p.Model)
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

// Len returns the number of models the table prices.
func (t *Table) Len() int { return len(t.prices) }
