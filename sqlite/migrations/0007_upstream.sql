-- The deployment that answered a call when routes are configured
-- (llmscope.Call.Upstream; '' with one upstream), a group key of Stats.
ALTER TABLE calls ADD COLUMN upstream TEXT NOT NULL DEFAULT '';
