package budget

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// Key is a client key as budgets see it: its name, its owner and what it
// may do. Secrets and their hashes are stored elsewhere (package auth and
// the stores); this is the domain record the checks need.
type Key struct {
	Name string `yaml:"name" json:"name"`
	User string `yaml:"user,omitempty" json:"user,omitempty"` // owner user, recorded as the call's user
	Team string `yaml:"team,omitempty" json:"team,omitempty"` // owner team
	// Models lists the models the key may call as path.Match globs
	// ("gpt-4o*", "claude-*"); empty allows every model.
	Models  []string  `yaml:"models,omitempty" json:"models,omitempty"`
	Expires time.Time `yaml:"expires,omitempty" json:"expires,omitzero"` // zero: never
	Revoked bool      `yaml:"revoked,omitempty" json:"revoked,omitempty"`
}

// The reasons Allowed refuses a key; test them with errors.Is.
var (
	ErrRevoked         = errors.New("key revoked")
	ErrExpired         = errors.New("key expired")
	ErrModelNotAllowed = errors.New("model not allowed for this key")
)

// Validate checks that k has a name and well-formed model globs.
func (k *Key) Validate() error {
	if k.Name == "" {
		return errors.New("key: empty name")
	}
	for _, g := range k.Models {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("key %q: model glob %q: %w", k.Name, g, err)
		}
	}
	return nil
}

// Subjects returns the subjects a call made with k is accounted to (the
// experiment is the request's, so the caller adds it).
func (k *Key) Subjects() Subjects { return Subjects{Key: k.Name, User: k.User, Team: k.Team} }

// Allowed reports whether key may call model at now: nil, or an error
// wrapping ErrRevoked, ErrExpired (now ≥ Expires) or ErrModelNotAllowed,
// checked in that order. A nil key is revoked. It allocates only when it
// refuses.
func Allowed(key *Key, model string, now time.Time) error {
	switch {
	case key == nil:
		return fmt.Errorf("no key: %w", ErrRevoked)
	case key.Revoked:
		return fmt.Errorf("key %q: %w", key.Name, ErrRevoked)
	case !key.Expires.IsZero() && !now.Before(key.Expires):
		return fmt.Errorf("key %q expired at %s: %w", key.Name, key.Expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	if len(key.Models) == 0 {
		return nil
	}
	for _, g := range key.Models {
		if ok, _ := path.Match(g, model); ok {
			return nil
		}
	}
	return fmt.Errorf("key %q: model %q: %w", key.Name, model, ErrModelNotAllowed)
}
