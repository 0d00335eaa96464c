package main

import (
	"context"
	"errors"
	"strings"

	"llmscope"
	"llmscope/sqlite"
)

// openStore opens the store named by --db: a SQLite path, or a postgres://
// URL.
func openStore(ctx context.Context, db string) (llmscope.Store, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return nil, errors.New("--db: the Postgres store is not part of this build; use a SQLite file path")
	}
	return sqlite.Open(ctx, db)
}
