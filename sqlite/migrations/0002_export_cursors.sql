-- Where each exporter is in the calls table: every call with seq <= the
-- cursor's seq has been delivered.
CREATE TABLE export_cursors (
	name    TEXT    PRIMARY KEY,
	seq     INTEGER NOT NULL,
	updated INTEGER NOT NULL -- unix nanoseconds
) STRICT;
