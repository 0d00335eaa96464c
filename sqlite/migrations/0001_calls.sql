-- One row per recorded call. seq is a monotonically increasing cursor for
-- exporters ("everything after seq N"); id is the call's public id.
CREATE TABLE calls (
	seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
	id                  TEXT    NOT NULL UNIQUE,
	trace_id            TEXT    NOT NULL,
	start               INTEGER NOT NULL, -- unix nanoseconds (UTC)
	duration_ms         REAL    NOT NULL,
	ttft_ms             REAL    NOT NULL,
	operation           TEXT    NOT NULL,
	provider            TEXT    NOT NULL,
	endpoint            TEXT    NOT NULL,
	request_model       TEXT    NOT NULL,
	response_model      TEXT    NOT NULL,
	stream              INTEGER NOT NULL, -- 0 or 1
	status              INTEGER NOT NULL,
	error_type          TEXT    NOT NULL,
	finish_reason       TEXT    NOT NULL,
	params              TEXT    NOT NULL, -- JSON object: only the parameters sent
	input_tokens        INTEGER NOT NULL,
	output_tokens       INTEGER NOT NULL,
	total_tokens        INTEGER NOT NULL,
	cached_input_tokens INTEGER NOT NULL,
	reasoning_tokens    INTEGER NOT NULL,
	usage_source        TEXT    NOT NULL,
	cost_input_usd      REAL,             -- the four cost columns are NULL
	cost_output_usd     REAL,             -- together when the price is unknown
	cost_total_usd      REAL,
	price_source        TEXT,
	experiment          TEXT    NOT NULL,
	run                 TEXT    NOT NULL,
	user                TEXT    NOT NULL,
	session             TEXT    NOT NULL,
	tags                TEXT,             -- JSON object; NULL when the call had none
	overhead_ms         REAL    NOT NULL,
	input_text          TEXT    NOT NULL, -- captured request text, '' unless capture is on
	output_text         TEXT    NOT NULL  -- captured response text, '' unless capture is on
) STRICT;

CREATE INDEX calls_start               ON calls (start);
CREATE INDEX calls_request_model_start ON calls (request_model, start);
CREATE INDEX calls_run_start           ON calls (run, start);
CREATE INDEX calls_experiment_start    ON calls (experiment, start);
