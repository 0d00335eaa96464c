package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"llmscope"
	"llmscope/postgres"
	"llmscope/sqlite"
)

// openStore opens the store named by --db: a SQLite path, or a postgres://
// URL.
func openStore(ctx context.Context, db string) (llmscope.Store, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		s, err := postgres.Open(ctx, db)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return s, nil
	}
	return sqlite.Open(ctx, db)
}

// storeLabel is db as logs and error messages may show it: a database URL
// with its password replaced by "xxxxx" (a SQLite path is shown as given).
func storeLabel(db string) string {
	if !strings.Contains(db, "://") {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "the --db URL (unparsable; not shown)"
	}
	return u.Redacted()
}

// openExistingStore opens the store named by --db for a command that only
// reads it: a SQLite file that does not exist is an error saying where it
// was looked for, never a new empty store.
func openExistingStore(ctx context.Context, db string) (llmscope.Store, error) {
	if !strings.Contains(db, "://") {
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			abs, _ := filepath.Abs(db)
			return nil, fmt.Errorf("no store at %s: run this where serve keeps its store, or point to it with --db PATH (or LLMSCOPE_DB)", abs)
		}
	}
	return openStore(ctx, db)
}

// writableDir tells why the directory of the SQLite store at path cannot be
// written (a read-only file system, no permission), or nil when it can.
// SQLite creates its journal files there, so a store whose directory is
// read-only cannot be opened for writing.
func writableDir(path string) error {
	if strings.Contains(path, "://") {
		return nil
	}
	dir := filepath.Dir(path)
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	return nil
}
