package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"llmscope/internal/schema"
	"time"
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

// errSchemaTooNew is returned when the database was migrated by a newer build.
var errSchemaTooNew = errors.New("database schema is newer than this build")

// migrate applies, in order, each migration not yet recorded in
// schema_migrations, each in its own transaction together with its record,
// so a migration is applied exactly once even when several processes open
// the same database at once. db must begin transactions with BEGIN IMMEDIATE.
func migrate(ctx context.Context, db *sql.DB, ms []migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL -- unix nanoseconds
) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var latest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if n := len(ms); latest.Valid && (n == 0 || latest.Int64 > int64(ms[n-1].Version)) {
		known := 0
		if n > 0 {
			known = ms[n-1].Version
		}
		return fmt.Errorf("%w: version %d, this build knows up to %d", errSchemaTooNew, latest.Int64, known)
	}
	for _, m := range ms {
		if err := apply(ctx, db, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	var done bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.Version).Scan(&done)
	if err != nil || done {
		return err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
