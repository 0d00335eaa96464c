package budget

import (
	"errors"
	"fmt"
	"math"
)

// Kind is the kind of subject a budget or a rate limit applies to.
type Kind string

// The subject kinds. Budgets apply to keys, users, teams and experiments;
// rate limits to keys, users and models.
const (
	KindKey        Kind = "key"
	KindUser       Kind = "user"
	KindTeam       Kind = "team"
	KindExperiment Kind = "experiment"
	KindModel      Kind = "model"
)

// Subject names one subject: a kind and a name ("team", "ml").
type Subject struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
}

// String returns "kind:name".
func (s Subject) String() string { return string(s.Kind) + ":" + s.Name }

// Subjects are what one request is accounted to; empty fields are absent.
type Subjects struct {
	Key, User, Team, Experiment string
}

// Config is the budgets and rate limits section of serve's config file.
type Config struct {
	Budgets []Budget   `yaml:"budgets"`
	Rates   RateLimits `yaml:"rate_limits"`
}

// Validate checks every budget and rate limit; the error names the first
// bad one.
func (c *Config) Validate() error {
	names := make(map[string]bool, len(c.Budgets))
	for i := range c.Budgets {
		b := &c.Budgets[i]
		if err := b.Validate(); err != nil {
			return err
		}
		if names[b.Name] {
			return fmt.Errorf("budget %q: duplicate name", b.Name)
		}
		names[b.Name] = true
	}
	return c.Rates.Validate()
}

// Budget is a USD limit per period on one subject, or on every subject of a
// kind, each on its own.
//
//	budgets:
//	  - {name: key-daily, kind: key, period: day, limit_usd: 5, soft: 0.8}
//	  - {name: ml-monthly, kind: team, subject: ml, period: month, limit_usd: 500}
type Budget struct {
	// Name identifies the budget in refusals, alerts, metrics and the
	// ledger; unique in a Config.
	Name string `yaml:"name" json:"name"`
	Kind Kind   `yaml:"kind" json:"kind"` // key, user, team or experiment
	// Subject names the one subject the budget applies to; empty applies
	// it to every subject of Kind, each with its own spend.
	Subject  string  `yaml:"subject,omitempty" json:"subject,omitempty"`
	Period   Period  `yaml:"period" json:"period"`
	LimitUSD float64 `yaml:"limit_usd" json:"limit_usd"`
	// Soft is the share of LimitUSD (0 < Soft < 1) whose crossing by the
	// settled spend fires Options.OnSoft once per subject and period;
	// 0 fires nothing.
	Soft float64 `yaml:"soft,omitempty" json:"soft,omitempty"`
}

// Validate checks b; the error names the budget.
func (b *Budget) Validate() error {
	name := b.Name
	if name == "" {
		name = fmt.Sprintf("(%s %s)", b.Kind, b.Period)
	}
	switch {
	case b.Name == "":
		return fmt.Errorf("budget %s: empty name", name)
	case b.Kind != KindKey && b.Kind != KindUser && b.Kind != KindTeam && b.Kind != KindExperiment:
		return fmt.Errorf("budget %q: kind %q: want key, user, team or experiment", name, b.Kind)
	case !b.Period.Valid():
		return fmt.Errorf("budget %q: period %q: want day, week, month or total", name, b.Period)
	case math.IsNaN(b.LimitUSD) || math.IsInf(b.LimitUSD, 0) || b.LimitUSD <= 0:
		return fmt.Errorf("budget %q: limit_usd %v: want a positive amount", name, b.LimitUSD)
	case b.LimitUSD*nanoPerUSD >= math.MaxInt64/4:
		return fmt.Errorf("budget %q: limit_usd %v: too large", name, b.LimitUSD)
	case math.IsNaN(b.Soft) || b.Soft < 0 || b.Soft >= 1:
		return fmt.Errorf("budget %q: soft %v: want a share in [0, 1)", name, b.Soft)
	}
	return nil
}

// RateLimits are the per-minute limits of requests and tokens per key,
// user and model.
//
//	rate_limits:
//	  key:   {default: {rpm: 60, tpm: 100000}, names: {batch: {rpm: 600}}}
//	  model: {names: {gpt-4o: {tpm: 2000000}}}
type RateLimits struct {
	Key   KindRates `yaml:"key"`
	User  KindRates `yaml:"user"`
	Model KindRates `yaml:"model"`
}

// KindRates are the limits of one subject kind: Default for every subject,
// Names for the subjects that differ (an override replaces the default
// whole: {rpm: 600} alone means no token limit for that subject).
type KindRates struct {
	Default Rate            `yaml:"default"`
	Names   map[string]Rate `yaml:"names"`
}

// Rate is a per-minute limit; 0 is no limit.
type Rate struct {
	RPM int64 `yaml:"rpm" json:"rpm"` // requests per minute
	TPM int64 `yaml:"tpm" json:"tpm"` // tokens per minute (input + output)
}

// Validate checks that no limit is negative; the error names the subject.
func (r *RateLimits) Validate() error {
	for _, k := range []struct {
		kind Kind
		kr   *KindRates
	}{{KindKey, &r.Key}, {KindUser, &r.User}, {KindModel, &r.Model}} {
		if err := k.kr.Default.check(); err != nil {
			return fmt.Errorf("rate_limits %s default: %w", k.kind, err)
		}
		for name, rate := range k.kr.Names {
			if name == "" {
				return fmt.Errorf("rate_limits %s: empty name", k.kind)
			}
			if err := rate.check(); err != nil {
				return fmt.Errorf("rate_limits %s %q: %w", k.kind, name, err)
			}
		}
	}
	return nil
}

func (r Rate) check() error {
	if r.RPM < 0 || r.TPM < 0 {
		return errors.New("negative limit")
	}
	return nil
}

// rate returns the limits of the subject name.
func (k *KindRates) rate(name string) Rate {
	if r, ok := k.Names[name]; ok {
		return r
	}
	return k.Default
}
