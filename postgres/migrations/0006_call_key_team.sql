-- The name and team of the client key that authenticated a call
-- (llmscope.Call.Key and Team; '' without one), group keys of Stats.
-- Added to the partitioned calls table, so to every partition.
ALTER TABLE calls ADD COLUMN key_name text NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN team text NOT NULL DEFAULT '';
