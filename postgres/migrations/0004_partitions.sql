-- The calls table becomes partitioned by start: one partition per UTC day
-- (calls_pYYYYMMDD, [midnight, next midnight) in unix nanoseconds), and
-- calls_pbefore1970 for starts before 1970 (the zero time among them).
-- Retention then detaches and drops whole days instead of deleting rows
-- (see Prune). The store creates a day's partition, and the next days',
-- before it first writes a call of that day (ensurePartitions).
--
-- PostgreSQL enforces a unique key of a partitioned table only with the
-- partition key in it: id is unique together with start. A call's start
-- never changes, so a retried write of a call is still skipped.
-- seq keeps its values and order; it is drawn from a sequence, since this
-- PostgreSQL (15) has no identity columns on partitioned tables.
ALTER TABLE calls RENAME TO calls_unpartitioned;
ALTER INDEX calls_start RENAME TO calls_unpartitioned_start;
ALTER INDEX calls_run_start RENAME TO calls_unpartitioned_run_start;

CREATE SEQUENCE calls_seq AS bigint;
SELECT setval('calls_seq', COALESCE((SELECT max(seq) FROM calls_unpartitioned), 0) + 1, false);

CREATE TABLE calls (
	seq                 bigint           NOT NULL DEFAULT nextval('calls_seq'),
	id                  text COLLATE "C" NOT NULL,
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
	params              text             NOT NULL,
	input_tokens        bigint           NOT NULL,
	output_tokens       bigint           NOT NULL,
	total_tokens        bigint           NOT NULL,
	cached_input_tokens bigint           NOT NULL,
	reasoning_tokens    bigint           NOT NULL,
	usage_source        text             NOT NULL,
	cost_input_usd      double precision,
	cost_output_usd     double precision,
	cost_total_usd      double precision,
	price_source        text,
	experiment          text             NOT NULL,
	run                 text             NOT NULL,
	"user"              text             NOT NULL,
	session             text             NOT NULL,
	tags                text,
	overhead_ms         double precision NOT NULL,
	input_text          text             NOT NULL,
	output_text         text             NOT NULL,
	detail              text,
	upstream            text             NOT NULL DEFAULT '',
	PRIMARY KEY (seq, start),
	UNIQUE (id, start)
) PARTITION BY RANGE (start);
ALTER SEQUENCE calls_seq OWNED BY calls.seq;
CREATE INDEX calls_start     ON calls (start);  -- lookups by id use the unique (id, start) index
CREATE INDEX calls_run_start ON calls (run, start);

CREATE TABLE calls_pbefore1970 PARTITION OF calls FOR VALUES FROM (MINVALUE) TO (0);

-- A partition for each day the calls already stored fall on.
DO $$
DECLARE
	day numeric;
	lo  numeric;
	hi  numeric;
BEGIN
	FOR day IN SELECT DISTINCT floor(start::numeric / 86400000000000) FROM calls_unpartitioned WHERE start >= 0 LOOP
		lo := day * 86400000000000;
		hi := (day + 1) * 86400000000000;
		EXECUTE format('CREATE TABLE %I PARTITION OF calls FOR VALUES FROM (%s) TO (%s)',
			'calls_p' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'), lo,
			CASE WHEN hi > 9223372036854775807 THEN 'MAXVALUE' ELSE hi::text END);
	END LOOP;
END $$;

INSERT INTO calls SELECT * FROM calls_unpartitioned;
DROP TABLE calls_unpartitioned;
