package postgres

import (
	"context"
	"testing"

	"llmscope/internal/pgtest"
	"llmscope/internal/storetest"
)

// openShared returns a function opening stores on one new database, each
// closed when the test ends: several gateways sharing the database.
func openShared(t *testing.T) func() *Store {
	url := pgtest.DB(t)
	return func() *Store {
		s, err := Open(context.Background(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) func() storetest.KeyStore {
		open := openShared(t)
		return func() storetest.KeyStore { return open() }
	})
}
