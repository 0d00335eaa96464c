package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"llmscope/budget"
)

// SecretPrefix starts every client key secret llmscope makes, so that
// secret scanners and people can tell one.
const SecretPrefix = "sk-llms-"

// NewSecret returns a new client key secret: SecretPrefix and 32 random
// bytes in hex.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new secret: %w", err)
	}
	return SecretPrefix + hex.EncodeToString(b[:]), nil
}

// HashSecret returns the SHA-256 of secret, what stores keep and look
// keys up by. A secret of up to 128 bytes is hashed without allocating.
func HashSecret(secret string) [32]byte {
	var buf [128]byte
	if len(secret) <= len(buf) {
		n := copy(buf[:], secret)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(secret))
}

// maxOwner bounds a key's user and team, which become recorded labels.
const maxOwner = 256

// CheckKey reports why k cannot be stored as a client key, or nil: its
// name must be 1 to 64 printable ASCII characters other than space and
// comma or slash (it is a path segment of /api/keys), its user and team at most 256 bytes of UTF-8 text without
// control characters, its model globs well formed.
func CheckKey(k *budget.Key) error {
	if err := checkName(k.Name); err != nil {
		return fmt.Errorf("key %q: %w", k.Name, err)
	}
	if strings.Contains(k.Name, "/") {
		return fmt.Errorf("key %q: name must not contain a slash", k.Name)
	}
	for _, f := range [...]struct{ what, v string }{{"user", k.User}, {"team", k.Team}} {
		if len(f.v) > maxOwner {
			return fmt.Errorf("key %q: %s is longer than %d bytes", k.Name, f.what, maxOwner)
		}
		if !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, unicode.IsControl) {
			return fmt.Errorf("key %q: %s must be UTF-8 text without control characters", k.Name, f.what)
		}
	}
	return k.Validate()
}

// ParseExpiry reads an expiry as the keys command and /api/keys take it:
// "" (never), a duration from now ("30d", "12h", "90m"; d is 24 hours), a
// date ("2026-12-31", the end of that day in UTC) or an RFC 3339 time.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n > 0 && n <= 365*100 {
			return now.Add(time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil // the end of that day, UTC
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("expiry %q: want a positive duration (30d, 12h), a date (2026-12-31) or an RFC 3339 time", s)
}

// CreateKey checks k (CheckKey), draws a secret and stores k with the
// secret's hash in ks, and returns the secret: the only time anyone sees
// it. Errors wrap budget.ErrInvalidKey or what ks returns
// (budget.ErrKeyExists).
func CreateKey(ctx context.Context, ks budget.KeyStore, k budget.Key) (string, error) {
	if err := CheckKey(&k); err != nil {
		return "", fmt.Errorf("%w: %w", budget.ErrInvalidKey, err)
	}
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := ks.CreateKey(ctx, k, HashSecret(secret)); err != nil {
		return "", err
	}
	return secret, nil
}

// RotateKey gives the named key of ks a new secret and returns it; the
// old one is refused from the commit on. Errors are ks's
// (budget.ErrKeyNotFound, budget.ErrRevoked).
func RotateKey(ctx context.Context, ks budget.KeyStore, name string, now time.Time) (string, error) {
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := ks.RotateKey(ctx, name, HashSecret(secret), now); err != nil {
		return "", err
	}
	return secret, nil
}

// errStoreKeys marks a lookup that failed because the key store could not
// be read (not a refusal of the key).
var errStoreKeys = errors.New("key store unavailable")
