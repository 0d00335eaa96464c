-- One row per recorded call. seq is the exporters' cursor ("everything after
-- seq N"), assigned in commit order (see Write); id is the call's public id,
-- compared byte by byte (COLLATE "C") so List's order is the same everywhere.
-- The schema is the SQLite store's at its version 5, in Postgres types:
-- times are unix nanoseconds, JSON is kept as text exactly as encoded.
CREATE TABLE calls (
	seq                 bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id                  text COLLATE "C" NOT NULL UNIQUE,
	trace_id            text             NOT NULL,
	start               bigint           NOT NULL, -- unix nanoseconds (UTC)
	duration_ms         double precision NOT NULL,
	ttft_ms             double precision NOT NULL,
	operation           text             NOT NULL,
	provider            text             NOT NULL,
	endpoint            text             NOT NULL,
	request_model       text             NOT NULL,
	response_model      text             NOT NULL,
	stream              boolean          NOT NULL,
	status              bigint           NOT NULL,
	error_type          text             NOT NULL,
	finish_reason       text             NOT NULL,
	params              text             NOT NULL, -- JSON object: only the parameters sent
	input_tokens        bigint           NOT NULL,
	output_tokens       bigint           NOT NULL,
	total_tokens        bigint           NOT NULL,
	cached_input_tokens bigint           NOT NULL,
	reasoning_tokens    bigint           NOT NULL,
	usage_source        text             NOT NULL,
	cost_input_usd      double precision,          -- the four cost columns are NULL
	cost_output_usd     double precision,          -- together when the price is unknown
	cost_total_usd      double precision,
	price_source        text,
	experiment          text             NOT NULL,
	run                 text             NOT NULL,
	"user"              text             NOT NULL,
	session             text             NOT NULL,
	tags                text,                      -- JSON object; NULL when the call had none
	overhead_ms         double precision NOT NULL,
	input_text          text             NOT NULL, -- captured request text, '' unless capture is on
	output_text         text             NOT NULL, -- captured response text, '' unless capture is on
	detail              text                       -- JSON object of the rarer facts; NULL when none
);

-- Only the indexes the SQLite store kept: each one costs every insert.
CREATE INDEX calls_start     ON calls (start);
CREATE INDEX calls_run_start ON calls (run, start);

-- Where each exporter is in the calls table: every call with seq <= the
-- cursor's seq has been delivered.
CREATE TABLE export_cursors (
	name    text   PRIMARY KEY,
	seq     bigint NOT NULL,
	updated bigint NOT NULL -- unix nanoseconds
);

-- Facts about the database itself, one row per key. CheckWritable upserts
-- 'write_checked' here to prove the database accepts writes.
CREATE TABLE meta (
	key     text   PRIMARY KEY,
	value   text   NOT NULL,
	updated bigint NOT NULL -- unix nanoseconds
);
