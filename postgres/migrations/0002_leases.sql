-- Named leases (see llmscope.Leaser): who holds each one and until when, by
-- the server's clock (now()), so the clocks of the gateways do not matter.
CREATE TABLE leases (
	name       text        PRIMARY KEY,
	owner      text        NOT NULL,
	expires_at timestamptz NOT NULL
);
