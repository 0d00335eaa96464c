package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"llmscope/auth"
	"llmscope/budget"
	"llmscope/web"
)

const keysUsage = `Usage: llmscope keys <create|list|revoke|rotate> [flags]

  keys create NAME [--user U] [--team T] [--models 'gpt-4o*,claude-*'] [--expires 30d|2026-12-31]
                    print a new key's secret (once: only its SHA-256 is stored)
  keys list [--json] the keys: name, owner, models, expiry, state (never a secret)
  keys revoke NAME  refuse the key from now on
  keys rotate NAME  print a new secret for the key; the old one is refused from now on

Every gateway on the store sees a change within about 100 ms. Each takes --db
(LLMSCOPE_DB), the store serve uses; only create makes a new one.
`

// runKeys manages the client keys kept in the store (llmscope keys …).
func runKeys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errUsage
	}
	switch args[0] {
	case "create":
		return runKeysCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return runKeysList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return runKeysRevoke(ctx, args[1:], stdout, stderr)
	case "rotate":
		return runKeysRotate(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	fmt.Fprintf(stderr, "llmscope keys: unknown subcommand %q\n\n%s", args[0], keysUsage)
	return errUsage
}

// keysSettings declares the options every keys subcommand has.
func keysSettings(sub string, stderr io.Writer) (*settings, *option) {
	s := newSettings("keys "+sub, stderr)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path, or a postgres:// URL")
	return s, db
}

// parseNamed parses args holding one NAME before, between or after the
// flags, and returns the name.
func parseNamed(s *settings, args []string) (string, error) {
	var flags, names []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			names = append(names, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			names = append(names, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := s.fs.Lookup(name); f != nil && i+1 < len(args) {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				flags = append(flags, args[i+1]) // the flag's value
				i++
			}
		}
	}
	if err := s.parse(flags); err != nil {
		return "", err
	}
	switch {
	case len(names) == 0:
		return "", fmt.Errorf("%s: give the key's name", s.fs.Name())
	case len(names) > 1:
		return "", fmt.Errorf("%s: one name, not %q", s.fs.Name(), names)
	}
	return names[0], nil
}

// openKeyStore opens --db as a KeyStore: a new store only when create.
func openKeyStore(ctx context.Context, db string, create bool) (budget.KeyStore, func(), error) {
	open := openExistingStore
	if create {
		open = openStore
	}
	store, err := open(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	ks, ok := store.(budget.KeyStore)
	if !ok {
		_ = store.Close()
		return nil, nil, fmt.Errorf("the store %s keeps no client keys", storeLabel(db))
	}
	return ks, func() { _ = store.Close() }, nil
}

func runKeysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, db := keysSettings("create", stderr)
	user := s.str("user", "", "", "the key's owner, recorded as the user of its calls (default: the key's name)")
	team := s.str("team", "", "", "the key's team, recorded with its calls")
	models := s.str("models", "", "", "comma-separated globs of the models the key may call (default: all)")
	expires := s.str("expires", "", "", "when the key stops working: a duration (30d, 12h), a date (2026-12-31, its end in UTC) or an RFC 3339 time")
	name, err := parseNamed(s, args)
	if err != nil {
		return err
	}
	now := time.Now()
	exp, err := auth.ParseExpiry(expires.val, now)
	if err != nil {
		return fmt.Errorf("--expires: %w", err)
	}
	if !exp.IsZero() && !exp.After(now) {
		return fmt.Errorf("--expires %s is in the past", expires.val)
	}
	k := budget.Key{Name: name, User: user.val, Team: team.val, Models: web.SplitModels(models.val), Expires: exp}
	if err := auth.CheckKey(&k); err != nil { // before a store is made for it
		return err
	}
	ks, done, err := openKeyStore(ctx, db.val, true)
	if err != nil {
		return err
	}
	defer done()
	secret, err := auth.CreateKey(ctx, ks, k)
	if errors.Is(err, budget.ErrKeyExists) {
		return fmt.Errorf("a key named %q exists: revoke or rotate it, or choose another name", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "created %s\nThe secret above is shown only this once: llmscope keeps its SHA-256 only.\n",
		termSafe(budget.StoredKey{Key: k}.String()))
	return nil
}

func runKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, db := keysSettings("list", stderr)
	asJSON := s.boolean("json", "", false, "print a JSON array of keys, as GET /api/keys does")
	if err := s.parse(args); err != nil {
		return err
	}
	if len(s.fs.Args()) > 0 {
		return fmt.Errorf("keys list: unexpected arguments %q", s.fs.Args())
	}
	jsonOut, err := asJSON.Bool()
	if err != nil {
		return err
	}
	ks, done, err := openKeyStore(ctx, db.val, false)
	if err != nil {
		return err
	}
	defer done()
	keys, err := ks.ListKeys(ctx)
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(web.KeyViews(keys))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUSER\tTEAM\tMODELS\tEXPIRES\tSTATE\tCREATED")
	now := time.Now()
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termSafe(k.Name), dash(termSafe(k.User)), dash(termSafe(k.Team)),
			dash(termSafe(strings.Join(k.Models, ","))), dash(dateOf(k.Expires)), keyState(k, now), dateOf(k.Created))
	}
	return tw.Flush()
}

// keyState is a key's state as keys list shows it.
func keyState(k budget.StoredKey, now time.Time) string {
	switch err := budget.Allowed(&k.Key, "", now); {
	case errors.Is(err, budget.ErrRevoked) || !k.RevokedAt.IsZero():
		return "revoked"
	case errors.Is(err, budget.ErrExpired):
		return "expired"
	}
	return "active"
}

// dateOf formats t in UTC to the minute; "" for the zero time.
func dateOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func runKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, db := keysSettings("revoke", stderr)
	name, err := parseNamed(s, args)
	if err != nil {
		return err
	}
	ks, done, err := openKeyStore(ctx, db.val, false)
	if err != nil {
		return err
	}
	defer done()
	if err := ks.RevokeKey(ctx, name, time.Now()); err != nil {
		return keyErr(name, err)
	}
	fmt.Fprintf(stderr, "revoked key %q: every gateway on this store refuses it within about 100 ms\n", termSafe(name))
	return nil
}

func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, db := keysSettings("rotate", stderr)
	name, err := parseNamed(s, args)
	if err != nil {
		return err
	}
	ks, done, err := openKeyStore(ctx, db.val, false)
	if err != nil {
		return err
	}
	defer done()
	secret, err := auth.RotateKey(ctx, ks, name, time.Now())
	if err != nil {
		return keyErr(name, err)
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "rotated key %q: the old secret is refused from now on (within about 100 ms on every gateway)\n"+
		"The secret above is shown only this once.\n", termSafe(name))
	return nil
}

// keyErr says what a KeyStore's refusal of the named key means.
func keyErr(name string, err error) error {
	switch {
	case errors.Is(err, budget.ErrKeyNotFound):
		return fmt.Errorf("no key named %q (llmscope keys list shows them)", name)
	case errors.Is(err, budget.ErrRevoked):
		return fmt.Errorf("key %q is revoked: create a new key instead", name)
	}
	return err
}
