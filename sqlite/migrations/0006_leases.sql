-- Named leases (see llmscope.Leaser): who holds each one and until when.
-- expires is in unix milliseconds of the database's clock.
CREATE TABLE leases (
	name    TEXT    PRIMARY KEY,
	owner   TEXT    NOT NULL,
	expires INTEGER NOT NULL -- unix milliseconds
) STRICT;
