package main

import (
	"errors"
	"testing"

	"llmscope/internal/needs"
	"llmscope/internal/pgtest"
)

// startPostgres starts a throwaway PostgreSQL server for t, stopped when t
// ends; without the server binaries t fails under CI and is skipped
// elsewhere (needs.Binary).
func startPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	srv, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoBinaries) {
		needs.Binary(t, "initdb", pgtest.Hint)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// newPostgresDB starts a throwaway PostgreSQL server for t and returns the
// URL of a new, empty database on it.
func newPostgresDB(t *testing.T) string {
	t.Helper()
	url, err := startPostgres(t).CreateDB(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return url
}
