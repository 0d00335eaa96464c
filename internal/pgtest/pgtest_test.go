package pgtest

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestDB(t *testing.T) {
	a, b := DB(t), DB(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	conn, err := pgx.Connect(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a new database has %d tables", n)
	}
}

func TestHaltResume(t *testing.T) {
	srv := Shared(t)
	url := DB(t)
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(t.Context(), url); err == nil {
		conn.Close(t.Context())
		t.Fatal("connected to a halted server")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
}

// ended records how a test was ended instead of ending it: the first
// Fatal or Skip counts, as the test would have stopped there.
type ended struct {
	testing.TB
	fatal, skipped bool
}

func (e *ended) Helper()               {}
func (e *ended) Fatal(...any)          { e.fatal = e.fatal || !e.skipped }
func (e *ended) Skip(...any)           { e.skipped = e.skipped || !e.fatal }
func (e *ended) Fatalf(string, ...any) { e.Fatal() }

func TestMissingBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no initdb on it
	t.Setenv("CI", "true")
	e := &ended{TB: t}
	stop(e, ErrNoBinaries)
	if !e.fatal || e.skipped {
		t.Errorf("under CI: fatal %v, skipped %v; want a failure", e.fatal, e.skipped)
	}
	t.Setenv("CI", "")
	e = &ended{TB: t}
	stop(e, ErrNoBinaries)
	if !e.skipped {
		t.Error("outside CI: the test was not skipped")
	}
}
