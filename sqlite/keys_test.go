package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"llmscope/internal/storetest"
)

// openShared returns a function opening stores on one new database file,
// each closed when the test ends: several gateways sharing the file.
func openShared(t *testing.T) func() *Store {
	path := filepath.Join(t.TempDir(), "llmscope.db")
	return func() *Store {
		s, err := Open(context.Background(), path)
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
