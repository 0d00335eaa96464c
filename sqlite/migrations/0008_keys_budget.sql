-- Client keys, budgets and rate limits shared by the gateways using this
-- file (issue 20; see package budget).
--
-- client_keys: one row per key. hash is the SHA-256 of the secret (the
-- secret itself is never stored); models is a JSON array of path.Match
-- globs; times are unix nanoseconds, NULL for "never".
CREATE TABLE client_keys (
	name       TEXT    PRIMARY KEY,
	hash       BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
	user       TEXT    NOT NULL,
	team       TEXT    NOT NULL,
	models     TEXT    NOT NULL, -- JSON array
	expires    INTEGER,          -- NULL: never
	revoked_at INTEGER,          -- NULL: not revoked
	created    INTEGER NOT NULL,
	rotated_at INTEGER           -- the latest rotation; NULL: never
) STRICT;

-- keys_version counts the changes of client_keys (one row), bumped in the
-- transaction of each change, so gateways can poll it cheaply.
CREATE TABLE keys_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
) STRICT;
INSERT INTO keys_version (id, version) VALUES (1, 0);

-- budget_ledger: budget.Ledger's totals per (budget, subject, period
-- start), in NanoUSD.
CREATE TABLE budget_ledger (
	budget  TEXT    NOT NULL,
	subject TEXT    NOT NULL,
	start   INTEGER NOT NULL, -- unix seconds
	spent   INTEGER NOT NULL,
	held    INTEGER NOT NULL,
	PRIMARY KEY (budget, subject, start)
) STRICT, WITHOUT ROWID;

-- budget_holds: each holder's (gateway's) share of a ledger row's held,
-- and when the holder last acquired or committed (unix nanoseconds), so
-- that the shares of a holder silent for long can be expired.
CREATE TABLE budget_holds (
	budget  TEXT    NOT NULL,
	subject TEXT    NOT NULL,
	start   INTEGER NOT NULL,
	holder  TEXT    NOT NULL,
	held    INTEGER NOT NULL,
	seen    INTEGER NOT NULL,
	PRIMARY KEY (budget, subject, start, holder)
) STRICT, WITHOUT ROWID;
CREATE INDEX budget_holds_holder ON budget_holds (holder, seen);

-- rate_counts: budget.Counter's counts per one-minute window (unix
-- seconds of its start) and subject; old windows are pruned.
CREATE TABLE rate_counts (
	win     INTEGER NOT NULL,
	kind    TEXT    NOT NULL,
	subject TEXT    NOT NULL,
	unit    TEXT    NOT NULL,
	n       INTEGER NOT NULL,
	PRIMARY KEY (win, kind, subject, unit)
) STRICT, WITHOUT ROWID;
