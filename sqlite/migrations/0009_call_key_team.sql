-- The name and team of the client key that authenticated a call
-- (llmscope.Call.Key and Team; '' without one), group keys of Stats.
ALTER TABLE calls ADD COLUMN key_name TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN team TEXT NOT NULL DEFAULT '';
