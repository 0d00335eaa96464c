-- Client keys, budgets and rate limits shared by the gateways using this
-- database (issue 20; see package budget). Text keys are COLLATE "C": byte
-- order, as the SQLite store sorts, and the order rows are locked in.
--
-- client_keys: one row per key. hash is the SHA-256 of the secret (the
-- secret itself is never stored); models is a JSON array of path.Match
-- globs; times are unix nanoseconds, NULL for "never".
CREATE TABLE client_keys (
	name       text COLLATE "C" PRIMARY KEY,
	hash       bytea  NOT NULL UNIQUE CHECK (length(hash) = 32),
	"user"     text   NOT NULL,
	team       text   NOT NULL,
	models     text   NOT NULL, -- JSON array
	expires    bigint,          -- NULL: never
	revoked_at bigint,          -- NULL: not revoked
	created    bigint NOT NULL,
	rotated_at bigint           -- the latest rotation; NULL: never
);

-- keys_version counts the changes of client_keys (one row), bumped in the
-- transaction of each change, so gateways can poll it cheaply.
CREATE TABLE keys_version (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint  NOT NULL
);
INSERT INTO keys_version (id, version) VALUES (1, 0);

-- budget_ledger: budget.Ledger's totals per (budget, subject, period
-- start), in NanoUSD.
CREATE TABLE budget_ledger (
	budget  text COLLATE "C" NOT NULL,
	subject text COLLATE "C" NOT NULL,
	start   bigint NOT NULL, -- unix seconds
	spent   bigint NOT NULL,
	held    bigint NOT NULL,
	PRIMARY KEY (budget, subject, start)
);

-- budget_holds: each holder's (gateway's) share of a ledger row's held,
-- and when the holder last acquired or committed (the server's clock), so
-- that the shares of a holder silent for long can be expired. A holds row
-- changes only under its ledger row's lock.
CREATE TABLE budget_holds (
	budget  text COLLATE "C" NOT NULL,
	subject text COLLATE "C" NOT NULL,
	start   bigint      NOT NULL,
	holder  text COLLATE "C" NOT NULL,
	held    bigint      NOT NULL,
	seen    timestamptz NOT NULL,
	PRIMARY KEY (budget, subject, start, holder)
);
CREATE INDEX budget_holds_holder ON budget_holds (holder, seen);

-- rate_counts: budget.Counter's counts per one-minute window (unix
-- seconds of its start) and subject; old windows are pruned. UNLOGGED: a
-- Take commits without waiting for a WAL flush (a round trip, not a disk
-- sync, per request); the price is that a server crash or a failover to
-- a standby empties the table, so the current minute's counts restart
-- from zero once.
CREATE UNLOGGED TABLE rate_counts (
	win     bigint NOT NULL,
	kind    text COLLATE "C" NOT NULL,
	subject text COLLATE "C" NOT NULL,
	unit    text COLLATE "C" NOT NULL,
	n       bigint NOT NULL,
	PRIMARY KEY (win, kind, subject, unit)
);
