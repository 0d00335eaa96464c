-- Facts about the database itself, one row per key. CheckWritable upserts
-- 'write_checked' here to prove the database accepts writes.
CREATE TABLE meta (
	key     TEXT    PRIMARY KEY,
	value   TEXT    NOT NULL,
	updated INTEGER NOT NULL -- unix nanoseconds
) STRICT;
