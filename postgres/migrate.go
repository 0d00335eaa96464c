package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"llmscope/internal/schema"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_description.sql. A migration is never edited once released: a change
// to the schema is a new file with the next number.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema version.
type migration = schema.Migration

// loadMigrations reads migrations/*.sql from fsys, ordered by version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	return schema.Load(fsys, "migrations/*.sql")
}

// migrateLock is the key of the advisory lock that serialises migrations
// across processes.
const migrateLock = 0x6c6c6d73636f7065 // "llmscope"

// SchemaTooNewError is the error of opening a database whose schema a newer
// llmscope migrated.
type SchemaTooNewError struct {
	Version int // the database's schema version
	Known   int // the newest version this build knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this llmscope (knows %d): upgrade llmscope", e.Version, e.Known)
}

// migrate applies, in order, each migration not yet recorded in
// schema_migrations, all in one transaction that holds an advisory lock:
// when several processes open the same database at once, the first applies
// the migrations and the others then find them recorded. A database whose
// schema is newer than ms know is a *SchemaTooNewError, and left untouched.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) error {
	known := 0
	if n := len(ms); n > 0 {
		known = ms[n-1].Version
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text    NOT NULL,
	applied_at bigint  NOT NULL -- unix nanoseconds
)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if latest := slices.Max(append(done, 0)); latest > known {
			return &SchemaTooNewError{Version: latest, Known: known}
		}
		for _, m := range ms {
			if slices.Contains(done, m.Version) {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}
